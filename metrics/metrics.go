// Package metrics holds the service's Prometheus metrics. Prometheus implements the small
// Metrics interfaces of webhook, functions, reconcile and httpapi, so that those packages stay
// free of Prometheus.
package metrics

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"clerksync/functions"
	"clerksync/httpapi"
	"clerksync/reconcile"
	"clerksync/store"
	"clerksync/webhook"
)

// Prometheus holds the service's metrics, on the registry given to New (never the global
// default one). It implements webhook.Metrics, functions.Metrics, reconcile.Metrics and
// httpapi.SyncMetrics.
type Prometheus struct {
	reg *prometheus.Registry

	webhooksReceived  prometheus.Counter
	webhooksVerified  prometheus.Counter
	webhooksRejected  *prometheus.CounterVec
	webhooksForwarded prometheus.Counter
	webhooksIgnored   *prometheus.CounterVec
	forwardFailures   prometheus.Counter
	refusedByInngest  *prometheus.CounterVec
	forwardDuration   prometheus.Histogram
	functionRuns      *prometheus.CounterVec
	reconcileRuns     *prometheus.CounterVec
	reconcileOrgRuns  *prometheus.CounterVec
	reconcileOrgs     *prometheus.CounterVec
	reconcileUsers    *prometheus.CounterVec
	syncRequests      *prometheus.CounterVec
	syncDuration      prometheus.Histogram
	// lastVerified and lastSynced are when the last webhook verified and the last sync run
	// succeeded (Unix seconds), for an alert when deliveries stop.
	lastVerified prometheus.Gauge
	lastSynced   prometheus.Gauge
}

// New creates the metrics on reg, with the Go runtime and process collectors. Every label
// value known in advance starts at 0, so dashboards and alerts see the series at once. It
// panics when reg already holds one of them (prometheus.Registry.MustRegister): give it a
// registry of its own.
func New(reg *prometheus.Registry) *Prometheus {
	m := &Prometheus{
		reg: reg,
		webhooksReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clerksync_webhooks_received_total",
			Help: "Webhook requests received on POST /api/webhooks/clerk.",
		}),
		webhooksVerified: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clerksync_webhooks_verified_total",
			Help: "Webhook requests whose Svix signature verified.",
		}),
		webhooksRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_webhooks_rejected_total",
			Help: "Webhook requests refused, by reason: signature (401), too_large (413), not_clerk_event (400), read_error (400), busy (503: too many sends to Inngest in flight).",
		}, []string{"reason"}),
		webhooksForwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clerksync_webhooks_forwarded_total",
			Help: "Webhook events Inngest accepted (answered 200).",
		}),
		webhooksIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_webhooks_ignored_total",
			Help: "Verified Clerk events of a type not forwarded to Inngest (answered 200, not retried; CLERK_FORWARD_EVENTS forwards more), by type: Clerk's event type (email.created), or other for a type not shaped like Clerk's and once 64 types are counted.",
		}, []string{"type"}),
		forwardFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clerksync_webhook_forward_failures_total",
			Help: "Webhook events Inngest did not accept: an error, the timeout, or a refusal (answered 503 so that Svix retries; 422 when Inngest refused the event itself).",
		}),
		refusedByInngest: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_webhook_refused_by_inngest_total",
			Help: "Webhook events Inngest refused (also counted as forward failures), by reason: event (the event itself, too large or invalid: answered 422, Svix stops retrying; replay it from the Clerk dashboard), event_key (INNGEST_EVENT_KEY rejected: answered 503, Svix retries).",
		}, []string{"reason"}),
		forwardDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "clerksync_webhook_forward_duration_seconds",
			Help:    "How long forwarding an event to Inngest took, accepted or not.",
			Buckets: prometheus.DefBuckets,
		}),
		functionRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_function_runs_total",
			Help: "Attempts of the Inngest functions, by function id and outcome (inserted, updated, skipped, deleted, already_deleted, invalid, error; recorded, already_recorded for record-sync-failure).",
		}, []string{"function", "outcome"}),
		reconcileRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_reconcile_runs_total",
			Help: "Finished runs of reconcile-users-with-clerk, by outcome (ok, error).",
		}, []string{"outcome"}),
		reconcileUsers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_reconcile_users_total",
			Help: "Users handled by finished reconciliations, by result (inserted, updated, skipped, failed, deleted, refused).",
		}, []string{"result"}),
		reconcileOrgRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_reconcile_organization_runs_total",
			Help: "Finished runs of reconcile-organizations-with-clerk, by outcome (ok, error).",
		}, []string{"outcome"}),
		reconcileOrgs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_reconcile_organizations_total",
			Help: "Organizations and memberships handled by finished reconciliations, by kind (organization, membership) and result (inserted, updated, skipped, failed, deleted, refused).",
		}, []string{"kind", "result"}),
		syncRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clerksync_sync_requests_total",
			Help: "Requests to POST /api/sync/users/{id}, by result: synced (200), gone (410), not_found (404), unauthorized (401: bearer token), invalid_id (400), other_instance (409), clerk_key_refused (503: Clerk refused CLERK_SECRET_KEY, fix the key), rate_limited (503: Clerk's 429), clerk_unavailable (503), other_user (502: Clerk answered another user), unstorable (422), database_unavailable (503).",
		}, []string{"result"}),
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "clerksync_sync_request_duration_seconds",
			Help:    "How long POST /api/sync/users/{id} took to answer, whatever the result.",
			Buckets: prometheus.DefBuckets,
		}),
	}
	m.lastVerified = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "clerksync_last_verified_webhook_timestamp_seconds",
		Help: "When the last webhook whose signature verified arrived (Unix seconds; 0: none since start).",
	})
	m.lastSynced = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "clerksync_last_sync_success_timestamp_seconds",
		Help: "When the last sync function run wrote or skipped its event without an error (Unix seconds; 0: none since start).",
	})
	reg.MustRegister(m.lastVerified, m.lastSynced)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.webhooksReceived, m.webhooksVerified, m.webhooksRejected, m.webhooksForwarded, m.webhooksIgnored,
		m.forwardFailures, m.refusedByInngest, m.forwardDuration, m.functionRuns, m.reconcileRuns, m.reconcileUsers,
		m.reconcileOrgRuns, m.reconcileOrgs, m.syncRequests, m.syncDuration,
	)
	for _, r := range httpapi.SyncResults() {
		m.syncRequests.WithLabelValues(r)
	}
	for _, r := range webhook.RejectReasons() {
		m.webhooksRejected.WithLabelValues(r)
	}
	for _, r := range webhook.RefusedReasons() {
		m.refusedByInngest.WithLabelValues(r)
	}
	m.webhooksIgnored.WithLabelValues(webhook.IgnoredOtherType) // the types are Clerk's, not known here
	writes := []string{string(store.Inserted), string(store.Updated), string(store.Skipped), functions.OutcomeInvalid, functions.OutcomeError}
	for _, fn := range []string{functions.SyncUserID, functions.UpdateUserID, functions.SyncOrganizationID, functions.UpdateOrganizationID, functions.SyncMembershipID, functions.UpdateMembershipID} {
		for _, o := range writes {
			m.functionRuns.WithLabelValues(fn, o)
		}
	}
	for _, fn := range []string{functions.DeleteUserID, functions.DeleteOrganizationID, functions.DeleteMembershipID} {
		for _, o := range []string{string(store.Deleted), string(store.AlreadyDeleted), functions.OutcomeInvalid, functions.OutcomeError} {
			m.functionRuns.WithLabelValues(fn, o)
		}
	}
	for _, o := range []string{functions.OutcomeRecorded, functions.OutcomeAlreadyRecorded, functions.OutcomeError} {
		m.functionRuns.WithLabelValues(functions.RecordFailureID, o)
	}
	for _, o := range []string{"ok", "error"} { // Reconciled's outcomes and results
		m.reconcileRuns.WithLabelValues(o)
		m.reconcileOrgRuns.WithLabelValues(o)
	}
	for _, r := range []string{"inserted", "updated", "skipped", "failed", "deleted", "refused"} {
		m.reconcileUsers.WithLabelValues(r)
		m.reconcileOrgs.WithLabelValues("organization", r)
		m.reconcileOrgs.WithLabelValues("membership", r)
	}
	return m
}

// Handler returns the handler of GET /metrics: the registry in Prometheus's text format. Its
// own errors are logged to logger at warn and counted on the registry.
func (m *Prometheus) Handler(logger *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry: m.reg, // also counts the handler's own errors
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	})
}

// WebhookReceived counts a request to POST /api/webhooks/clerk (webhook.Metrics).
func (m *Prometheus) WebhookReceived() { m.webhooksReceived.Inc() }

// WebhookVerified counts a webhook whose signature verified, and moves the last-verified gauge.
func (m *Prometheus) WebhookVerified() {
	m.webhooksVerified.Inc()
	m.lastVerified.SetToCurrentTime()
}

// WebhookRejected counts a refused webhook, by webhook.RejectReasons reason.
func (m *Prometheus) WebhookRejected(reason string) { m.webhooksRejected.WithLabelValues(reason).Inc() }

// WebhookForwarded counts an event Inngest accepted, and how long the send took.
func (m *Prometheus) WebhookForwarded(elapsed time.Duration) {
	m.webhooksForwarded.Inc()
	m.forwardDuration.Observe(elapsed.Seconds())
}

// WebhookForwardFailed counts an event Inngest did not accept, and how long the send took.
func (m *Prometheus) WebhookForwardFailed(elapsed time.Duration) {
	m.forwardFailures.Inc()
	m.forwardDuration.Observe(elapsed.Seconds())
}

// WebhookIgnored counts a verified event of a type not forwarded, by its type (bounded by the
// webhook handler: see webhook.Metrics).
func (m *Prometheus) WebhookIgnored(eventType string) {
	m.webhooksIgnored.WithLabelValues(eventType).Inc()
}

// WebhookRefusedByInngest counts an event Inngest refused, by webhook.Refused* reason.
func (m *Prometheus) WebhookRefusedByInngest(reason string) {
	m.refusedByInngest.WithLabelValues(reason).Inc()
}

// FunctionRun counts one function run's outcome; a sync run that wrote or skipped its event
// (any outcome but error and invalid, and not record-sync-failure's) also moves the
// last-success gauge.
func (m *Prometheus) FunctionRun(function, outcome string) {
	m.functionRuns.WithLabelValues(function, outcome).Inc()
	if function != functions.RecordFailureID && outcome != functions.OutcomeError && outcome != functions.OutcomeInvalid {
		m.lastSynced.SetToCurrentTime()
	}
}

// SyncRequest counts one answer of POST /api/sync/users/{id} by its result (one of
// httpapi.SyncResults), and how long it took.
func (m *Prometheus) SyncRequest(result string, elapsed time.Duration) {
	m.syncRequests.WithLabelValues(result).Inc()
	m.syncDuration.Observe(elapsed.Seconds())
}

// Reconciled counts one finished reconciliation (reconcile.Metrics).
func (m *Prometheus) Reconciled(sum reconcile.Summary, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.reconcileRuns.WithLabelValues(outcome).Inc()
	for result, n := range map[string]int{
		"inserted": sum.Inserted, "updated": sum.Updated, "skipped": sum.Skipped,
		"failed": sum.Failed, "deleted": sum.Deleted, "refused": sum.Refused,
	} {
		m.reconcileUsers.WithLabelValues(result).Add(float64(n))
	}
}

// ReconciledOrganizations counts one finished reconciliation of the organizations
// (reconcile.Metrics).
func (m *Prometheus) ReconciledOrganizations(sum reconcile.OrganizationsSummary, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.reconcileOrgRuns.WithLabelValues(outcome).Inc()
	for kind, c := range map[string]reconcile.Counts{"organization": sum.Organizations, "membership": sum.Memberships} {
		for result, n := range map[string]int{
			"inserted": c.Inserted, "updated": c.Updated, "skipped": c.Skipped,
			"failed": c.Failed, "deleted": c.Deleted, "refused": c.Refused,
		} {
			m.reconcileOrgs.WithLabelValues(kind, result).Add(float64(n))
		}
	}
}

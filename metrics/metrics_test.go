package metrics_test

import (
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"clerksync/httpapi"
	"clerksync/metrics"
	"clerksync/metrics/metricstest"
	"clerksync/reconcile"
	"clerksync/webhook"
)

// serve starts GET /metrics of a fresh m.
func serve(t *testing.T) (*metrics.Prometheus, string) {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry())
	srv := httptest.NewServer(m.Handler(slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return m, srv.URL
}

func TestReconcileMetrics(t *testing.T) {
	t.Parallel()
	m, url := serve(t)
	m.Reconciled(reconcile.Summary{Pages: 2, Counts: reconcile.Counts{Seen: 7, Inserted: 2, Updated: 1, Skipped: 3, Failed: 1, Deleted: 1}}, nil)
	m.Reconciled(reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 3, Skipped: 3, Refused: 4}}, nil)
	m.Reconciled(reconcile.Summary{}, errors.New("clerk answered 401"))
	m.ReconciledOrganizations(reconcile.OrganizationsSummary{
		Organizations: reconcile.Counts{Inserted: 3, Deleted: 1},
		Memberships:   reconcile.Counts{Updated: 5, Refused: 2},
	}, nil)
	m.ReconciledOrganizations(reconcile.OrganizationsSummary{}, errors.New("clerk answered 429"))
	got := metricstest.Scrape(t, url)
	tests := []struct {
		family, labels string
		want           float64
	}{
		{"clerksync_reconcile_runs_total", "outcome=ok", 2},
		{"clerksync_reconcile_runs_total", "outcome=error", 1},
		{"clerksync_reconcile_users_total", "result=inserted", 2},
		{"clerksync_reconcile_users_total", "result=updated", 1},
		{"clerksync_reconcile_users_total", "result=skipped", 6},
		{"clerksync_reconcile_users_total", "result=failed", 1},
		{"clerksync_reconcile_users_total", "result=deleted", 1},
		{"clerksync_reconcile_users_total", "result=refused", 4},
		{"clerksync_reconcile_organization_runs_total", "outcome=ok", 1},
		{"clerksync_reconcile_organization_runs_total", "outcome=error", 1},
		{"clerksync_reconcile_organizations_total", "kind=organization,result=inserted", 3},
		{"clerksync_reconcile_organizations_total", "kind=organization,result=deleted", 1},
		{"clerksync_reconcile_organizations_total", "kind=organization,result=refused", 0},
		{"clerksync_reconcile_organizations_total", "kind=membership,result=updated", 5},
		{"clerksync_reconcile_organizations_total", "kind=membership,result=refused", 2},
	}
	for _, tt := range tests {
		if v, ok := got[tt.family][tt.labels]; !ok || v != tt.want {
			t.Errorf("%s{%s} = %v (present %v); want %v", tt.family, tt.labels, v, ok, tt.want)
		}
	}
}

// TestWebhookIgnoredMetric: the events the webhook handler does not forward are counted by
// type in clerksync_webhooks_ignored_total.
func TestWebhookIgnoredMetric(t *testing.T) {
	t.Parallel()
	m, url := serve(t)
	if got := metricstest.Scrape(t, url)["clerksync_webhooks_ignored_total"]; !reflect.DeepEqual(got, metricstest.Family{"type=other": 0}) {
		t.Errorf("clerksync_webhooks_ignored_total before any event = %v; want other at 0", got)
	}
	m.WebhookIgnored("email.created")
	m.WebhookIgnored("email.created")
	m.WebhookIgnored(webhook.IgnoredOtherType)
	got := metricstest.Scrape(t, url)["clerksync_webhooks_ignored_total"]
	want := metricstest.Family{"type=email.created": 2, "type=other": 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("clerksync_webhooks_ignored_total = %v; want %v", got, want)
	}
}

// TestDocumentedMetricsExist: every clerksync_ metric the README and docs/operations.md name
// (the alert rules among them) is one the service registers, so a rename cannot leave an
// alert watching nothing.
func TestDocumentedMetricsExist(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	metrics.New(reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		have[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				have[name+s] = true
			}
		}
	}
	for _, doc := range []string{"README.md", "docs/operations.md"} {
		raw, err := os.ReadFile("../" + doc)
		if err != nil {
			t.Fatal(err)
		}
		names := regexp.MustCompile(`clerksync_[a-z_]+[a-z]`).FindAllString(string(raw), -1)
		if len(names) == 0 {
			t.Errorf("%s names no clerksync_ metric; want the alert rule's", doc)
		}
		for _, name := range names {
			if !have[name] {
				t.Errorf("%s names %s; the service registers no such metric", doc, name)
			}
		}
	}
}

// TestLabelledSeriesStartAtZero: every result of the on-demand sync and every webhook refusal
// reason is a series from the start, at 0, so that alerts on them see a value before the first
// one happens.
func TestLabelledSeriesStartAtZero(t *testing.T) {
	t.Parallel()
	_, url := serve(t)
	got := metricstest.Scrape(t, url)
	for _, tt := range []struct {
		family, label string
		values        []string
	}{
		{"clerksync_sync_requests_total", "result", httpapi.SyncResults()},
		{"clerksync_webhooks_rejected_total", "reason", webhook.RejectReasons()},
		{"clerksync_webhook_refused_by_inngest_total", "reason", webhook.RefusedReasons()},
	} {
		if len(tt.values) == 0 {
			t.Errorf("%s: no %s values to start; want some", tt.family, tt.label)
		}
		for _, v := range tt.values {
			if n, ok := got[tt.family][tt.label+"="+v]; !ok || n != 0 {
				t.Errorf("%s{%s=%q} before anything = %g (present %v); want 0", tt.family, tt.label, v, n, ok)
			}
		}
	}
}

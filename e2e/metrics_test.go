package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"clerksync/metrics/metricstest"
	"clerksync/webhook"
)

// startEventAPI starts a stand-in for the Inngest dev server's event API (POST /e/<key>): it
// accepts every event, as Inngest does ({"ids":[...],"status":200}), except events whose id
// contains "refuse", which get 500, and those whose id contains "toolarge", which get Inngest's
// refusal of an event over its size limit (400).
func startEventAPI(t *testing.T) (url string, accepted *atomic.Int64) {
	t.Helper()
	accepted = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/e/") {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		if bytes.Contains(body, []byte("refuse")) {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"error":"stand-in refuses","status":500}`)
			return
		}
		if bytes.Contains(body, []byte("toolarge")) {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"event too large","status":400}`)
			return
		}
		accepted.Add(1)
		fmt.Fprint(w, `{"ids":["x"],"status":200}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, accepted
}

func TestMetricsEndpoint(t *testing.T) {
	parallel(t)
	eventAPI, accepted := startEventAPI(t)
	secret := newSecret(t)
	svc := startService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": secret,
		"INNGEST_DEV":                  eventAPI,
		"DATA_DIR":                     t.TempDir(),
		"WEBHOOK_FORWARD_TIMEOUT":      "1s",
	})
	clerk := newPoster(t, secret, svc.url)
	forger := newPoster(t, newSecret(t), svc.url)
	event := func(id string) []byte { return clerkUserEvent("user.created", id, "Metric", "", 1700000000000) }
	if before := metricstest.Scrape(t, svc.url); before["clerksync_last_verified_webhook_timestamp_seconds"][""] != 0 || before["clerksync_last_sync_success_timestamp_seconds"][""] != 0 {
		t.Errorf("the last-webhook and last-sync gauges before anything arrived = %v, %v; want 0",
			before["clerksync_last_verified_webhook_timestamp_seconds"], before["clerksync_last_sync_success_timestamp_seconds"])
	}
	start := float64(time.Now().Unix())

	posts := []struct {
		name string
		post func() (int, error)
		want int
		// mayReset: the server answers before reading the whole body and may close the
		// connection while the client still writes it; the answer can then be lost.
		mayReset bool
	}{
		{"forwarded", func() (int, error) { return clerk.post(event("user_m1"), "msg_metrics_1") }, http.StatusOK, false},
		{"forwarded", func() (int, error) { return clerk.post(event("user_m2"), "msg_metrics_2") }, http.StatusOK, false},
		{"Inngest refuses", func() (int, error) { return clerk.post(event("user_m3"), "msg_refuse_3") }, http.StatusServiceUnavailable, false},
		{"forged signature", func() (int, error) { return forger.post(event("user_m4"), "msg_metrics_4") }, http.StatusUnauthorized, false},
		{"not a Clerk event", func() (int, error) { return clerk.post([]byte(`{"type":"user.created","data":"x"}`), "msg_metrics_5") }, http.StatusBadRequest, false},
		{"too large", func() (int, error) {
			return clerk.post(append(event("user_m6"), bytes.Repeat([]byte(" "), webhook.DefaultMaxBodyBytes)...), "msg_metrics_6")
		}, http.StatusRequestEntityTooLarge, true},
		{"Inngest refuses the event", func() (int, error) { return clerk.post(event("user_m7"), "msg_toolarge_7") }, http.StatusUnprocessableEntity, false},
	}
	for _, p := range posts {
		got, err := p.post()
		if err != nil && p.mayReset {
			continue
		}
		if err != nil || got != p.want {
			t.Fatalf("POST /api/webhooks/clerk (%s) = %d, %v; want %d", p.name, got, err, p.want)
		}
	}
	if n := accepted.Load(); n != 2 {
		t.Errorf("the event API accepted %d events; want 2", n)
	}

	// Run sync-user-from-clerk the way Inngest calls it (dev mode: unsigned), once with a
	// user and once with data it cannot store.
	for _, user := range []string{"user_invoked", ""} {
		resp, err := http.Post(svc.url+"/api/inngest?fnId=clerk-user-sync-sync-user-from-clerk&stepId=step", "application/json", bytes.NewReader(invokeBody(user, "Invoked")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	got := metricstest.Scrape(t, svc.url)
	tests := []struct {
		name, labels string
		want         float64
	}{
		{"clerksync_webhooks_received_total", "", 7},
		{"clerksync_webhooks_verified_total", "", 5},
		{"clerksync_webhooks_rejected_total", "reason=signature", 1},
		{"clerksync_webhooks_rejected_total", "reason=too_large", 1},
		{"clerksync_webhooks_rejected_total", "reason=not_clerk_event", 1},
		{"clerksync_webhooks_rejected_total", "reason=read_error", 0},
		{"clerksync_webhooks_rejected_total", "reason=busy", 0},
		{"clerksync_webhooks_forwarded_total", "", 2},
		{"clerksync_webhook_forward_failures_total", "", 2},
		{"clerksync_webhook_refused_by_inngest_total", "reason=event", 1},
		{"clerksync_webhook_refused_by_inngest_total", "reason=event_key", 0},
		{"clerksync_webhook_forward_duration_seconds", "", 4},
		{"clerksync_function_runs_total", "function=sync-user-from-clerk,outcome=inserted", 1},
		{"clerksync_function_runs_total", "function=sync-user-from-clerk,outcome=invalid", 1},
		{"clerksync_function_runs_total", "function=sync-user-from-clerk,outcome=error", 0},
		{"clerksync_function_runs_total", "function=delete-user-with-clerk,outcome=deleted", 0},
		{"clerksync_function_runs_total", "function=record-sync-failure,outcome=recorded", 0},
	}
	for _, tt := range tests {
		v, ok := got[tt.name][tt.labels]
		if !ok {
			t.Errorf("GET /metrics has no %s{%s}; want %g", tt.name, tt.labels, tt.want)
			continue
		}
		if v != tt.want {
			t.Errorf("GET /metrics: %s{%s} = %g; want %g", tt.name, tt.labels, v, tt.want)
		}
	}
	// When deliveries stop, these two say since when (docs/operations.md).
	for _, name := range []string{"clerksync_last_verified_webhook_timestamp_seconds", "clerksync_last_sync_success_timestamp_seconds"} {
		if v := got[name][""]; v < start || v > float64(time.Now().Unix())+1 {
			t.Errorf("GET /metrics: %s = %.0f; want the time of this test (from %.0f)", name, v, start)
		}
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Errorf("GET /metrics has no go_goroutines; want the Go runtime collector registered")
	}
}

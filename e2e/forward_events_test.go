package e2e

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"clerksync/metrics/metricstest"
)

// TestForwardEventsReachInngest: the service forwards the handled types and the ones
// CLERK_FORWARD_EVENTS lists, and answers any other type 200 without forwarding it, counting
// it in clerksync_webhooks_ignored_total.
func TestForwardEventsReachInngest(t *testing.T) {
	parallel(t)
	eventAPI, accepted := startEventAPI(t)
	secret := newSecret(t)
	svc := startService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": secret,
		"INNGEST_DEV":                  eventAPI,
		"DATA_DIR":                     t.TempDir(),
		"CLERK_FORWARD_EVENTS":         "email.created",
	})
	clerk := newPoster(t, secret, svc.url)
	event := func(typ string) []byte {
		return []byte(`{"object":"event","type":"` + typ + `","timestamp":1716883200000,"data":{"id":"x_1","data":{"otp_code":"123456"}}}`)
	}
	posts := []struct {
		typ          string
		wantAccepted int64 // events the event API holds after the post
	}{
		{"email.created", 1},   // listed
		{"session.created", 1}, // neither handled nor listed
		{"user.created", 2},    // handled
	}
	for _, p := range posts {
		got, err := clerk.post(event(p.typ), "msg_forward_"+p.typ)
		if err != nil || got != http.StatusOK {
			t.Fatalf("POST /api/webhooks/clerk (%s) = %d, %v; want 200", p.typ, got, err)
		}
		if n := accepted.Load(); n != p.wantAccepted {
			t.Errorf("after POST of %s, the event API holds %d events; want %d", p.typ, n, p.wantAccepted)
		}
	}
	ignored := metricstest.Scrape(t, svc.url)["clerksync_webhooks_ignored_total"]
	if want := (metricstest.Family{"type=session.created": 1, "type=other": 0}); !reflect.DeepEqual(ignored, want) {
		t.Errorf("clerksync_webhooks_ignored_total = %v; want %v", ignored, want)
	}
	if log := svc.log(); !strings.Contains(log, "CLERK_FORWARD_EVENTS") || !strings.Contains(log, "email.created") {
		t.Errorf("the start log does not say CLERK_FORWARD_EVENTS forwards email.created; log:\n%s", log)
	}
}

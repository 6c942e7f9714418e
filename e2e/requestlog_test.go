package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// maxLoggedPathBytes is the most of a request's path the request log keeps (requestlog.go).
const maxLoggedPathBytes = 256

func TestRequestLogs(t *testing.T) {
	parallel(t)
	eventAPI, _ := startEventAPI(t)
	secret := newSecret(t)
	svc := startService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": secret,
		"INNGEST_DEV":                  eventAPI,
		"DATA_DIR":                     t.TempDir(),
		"LOG_LEVEL":                    "info",
	})
	clerk := newPoster(t, secret, svc.url)
	forger := newPoster(t, newSecret(t), svc.url)
	marker := "REQUEST-LOG-BODY-MARKER"
	body := clerkUserEvent("user.created", "user_reqlog", marker, "", 1700000000000)
	if got, err := clerk.post(body, "msg_reqlog_ok"); err != nil || got != http.StatusOK {
		t.Fatalf("POST /api/webhooks/clerk = %d, %v; want 200", got, err)
	}
	if got, err := forger.post(body, "msg_reqlog_forged"); err != nil || got != http.StatusUnauthorized {
		t.Fatalf("forged POST /api/webhooks/clerk = %d, %v; want 401", got, err)
	}
	// Anyone can send a svix-id header of up to 64 KB: the log keeps 64 bytes of it.
	longID := "msg_reqlog_long" + strings.Repeat("L", 60<<10)
	if got, err := forger.post(body, longID); err != nil || got != http.StatusUnauthorized {
		t.Fatalf("forged POST /api/webhooks/clerk with a 60 KB svix-id = %d, %v; want 401", got, err)
	}
	// The dev server's periodic app sync (PUT /api/inngest) is a poll, like /healthz.
	if req, err := http.NewRequest(http.MethodPut, svc.url+"/api/inngest", nil); err == nil {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	// Anyone can send a path of up to 64 KB: the log keeps 256 bytes of it.
	longPath := "/long/" + strings.Repeat("P", 60<<10)
	for _, path := range []string{"/healthz", longPath, "/nope?token=secret-query"} {
		resp, err := http.Get(svc.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	tests := []struct {
		name string
		// want are the attributes the request's line must carry (all on one line).
		want []string
	}{
		{"forwarded webhook", []string{"level=INFO", "msg=request", "method=POST", "path=/api/webhooks/clerk", "status=200", "latency=", "svix_id=msg_reqlog_ok"}},
		{"forged webhook", []string{"level=INFO", "msg=request", "method=POST", "path=/api/webhooks/clerk", "status=401", "svix_id=msg_reqlog_forged"}},
		{"forged webhook, long id cut", []string{"status=401", "svix_id=" + longID[:64] + "…(cut)"}},
		{"long path cut", []string{"msg=request", "path=" + longPath[:maxLoggedPathBytes] + "…(cut)", "status=404"}},
		{"unknown route, query left out", []string{"level=INFO", "msg=request", "method=GET", "path=/nope ", "status=404"}},
	}
	// The request line is written after the answer: wait for the log to settle.
	logs := svc.log()
	lines := strings.Split(logs, "\n")
	for _, tt := range tests {
		found := false
		for _, line := range lines {
			if containsAll(line, tt.want) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s: no log line with all of %q; log:\n%s", tt.name, tt.want, logs)
		}
	}
	for what, s := range map[string]string{
		"the request body":                        marker,
		"the query string":                        "secret-query",
		"a /healthz line at info":                 "path=/healthz",
		"an app-sync line at info":                "method=PUT path=/api/inngest",
		"the svix-signature header":               "v1,",
		"the signing secret's value":              strings.TrimPrefix(secret, "whsec_"),
		"more than 200 bytes of the long svix-id": longID[:200],
		"more than 256 bytes of the long path":    longPath[:maxLoggedPathBytes+1],
	} {
		if strings.Contains(logs, s) {
			t.Errorf("the log contains %s (%q):\n%s", what, s, logs)
		}
	}
}

// containsAll reports whether s contains every one of subs.
func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

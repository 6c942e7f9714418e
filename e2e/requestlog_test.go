package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestRequestLogs: the built service writes the request log to stderr at LOG_LEVEL=info, one
// line per request, without the body or the secret. What a line holds and leaves out, request
// by request, is httpapi's TestRequestLogs.
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
	marker := "REQUEST-LOG-BODY-MARKER"
	body := clerkUserEvent("user.created", "user_reqlog", marker, "", 1700000000000)
	if got, err := newPoster(t, secret, svc.url).post(body, "msg_reqlog_ok"); err != nil || got != http.StatusOK {
		t.Fatalf("POST /api/webhooks/clerk = %d, %v; want 200", got, err)
	}
	resp, err := http.Get(svc.url + "/nope?token=secret-query")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	logs := svc.log() // the request line is written after the answer: wait for the log to settle
	for _, want := range [][]string{
		{"level=INFO", "msg=request", "method=POST", "path=/api/webhooks/clerk", "status=200", "latency=", "svix_id=msg_reqlog_ok"},
		{"level=INFO", "msg=request", "method=GET", "path=/nope ", "status=404"},
	} {
		if !hasLineWithAll(logs, want) {
			t.Errorf("no log line with all of %q; log:\n%s", want, logs)
		}
	}
	for what, s := range map[string]string{
		"the request body":           marker,
		"the query string":           "secret-query",
		"the signing secret's value": strings.TrimPrefix(secret, "whsec_"),
	} {
		if strings.Contains(logs, s) {
			t.Errorf("the log contains %s (%q):\n%s", what, s, logs)
		}
	}
}

// hasLineWithAll reports whether one of the log's lines contains every one of subs.
func hasLineWithAll(log string, subs []string) bool {
	for line := range strings.SplitSeq(log, "\n") {
		all := true
		for _, sub := range subs {
			all = all && strings.Contains(line, sub)
		}
		if all {
			return true
		}
	}
	return false
}

package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// TestRequestLogs: one line per request, at info, with the method, the path (cut, without the
// query), the status, the latency and the webhook's Svix id (cut when unverified); polls at
// debug; never a body, a query, a signature or a secret.
func TestRequestLogs(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	secret := newSecret(t)
	h := NewHandler(fullDeps(t, logger, secret, &fakeSDK{}, &fakeSDK{}))
	serve := func(req *http.Request) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	marker := "REQUEST-LOG-BODY-MARKER"
	body := clerkUserEvent("user_reqlog", marker)
	if got := serve(signedWebhook(t, secret, "msg_reqlog_ok", body)); got != http.StatusOK {
		t.Fatalf("POST /api/webhooks/clerk = %d; want 200", got)
	}
	// A verified id is the sender's, signed: it is logged whole.
	verifiedID := "msg_reqlog_verified" + strings.Repeat("V", 80)
	if got := serve(signedWebhook(t, secret, verifiedID, body)); got != http.StatusOK {
		t.Fatalf("POST /api/webhooks/clerk with an id of %d bytes = %d; want 200", len(verifiedID), got)
	}
	if got := serve(signedWebhook(t, newSecret(t), "msg_reqlog_forged", body)); got != http.StatusUnauthorized {
		t.Fatalf("forged POST /api/webhooks/clerk = %d; want 401", got)
	}
	// Anyone can send a svix-id header of up to 64 KB: the log keeps 64 bytes of it.
	longID := "msg_reqlog_long" + strings.Repeat("L", 60<<10)
	if got := serve(signedWebhook(t, newSecret(t), longID, body)); got != http.StatusUnauthorized {
		t.Fatalf("forged POST /api/webhooks/clerk with a 60 KB svix-id = %d; want 401", got)
	}
	// Inngest's periodic app sync (PUT /api/inngest) is a poll, like /healthz.
	serve(httptest.NewRequest(http.MethodPut, "/api/inngest", nil))
	// Anyone can send a path of up to 64 KB: the log keeps 256 bytes of it.
	longPath := "/long/" + strings.Repeat("P", 60<<10)
	for _, path := range []string{"/healthz", longPath, "/nope?token=secret-query"} {
		serve(httptest.NewRequest(http.MethodGet, path, nil))
	}

	tests := []struct {
		name string
		// want are the attributes the request's line must carry (all on one line).
		want []string
	}{
		{"forwarded webhook", []string{"level=INFO", "msg=request", "method=POST", "path=/api/webhooks/clerk", "status=200", "latency=", "svix_id=msg_reqlog_ok"}},
		{"verified webhook, long id whole", []string{"status=200", "svix_id=" + verifiedID}},
		{"forged webhook", []string{"level=INFO", "msg=request", "method=POST", "path=/api/webhooks/clerk", "status=401", "svix_id=msg_reqlog_forged"}},
		{"forged webhook, long id cut", []string{"status=401", "svix_id=" + longID[:64] + "…(cut)"}},
		{"long path cut", []string{"msg=request", "path=" + longPath[:maxLoggedPathBytes] + "…(cut)", "status=404"}},
		{"unknown route, query left out", []string{"level=INFO", "msg=request", "method=GET", "path=/nope ", "status=404"}},
	}
	logs := buf.String()
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

// TestRequestLogPathCut: anyone can send a long path; the request line keeps at most 256 bytes
// of it, marked as cut, and the service's routes whole.
func TestRequestLogPathCut(t *testing.T) {
	t.Parallel()
	long := "/" + strings.Repeat("p", 60<<10)
	runes := "/" + strings.Repeat("é", 200) // 401 bytes; byte 256 falls inside an é
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantPath           string
	}{
		{"60 KB path", http.MethodGet, long, http.StatusNotFound, long[:256] + "…(cut)"},
		{"60 KB path under the webhook route", http.MethodPost, "/api/webhooks/clerk" + long, http.StatusNotFound, ("/api/webhooks/clerk" + long)[:256] + "…(cut)"},
		{"cut at a UTF-8 boundary", http.MethodGet, runes, http.StatusNotFound, runes[:255] + "…(cut)"},
		{"256 bytes kept whole", http.MethodGet, long[:256], http.StatusNotFound, long[:256]},
		{"the webhook route kept whole", http.MethodPost, "/api/webhooks/clerk", http.StatusTeapot, "/api/webhooks/clerk"},
		{"the sync route kept whole", http.MethodPost, "/api/sync/users/user_2abcDEF", http.StatusTeapot, "/api/sync/users/user_2abcDEF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			e := newEcho(slog.New(slog.NewJSONHandler(&logs, nil)))
			teapot := func(c echo.Context) error { return c.NoContent(http.StatusTeapot) }
			e.POST("/api/webhooks/clerk", teapot)
			e.POST("/api/sync/users/:id", teapot)
			req := httptest.NewRequest(tt.method, "http://svc.test/", nil)
			req.URL.Path = tt.path
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("%s %.40s… = %d; want %d", tt.method, tt.path, rec.Code, tt.wantStatus)
			}
			line := logs.Bytes()
			if len(line) > 1024 || bytes.Count(line, []byte("\n")) != 1 {
				t.Fatalf("request log = %d bytes in %d lines; want one line under 1 KB", len(line), bytes.Count(line, []byte("\n")))
			}
			var logged struct {
				Msg    string `json:"msg"`
				Path   string `json:"path"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal(line, &logged); err != nil {
				t.Fatalf("request log %q: %v", line, err)
			}
			if logged.Msg != "request" || logged.Status != tt.wantStatus || logged.Path != tt.wantPath {
				t.Errorf("request log msg %q status %d path %q; want request, %d, %q", logged.Msg, logged.Status, logged.Path, tt.wantStatus, tt.wantPath)
			}
			if !utf8.ValidString(logged.Path) {
				t.Errorf("logged path %q is not valid UTF-8", logged.Path)
			}
		})
	}
}

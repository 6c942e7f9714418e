package main

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

// TestRequestLogPathCut: anyone can send a long path; the request line keeps at most 256 bytes
// of it, marked as cut, and the service's routes whole.
func TestRequestLogPathCut(t *testing.T) {
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

package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	t.Parallel()
	dbErr := errors.New("server selection error: mongodb://app:hunter2@db.internal:27017")
	tests := []struct {
		name, path string
		ping       error
		want       int
		wantBody   string
	}{
		{"root", "/", nil, http.StatusOK, "clerk-user-sync is running. Clerk webhooks: POST /api/webhooks/clerk; Inngest: /api/inngest\n"},
		{"alive", "/healthz", nil, http.StatusOK, `{"status":"ok"}` + "\n"},
		{"alive while the database is down", "/healthz", dbErr, http.StatusOK, `{"status":"ok"}` + "\n"},
		{"ready", "/readyz", nil, http.StatusOK, `{"status":"ready"}` + "\n"},
		{"database down", "/readyz", dbErr, http.StatusServiceUnavailable, `{"error":"the database does not answer","status":"unavailable"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logger, logs := textLogger()
			db := &fakePinger{err: tt.ping}
			start := time.Now()
			rec := httptest.NewRecorder()
			NewHandler(Deps{Logger: logger, DB: db}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.want || rec.Body.String() != tt.wantBody {
				t.Errorf("GET %s = %d %q; want %d %q", tt.path, rec.Code, rec.Body, tt.want, tt.wantBody)
			}
			if tt.path != "/readyz" {
				return
			}
			// The database gets 2 s to answer.
			if left := db.deadline.Sub(start); !db.ok || left > 3*time.Second || left < time.Second {
				t.Errorf("GET /readyz asked the database with deadline %v (set %v) after %v; want about 2s", left, db.ok, time.Since(start))
			}
			if tt.ping != nil && (!strings.Contains(logs.String(), "level=WARN msg=\"readiness check failed\"") || !strings.Contains(logs.String(), "db.internal")) {
				t.Errorf("GET /readyz with the database down: the log does not say why:\n%s", logs)
			}
		})
	}
}

// fakeWorker is the Inngest Connect worker as /readyz asks it: it answers err.
type fakeWorker struct{ err error }

func (w fakeWorker) Ready() error { return w.err }

// TestReadyzAsksTheConnectWorker: in Connect mode /readyz is 503 with the worker's error while
// the worker is not connected, even though the database answers; 200 once it is.
func TestReadyzAsksTheConnectWorker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		worker   error
		ping     error
		want     int
		wantBody string
	}{
		{"connected", nil, nil, http.StatusOK, `{"status":"ready"}` + "\n"},
		{"connecting", errors.New("not connected to Inngest yet (INNGEST_CONNECT)"), nil, http.StatusServiceUnavailable,
			`{"error":"not connected to Inngest yet (INNGEST_CONNECT)","status":"unavailable"}` + "\n"},
		{"reconnecting", errors.New("the Inngest connection is reconnecting (INNGEST_CONNECT)"), nil, http.StatusServiceUnavailable,
			`{"error":"the Inngest connection is reconnecting (INNGEST_CONNECT)","status":"unavailable"}` + "\n"},
		{"connected, database down", nil, errors.New("no server"), http.StatusServiceUnavailable,
			`{"error":"the database does not answer","status":"unavailable"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logger, _ := textLogger()
			rec := httptest.NewRecorder()
			NewHandler(Deps{Logger: logger, DB: &fakePinger{err: tt.ping}, Worker: fakeWorker{tt.worker}}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tt.want || rec.Body.String() != tt.wantBody {
				t.Errorf("GET /readyz = %d %q; want %d %q", rec.Code, rec.Body, tt.want, tt.wantBody)
			}
		})
	}
}

package webhook_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"clerksync/webhook"
)

// recordingMetrics records the calls the handler makes, by name (and reason).
type recordingMetrics struct {
	mu    sync.Mutex
	calls map[string]int
}

func (m *recordingMetrics) add(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.calls == nil {
		m.calls = map[string]int{}
	}
	m.calls[name]++
}

func (m *recordingMetrics) WebhookReceived()                      { m.add("received") }
func (m *recordingMetrics) WebhookVerified()                      { m.add("verified") }
func (m *recordingMetrics) WebhookRejected(reason string)         { m.add("rejected:" + reason) }
func (m *recordingMetrics) WebhookForwarded(time.Duration)        { m.add("forwarded") }
func (m *recordingMetrics) WebhookForwardFailed(time.Duration)    { m.add("forward_failed") }
func (m *recordingMetrics) WebhookRefusedByInngest(reason string) { m.add("refused:" + reason) }
func (m *recordingMetrics) WebhookIgnored(eventType string)       { m.add("ignored:" + eventType) }

// snapshot returns a copy of the calls recorded so far.
func (m *recordingMetrics) snapshot() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.calls))
	for k, v := range m.calls {
		out[k] = v
	}
	return out
}

// failingReader fails every read, as a connection that breaks mid-body.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestHandlerMetrics(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	valid := envelope("user.created", "1716883200", `{"id":"user_1"}`)
	sign := func(body []byte) *http.Request {
		return signedRequest(t, body, signing{secret: secret, id: newMsgID(t), at: time.Now(), prefix: "svix"})
	}
	tests := []struct {
		name       string
		req        func() *http.Request
		stubStatus int
		wantStatus int
		want       map[string]int
	}{
		{"forwarded", func() *http.Request { return sign(valid) }, http.StatusOK, http.StatusOK,
			map[string]int{"received": 1, "verified": 1, "forwarded": 1}},
		{"Inngest refuses", func() *http.Request { return sign(valid) }, http.StatusInternalServerError, http.StatusServiceUnavailable,
			map[string]int{"received": 1, "verified": 1, "forward_failed": 1}},
		{"Inngest refuses the event", func() *http.Request { return sign(valid) }, http.StatusBadRequest, http.StatusUnprocessableEntity,
			map[string]int{"received": 1, "verified": 1, "forward_failed": 1, "refused:event": 1}},
		{"Inngest refuses the event key", func() *http.Request { return sign(valid) }, http.StatusUnauthorized, http.StatusServiceUnavailable,
			map[string]int{"received": 1, "verified": 1, "forward_failed": 1, "refused:event_key": 1}},
		{"bad signature", func() *http.Request {
			r := sign(valid)
			r.Header.Set("svix-signature", "v1,AAAA")
			return r
		}, http.StatusOK, http.StatusUnauthorized, map[string]int{"received": 1, "rejected:signature": 1}},
		{"not a Clerk event", func() *http.Request { return sign([]byte(`{"type":"user.created","data":[1]}`)) }, http.StatusOK, http.StatusBadRequest,
			map[string]int{"received": 1, "verified": 1, "rejected:not_clerk_event": 1}},
		{"too large", func() *http.Request { return sign(oversized(webhook.DefaultMaxBodyBytes + 1)) }, http.StatusOK, http.StatusRequestEntityTooLarge,
			map[string]int{"received": 1, "rejected:too_large": 1}},
		{"announced over the cap, body never read", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, route, failingReader{})
			r.ContentLength = webhook.DefaultMaxBodyBytes + 1
			return r
		}, http.StatusOK, http.StatusRequestEntityTooLarge, map[string]int{"received": 1, "rejected:too_large": 1}},
		{"body read fails", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, route, failingReader{})
			r.ContentLength = -1
			return r
		}, http.StatusOK, http.StatusBadRequest, map[string]int{"received": 1, "rejected:read_error": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := startStub(t, stubConfig{status: tt.stubStatus})
			m := &recordingMetrics{}
			e := echo.New()
			var logs bytes.Buffer
			e.POST(route, webhook.Handler(newVerifier(t, secret), newSender(t, st.srv.URL), slog.New(slog.NewTextHandler(&logs, nil)),
				webhook.Options{Timeout: time.Second, Metrics: m}))
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, tt.req())
			if rec.Code != tt.wantStatus {
				t.Fatalf("POST %s = %d; want %d (log:\n%s)", route, rec.Code, tt.wantStatus, logs.String())
			}
			if got := m.snapshot(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("metrics calls = %v; want %v", got, tt.want)
			}
		})
	}
}

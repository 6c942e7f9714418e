package webhook_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"clerksync/clerk/event"
	"clerksync/webhook"
)

// lockedBuffer is a log destination safe for handlers serving requests concurrently.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// longestRun returns the length of the longest run of c in s.
func longestRun(s string, c byte) int {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] != c {
			run = 0
			continue
		}
		run++
		longest = max(longest, run)
	}
	return longest
}

// TestHandler_InngestRefusals sends through the real SDK to an event API answering each of
// Inngest's refusals: the event itself (400, 413, 422) is refused for good, 422 and Svix told to
// stop; the event key (401, 403) gets 503, since fixing INNGEST_EVENT_KEY makes Svix's retry
// succeed; 429 and 5xx are transient, 503.
func TestHandler_InngestRefusals(t *testing.T) {
	t.Parallel()
	// Long enough for the SDK's five attempts on a 5xx (about 3.5 s of backoff), so that the
	// 500 case is classified from the SDK's error rather than cut by the timeout.
	const timeout = 15 * time.Second
	tests := []struct {
		name string
		// status and message are the event API's answer ({"error": message}).
		status  int
		message string

		wantStatus int
		wantAbort  bool
		// wantRefused is the reason counted by WebhookRefusedByInngest ("" for none).
		wantRefused string
		// wantRequests is how many requests the SDK makes (it retries only 5xx).
		wantRequests int
		// wantInLog and wantInBody must appear in the log and the response's error.
		wantInLog  []string
		wantInBody []string
	}{
		{
			name: "400 event too large", status: http.StatusBadRequest, message: "event too large",
			wantStatus: http.StatusUnprocessableEntity, wantAbort: true, wantRefused: webhook.RefusedEvent, wantRequests: 1,
			wantInLog:  []string{"level=ERROR", "Inngest refused the event", "INNGEST_MAX_EVENT_BYTES", "event too large"},
			wantInBody: []string{"event too large", "INNGEST_MAX_EVENT_BYTES", "replay the message from the Clerk dashboard"},
		},
		{
			name: "400 invalid event", status: http.StatusBadRequest, message: "invalid event data",
			wantStatus: http.StatusUnprocessableEntity, wantAbort: true, wantRefused: webhook.RefusedEvent, wantRequests: 1,
			wantInLog:  []string{"level=ERROR", "Inngest refused the event", "invalid event data"},
			wantInBody: []string{"invalid event data", "will not retry"},
		},
		{
			name: "413 from Inngest Cloud", status: http.StatusRequestEntityTooLarge, message: "request entity too large",
			wantStatus: http.StatusUnprocessableEntity, wantAbort: true, wantRefused: webhook.RefusedEvent, wantRequests: 1,
			wantInLog:  []string{"level=ERROR", "Inngest refused the event", "inngest_status=413"},
			wantInBody: []string{"413", "INNGEST_MAX_EVENT_BYTES", "replay the message from the Clerk dashboard"},
		},
		{
			name: "422 unprocessable event", status: http.StatusUnprocessableEntity, message: "unprocessable",
			wantStatus: http.StatusUnprocessableEntity, wantAbort: true, wantRefused: webhook.RefusedEvent, wantRequests: 1,
			wantInLog: []string{"level=ERROR", "inngest_status=422"},
		},
		{
			name: "401 event key rejected", status: http.StatusUnauthorized, message: "event key not found",
			wantStatus: http.StatusServiceUnavailable, wantRefused: webhook.RefusedKey, wantRequests: 1,
			wantInLog:  []string{"level=ERROR", "fix INNGEST_EVENT_KEY", "event key not found"},
			wantInBody: []string{"event key", "Svix will retry"},
		},
		{
			name: "403 event key may not send it", status: http.StatusForbidden, message: "event name not allowed",
			wantStatus: http.StatusServiceUnavailable, wantRefused: webhook.RefusedKey, wantRequests: 1,
			wantInLog: []string{"level=ERROR", "fix INNGEST_EVENT_KEY", "inngest_status=403"},
		},
		{
			name: "429 rate limited", status: http.StatusTooManyRequests, message: "rate limited",
			wantStatus: http.StatusServiceUnavailable, wantRequests: 1,
			wantInLog:  []string{"level=ERROR", "Svix retries"},
			wantInBody: []string{"Svix will retry"},
		},
		{
			name: "500 after the SDK's retries", status: http.StatusInternalServerError, message: "internal error",
			wantStatus: http.StatusServiceUnavailable, wantRequests: 5,
			wantInLog:  []string{"level=ERROR", "Svix retries"},
			wantInBody: []string{"Svix will retry"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secret := newSecret(t)
			id := newMsgID(t)
			st := startStub(t, stubConfig{status: tt.status, message: tt.message})
			m := &recordingMetrics{}
			req := signedRequest(t, envelope("user.created", "1716883200", `{"id":"user_1"}`),
				signing{secret: secret, id: id, at: time.Now(), prefix: "svix"})

			got := post(t, newVerifier(t, secret), newSender(t, st.srv.URL), webhook.Options{Timeout: timeout, Metrics: m}, req)

			if got.status != tt.wantStatus {
				t.Fatalf("POST %s (event API answers %d) = %d; want %d (response %s; log:\n%s)", route, tt.status, got.status, tt.wantStatus, got.body, got.log)
			}
			checkDelivery(t, got, tt.wantAbort)
			if _, requests := st.received(); requests != tt.wantRequests {
				t.Errorf("event API received %d requests; want %d", requests, tt.wantRequests)
			}
			want := map[string]int{"received": 1, "verified": 1, "forward_failed": 1}
			if tt.wantRefused != "" {
				want["refused:"+tt.wantRefused] = 1
			}
			if calls := m.snapshot(); !reflect.DeepEqual(calls, want) {
				t.Errorf("metrics calls = %v; want %v", calls, want)
			}
			wantLog := append([]string{"svix_id=" + id, "event_id=" + event.ID(id), "type=user.created", "user_id=user_1"}, tt.wantInLog...)
			for _, w := range wantLog {
				if !strings.Contains(got.log, w) {
					t.Errorf("log lacks %q; log:\n%s", w, got.log)
				}
			}
			var resp webhook.Response
			if err := json.Unmarshal([]byte(got.body), &resp); err != nil {
				t.Fatalf("response %q is not JSON: %v", got.body, err)
			}
			for _, w := range tt.wantInBody {
				if !strings.Contains(resp.Error, w) {
					t.Errorf("response error %q lacks %q", resp.Error, w)
				}
			}
		})
	}
}

// TestHandler_MaxInFlight: sends that outlived their webhook (Inngest hanging) hold their
// slot; once MaxInFlight of them are stuck, a webhook gets 503 at once without a send, and
// once Inngest answers, webhooks go through again.
func TestHandler_MaxInFlight(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	secret := newSecret(t)
	st := startStub(t, stubConfig{status: http.StatusOK, delay: time.Minute})
	m := &recordingMetrics{}
	var logs lockedBuffer
	e := echo.New()
	e.POST(route, webhook.Handler(newVerifier(t, secret), newSenderTimeout(t, st.srv.URL, time.Minute),
		slog.New(slog.NewTextHandler(&logs, nil)), webhook.Options{Timeout: timeout, MaxInFlight: 2, Metrics: m}))
	request := func(id string) *http.Request {
		return signedRequest(t, envelope("user.created", "1716883200", `{"id":"user_1"}`),
			signing{secret: secret, id: id, at: time.Now(), prefix: "svix"})
	}
	serve := func(req *http.Request) result {
		rec := httptest.NewRecorder()
		start := time.Now()
		e.ServeHTTP(rec, req)
		return result{status: rec.Code, body: rec.Body.String(), delivery: rec.Header().Get(webhook.HeaderDeliveryControl), elapsed: time.Since(start)}
	}

	// Two webhooks time out while the event API hangs; their sends stay stuck in it.
	reqs := []*http.Request{request(newMsgID(t)), request(newMsgID(t))}
	stuck := make([]result, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stuck[i] = serve(req)
		}()
	}
	wg.Wait()
	for i, got := range stuck {
		if got.status != http.StatusServiceUnavailable {
			t.Fatalf("POST %s (webhook %d of 2, Inngest hanging) = %d; want 503 (response %s; log:\n%s)", route, i+1, got.status, got.body, logs.String())
		}
	}
	if _, requests := st.received(); requests != 2 {
		t.Fatalf("event API received %d requests; want the 2 stuck sends", requests)
	}

	third := newMsgID(t)
	got := serve(request(third))
	if got.status != http.StatusServiceUnavailable {
		t.Fatalf("POST %s with 2 sends in flight = %d; want 503 (response %s; log:\n%s)", route, got.status, got.body, logs.String())
	}
	checkDelivery(t, got, false)
	if st.receivedID(event.ID(third)) {
		t.Errorf("POST %s with 2 sends in flight reached the event API; want no send started", route)
	}
	if got.elapsed >= timeout {
		t.Errorf("POST %s with 2 sends in flight took %v; want an answer without waiting for a send (under the %v timeout)", route, got.elapsed, timeout)
	}
	if n := m.snapshot()["rejected:"+webhook.RejectBusy]; n != 1 {
		t.Errorf("metrics rejected:%s = %d; want 1 (calls %v)", webhook.RejectBusy, n, m.snapshot())
	}
	if log := logs.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "svix_id="+third) {
		t.Errorf("log lacks a warning for %s; log:\n%s", third, log)
	}

	// The event API answers the stuck sends: their slots free, and a webhook goes through.
	st.Release()
	deadline := time.Now().Add(10 * time.Second)
	for {
		id := newMsgID(t)
		got := serve(request(id))
		if got.status == http.StatusOK {
			if !st.receivedID(event.ID(id)) {
				t.Errorf("POST %s = 200 but the event API did not receive %s", route, event.ID(id))
			}
			break
		}
		if got.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("POST %s after the event API answered the stuck sends = %d; want 200 (response %s; log:\n%s)", route, got.status, got.body, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHandler_BodyBufferFollowsArrivingBytes: a client announcing a large Content-Length and
// sending a few bytes must not make the handler allocate what it announced. It is not parallel:
// it counts the process's allocations, which another test running beside it would add to.
func TestHandler_BodyBufferFollowsArrivingBytes(t *testing.T) {
	e := echo.New()
	e.POST(route, webhook.Handler(newVerifier(t, newSecret(t)), &recordingSender{}, slog.New(slog.DiscardHandler), webhook.Options{}))
	const (
		runs = 20
		// maxPerRequest is far above what the handler needs for a small body, far below
		// the 512 KiB announced.
		maxPerRequest = 64 << 10
	)
	tests := []struct {
		name      string
		announced int64
		sent      int
	}{
		{"announces 512 KiB, sends 10 bytes", webhook.DefaultMaxBodyBytes, 10},
		{"announces 512 KiB, sends 3,000 bytes", webhook.DefaultMaxBodyBytes, 3000},
		{"announces 300 KiB, sends 10 bytes", 300 << 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("x"), tt.sent)
			serve := func() int {
				req := httptest.NewRequest(http.MethodPost, route, bytes.NewReader(body))
				req.ContentLength = tt.announced
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, req)
				return rec.Code
			}
			if got := serve(); got != http.StatusUnauthorized {
				t.Fatalf("POST %s (unsigned, %d bytes) = %d; want 401", route, tt.sent, got)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range runs {
				serve()
			}
			runtime.ReadMemStats(&after)
			if perRequest := (after.TotalAlloc - before.TotalAlloc) / runs; perRequest > maxPerRequest {
				t.Errorf("POST %s announcing %d bytes and sending %d allocated %d bytes per request; want at most %d",
					route, tt.announced, tt.sent, perRequest, maxPerRequest)
			}
		})
	}
}

// TestHandler_MaxBodyBytes: Options.MaxBodyBytes caps the body, and a body over it gets 413
// with Svix told to stop retrying.
func TestHandler_MaxBodyBytes(t *testing.T) {
	t.Parallel()
	const limit = 4096
	secret := newSecret(t)
	tests := []struct {
		name       string
		body       []byte
		edit       func(r *http.Request)
		wantStatus int
	}{
		{name: "exactly the cap", body: oversized(limit), wantStatus: http.StatusOK},
		{name: "exactly the cap, length unknown", body: oversized(limit), edit: func(r *http.Request) { r.ContentLength = -1 }, wantStatus: http.StatusOK},
		{name: "cap + 1", body: oversized(limit + 1), wantStatus: http.StatusRequestEntityTooLarge},
		{name: "cap + 1, length unknown", body: oversized(limit + 1), edit: func(r *http.Request) { r.ContentLength = -1 }, wantStatus: http.StatusRequestEntityTooLarge},
		{name: "cap + 1 announced, body never read", body: oversized(limit), edit: func(r *http.Request) {
			r.Body, r.ContentLength = http.NoBody, limit+1
		}, wantStatus: http.StatusRequestEntityTooLarge},
		{name: "2 x cap", body: oversized(2 * limit), wantStatus: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := startStub(t, stubConfig{status: http.StatusOK})
			req := signedRequest(t, tt.body, signing{secret: secret, id: newMsgID(t), at: time.Now(), prefix: "svix"})
			if tt.edit != nil {
				tt.edit(req)
			}

			got := post(t, newVerifier(t, secret), newSender(t, st.srv.URL), webhook.Options{Timeout: okTimeout, MaxBodyBytes: limit}, req)

			if got.status != tt.wantStatus {
				t.Fatalf("POST %s (%d bytes, cap %d) = %d; want %d (response %s)", route, len(tt.body), limit, got.status, tt.wantStatus, got.body)
			}
			checkDelivery(t, got, tt.wantStatus == http.StatusRequestEntityTooLarge)
			if _, requests := st.received(); (requests != 0) != (tt.wantStatus == http.StatusOK) {
				t.Errorf("POST %s = %d sent %d requests to the event API", route, got.status, requests)
			}
		})
	}
}

// TestHandler_LongUnverifiedIDIsCut: a request refused before verification logs at most
// about 64 bytes of its message id header, however long the header.
func TestHandler_LongUnverifiedIDIsCut(t *testing.T) {
	t.Parallel()
	const maxLogged = 100
	long := "msg_" + strings.Repeat("Z", 60_000)
	secret := newSecret(t)
	valid := envelope("user.created", "1716883200", `{"id":"user_1"}`)
	signedWithLongID := func(body []byte) *http.Request {
		r := signedRequest(t, body, signing{secret: secret, id: newMsgID(t), at: time.Now(), prefix: "svix"})
		r.Header.Set("svix-id", long)
		return r
	}
	tests := []struct {
		name       string
		req        func() *http.Request
		wantStatus int
	}{
		{"svix-id, signature of another id", func() *http.Request { return signedWithLongID(valid) }, http.StatusUnauthorized},
		{"webhook-id, unsigned", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, route, bytes.NewReader(valid))
			r.Header.Set("webhook-id", long)
			return r
		}, http.StatusUnauthorized},
		{"svix-id, body announced too large", func() *http.Request {
			r := signedWithLongID(valid)
			r.ContentLength = webhook.DefaultMaxBodyBytes + 1
			return r
		}, http.StatusRequestEntityTooLarge},
		{"svix-id, body too large", func() *http.Request {
			r := signedWithLongID(oversized(webhook.DefaultMaxBodyBytes + 1))
			r.ContentLength = -1
			return r
		}, http.StatusRequestEntityTooLarge},
		{"svix-id, body read fails", func() *http.Request {
			r := signedWithLongID(valid)
			r.Body, r.ContentLength = io.NopCloser(failingReader{}), -1
			return r
		}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := startStub(t, stubConfig{status: http.StatusOK})

			got := post(t, newVerifier(t, secret), newSender(t, st.srv.URL), webhook.Options{Timeout: okTimeout}, tt.req())

			if got.status != tt.wantStatus {
				t.Fatalf("POST %s with a %d-byte id = %d; want %d (response %s)", route, len(long), got.status, tt.wantStatus, got.body)
			}
			if !strings.Contains(got.log, "webhook rejected") {
				t.Fatalf("POST %s = %d logged no rejection; log:\n%.500s", route, got.status, got.log)
			}
			if n := longestRun(got.log, 'Z'); n > maxLogged {
				t.Errorf("POST %s = %d logged %d bytes of the %d-byte id; want at most %d (log starts %.300s)", route, got.status, n, len(long), maxLogged, got.log)
			}
			if !strings.Contains(got.log, "(cut)") {
				t.Errorf("POST %s = %d: log does not mark the id as cut; log:\n%.500s", route, got.status, got.log)
			}
		})
	}
}

// TestHandler_VerifiedIDInContext: the handler puts the message id in the Echo context once
// the signature verified it, and only then.
func TestHandler_VerifiedIDInContext(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	valid := envelope("user.created", "1716883200", `{"id":"user_1"}`)
	tests := []struct {
		name       string
		body       []byte
		signer     string
		stubStatus int
		wantStatus int
		wantID     bool
	}{
		{"forwarded", valid, secret, http.StatusOK, http.StatusOK, true},
		{"verified, not a Clerk event", []byte(`[1]`), secret, http.StatusOK, http.StatusBadRequest, true},
		{"verified, Inngest refuses the event", valid, secret, http.StatusBadRequest, http.StatusUnprocessableEntity, true},
		{"verified, Inngest refuses the event key", valid, secret, http.StatusUnauthorized, http.StatusServiceUnavailable, true},
		{"signed with another secret", valid, newSecret(t), http.StatusOK, http.StatusUnauthorized, false},
		{"too large", oversized(webhook.DefaultMaxBodyBytes + 1), secret, http.StatusOK, http.StatusRequestEntityTooLarge, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := startStub(t, stubConfig{status: tt.stubStatus})
			id := newMsgID(t)
			var stored any
			e := echo.New()
			e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
				return func(c echo.Context) error {
					err := next(c)
					stored = c.Get(webhook.ContextKeyVerifiedID)
					return err
				}
			})
			e.POST(route, webhook.Handler(newVerifier(t, secret), newSender(t, st.srv.URL), slog.New(slog.DiscardHandler), webhook.Options{Timeout: okTimeout}))
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, signedRequest(t, tt.body, signing{secret: tt.signer, id: id, at: time.Now(), prefix: "svix"}))

			if rec.Code != tt.wantStatus {
				t.Fatalf("POST %s = %d; want %d (response %s)", route, rec.Code, tt.wantStatus, rec.Body)
			}
			var want any
			if tt.wantID {
				want = id
			}
			if stored != want {
				t.Errorf("POST %s = %d: c.Get(%q) = %#v; want %#v", route, rec.Code, webhook.ContextKeyVerifiedID, stored, want)
			}
		})
	}
}

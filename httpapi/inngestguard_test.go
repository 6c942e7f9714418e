package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inngest/inngestgo"
	"golang.org/x/sync/semaphore"

	"clerksync/webhook"
)

// sign returns the X-Inngest-Signature of body by key at at.
func sign(t *testing.T, key string, at time.Time, body []byte) string {
	t.Helper()
	sig, err := inngestgo.Sign(context.Background(), at, []byte(key), body)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// spyBody is a request body that counts the reads made of it.
type spyBody struct {
	r     io.Reader
	reads atomic.Int64
}

func (b *spyBody) Read(p []byte) (int, error) {
	b.reads.Add(1)
	return b.r.Read(p)
}

func (b *spyBody) Close() error { return nil }

// guardRequest returns method /api/inngest with body (announced as its length) and, when sig
// is not empty, the signature header.
func guardRequest(method string, body []byte, sig string) (*http.Request, *spyBody) {
	req := httptest.NewRequest(method, "/api/inngest", nil)
	spy := &spyBody{r: bytes.NewReader(body)}
	req.Body, req.ContentLength = spy, int64(len(body))
	if sig != "" {
		req.Header.Set(inngestgo.HeaderKeySignature, sig)
	}
	return req, spy
}

// configurationLeaks are what an answer to a caller that is not Inngest must not contain: the
// SDK's inspection and internal addresses.
var configurationLeaks = []string{"function_count", "has_event_key", "has_signing_key", "sdk_version", "\"mode\"", "127.0.0.1", "fn/register", "functions"}

// TestGuardRefusesUnsignedBeforeTheBody: outside dev mode, a request to /api/inngest without a
// fresh, well-formed signature gets 401 before a byte of its body is read, and reaches
// neither SDK handler.
func TestGuardRefusesUnsignedBeforeTheBody(t *testing.T) {
	t.Parallel()
	body := []byte(`{"url":"https://attacker.example/api/inngest"}`)
	tests := []struct {
		name, sig string
	}{
		{"no signature", ""},
		{"garbage", "garbage"},
		{"no s", "t=" + strconv.FormatInt(time.Now().Unix(), 10)},
		{"no t", "s=00"},
		{"t not a number", "t=abc&s=zz"},
		{"6 minutes old", sign(t, signingKey, time.Now().Add(-6*time.Minute), body)},
		{"a day old, of another key", sign(t, otherSigningKey, time.Now().Add(-24*time.Hour), body)},
	}
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
		for _, tt := range tests {
			t.Run(method+" "+tt.name, func(t *testing.T) {
				t.Parallel()
				logger, logs := textLogger()
				serve, sync := &fakeSDK{}, &fakeSDK{}
				h := NewHandler(Deps{Logger: logger, Inngest: &Inngest{Serve: serve, Sync: sync, SigningKey: signingKey}})
				req, spy := guardRequest(method, body, tt.sig)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "INNGEST_SIGNING_KEY") {
					t.Errorf("%s /api/inngest with %s = %d %s; want 401 naming INNGEST_SIGNING_KEY", method, tt.name, rec.Code, rec.Body)
				}
				if n := spy.reads.Load(); n != 0 {
					t.Errorf("%s /api/inngest with %s: the body was read %d times; want none", method, tt.name, n)
				}
				if got := rec.Header().Get("Connection"); got != "close" {
					t.Errorf("%s /api/inngest with %s: Connection %q; want close (the body is left unread)", method, tt.name, got)
				}
				if n := len(serve.got()) + len(sync.got()); n != 0 {
					t.Errorf("%s /api/inngest with %s reached the SDK %d times; want never", method, tt.name, n)
				}
				if !strings.Contains(logs.String(), `level=INFO msg="Inngest request refused: `) {
					t.Errorf("%s /api/inngest with %s: no refusal at info in the log:\n%s", method, tt.name, logs)
				}
			})
		}
	}
}

// TestGuardVerifiesGETAndPUT: the SDK checks the signature of POST itself, but would answer a
// GET with its configuration and register the app on an unsigned PUT: the guard checks those
// against the body; a good signature (by the key or the fallback) reaches the SDK, PUT on the
// sync handler and GET and POST on the other, with the body as sent.
func TestGuardVerifiesGETAndPUT(t *testing.T) {
	t.Parallel()
	body := []byte(`{"url":"https://sync.example.com/api/inngest"}`)
	now := time.Now()
	tests := []struct {
		name, method, sig string
		want              int
		wantServe         int // requests the serve handler gets
		wantSync          int // requests the sync handler gets
	}{
		{"PUT signed with another key", http.MethodPut, sign(t, otherSigningKey, now, body), 401, 0, 0},
		{"PUT with another body's signature", http.MethodPut, sign(t, signingKey, now, []byte(`{"url":"x"}`)), 401, 0, 0},
		{"GET signed with another key", http.MethodGet, sign(t, otherSigningKey, now, body), 401, 0, 0},
		{"PUT signed", http.MethodPut, sign(t, signingKey, now, body), 200, 0, 1},
		{"PUT signed with the fallback key", http.MethodPut, sign(t, otherSigningKey, now, body), 200, 0, 1},
		{"GET signed", http.MethodGet, sign(t, signingKey, now, body), 200, 1, 0},
		// The SDK verifies POST's signature against the body itself.
		{"POST signed with another key", http.MethodPost, sign(t, otherSigningKey, now, body), 200, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			serve, sync := &fakeSDK{}, &fakeSDK{}
			in := &Inngest{Serve: serve, Sync: sync, SigningKey: signingKey}
			if strings.Contains(tt.name, "fallback") {
				in.SigningKey, in.SigningKeyFallback = signingKey, otherSigningKey
			}
			req, _ := guardRequest(tt.method, body, tt.sig)
			rec := httptest.NewRecorder()
			NewHandler(Deps{Inngest: in}).ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("%s /api/inngest (%s) = %d %s; want %d", tt.method, tt.name, rec.Code, rec.Body, tt.want)
			}
			for _, leak := range configurationLeaks {
				if tt.want == 401 && strings.Contains(rec.Body.String(), leak) {
					t.Errorf("%s /api/inngest (%s) answered %q, which tells %q", tt.method, tt.name, rec.Body, leak)
				}
			}
			gotServe, gotSync := serve.got(), sync.got()
			if len(gotServe) != tt.wantServe || len(gotSync) != tt.wantSync {
				t.Errorf("%s /api/inngest (%s) reached serve %d and sync %d times; want %d and %d", tt.method, tt.name, len(gotServe), len(gotSync), tt.wantServe, tt.wantSync)
			}
			for _, c := range append(gotServe, gotSync...) {
				if c.method != tt.method || c.body != string(body) || c.contentLength != int64(len(body)) {
					t.Errorf("the SDK got %s with %d bytes (Content-Length %d); want %s with the %d bytes sent", c.method, len(c.body), c.contentLength, tt.method, len(body))
				}
			}
		})
	}
}

// TestGuardDevModeRunsUnsigned: in dev mode, as the SDK does, unsigned requests run: PUT on
// the sync handler, GET and POST on the other.
func TestGuardDevModeRunsUnsigned(t *testing.T) {
	t.Parallel()
	serve, sync := &fakeSDK{}, &fakeSDK{}
	h := NewHandler(Deps{Inngest: &Inngest{Serve: serve, Sync: sync, Dev: true}})
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
		req, _ := guardRequest(method, []byte(`{}`), "")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("unsigned %s /api/inngest in dev mode = %d %s; want 200", method, rec.Code, rec.Body)
		}
	}
	if got, want := len(serve.got()), 2; got != want {
		t.Errorf("the serve handler got %d requests; want %d (GET, POST)", got, want)
	}
	if got, want := len(sync.got()), 1; got != want {
		t.Errorf("the sync handler got %d requests; want %d (PUT)", got, want)
	}
}

// chunked is a body of unknown length (as with Transfer-Encoding: chunked).
type chunked struct{ io.Reader }

func (chunked) Close() error { return nil }

// TestGuardBodyLimits: a body over the limit gets 413, at once when its Content-Length says so
// and as soon as it passes the limit when it does not say; a body that would take the bytes in
// flight past the budget gets 503 with Retry-After, which Inngest retries. Neither reaches the
// SDK.
func TestGuardBodyLimits(t *testing.T) {
	t.Parallel()
	const limit = 8 << 10
	tests := []struct {
		name      string
		size      int
		announce  bool  // Content-Length is set
		spent     int64 // of the budget, by other requests
		want      int
		wantRetry string
	}{
		{"at the limit", limit, true, 0, 200, ""},
		{"at the limit, chunked", limit, false, 0, 200, ""},
		{"over the limit", limit + 1, true, 0, 413, ""},
		{"over the limit, chunked", limit + 1, false, 0, 413, ""},
		{"far over the limit, chunked", 10 * limit, false, 0, 413, ""},
		{"the budget spent", 6 << 10, true, 2*limit - 4<<10, 503, "1"},
		{"a small body when the budget is all spent", 100, true, 2 * limit, 503, "1"},
		{"an empty body when the budget is all spent", 0, true, 2 * limit, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			serve, sync := &fakeSDK{}, &fakeSDK{}
			g := newInngestGuard(Inngest{Serve: serve, Sync: sync, Dev: true}, slog.New(slog.DiscardHandler))
			g.limit, g.budget, g.sem = limit, 2*limit, semaphore.NewWeighted(2*limit)
			if !g.sem.TryAcquire(tt.spent) {
				t.Fatal("the budget is smaller than spent")
			}
			body := bytes.Repeat([]byte("x"), tt.size)
			req, spy := guardRequest(http.MethodPost, body, "")
			if !tt.announce {
				req.Body, req.ContentLength = chunked{bytes.NewReader(body)}, -1
			}
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, req)
			if rec.Code != tt.want || rec.Header().Get("Retry-After") != tt.wantRetry {
				t.Errorf("POST /api/inngest of %d bytes (%s) = %d Retry-After %q %s; want %d Retry-After %q",
					tt.size, tt.name, rec.Code, rec.Header().Get("Retry-After"), rec.Body, tt.want, tt.wantRetry)
			}
			if got := len(serve.got()); (got == 1) != (tt.want == 200) {
				t.Errorf("POST /api/inngest of %d bytes (%s) reached the SDK %d times", tt.size, tt.name, got)
			}
			if tt.announce && tt.want == 413 && spy.reads.Load() != 0 {
				t.Errorf("POST /api/inngest announcing %d bytes: the body was read; want it refused on its Content-Length", tt.size)
			}
			// What the request reserved is given back.
			if !g.sem.TryAcquire(2*limit - tt.spent) {
				t.Errorf("after POST /api/inngest (%s), part of the budget is still held", tt.name)
			}
		})
	}
}

// blockingSDK is a sync handler whose registration with Inngest hangs until release is closed
// or the request ends.
type blockingSDK struct {
	fakeSDK
	entered chan struct{}
	release chan struct{}
}

func (b *blockingSDK) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-r.Context().Done():
	}
	b.fakeSDK.ServeHTTP(w, r)
}

// TestGuardSyncTimeout: a sync whose registration hangs gets 504 after the sync timeout; while
// it hangs, a second sync gets 503 at once instead of queueing, and invocations still run; once
// it ends, the next sync runs.
func TestGuardSyncTimeout(t *testing.T) {
	t.Parallel()
	logger, logs := textLogger()
	serve := &fakeSDK{}
	sync := &blockingSDK{entered: make(chan struct{}, 10), release: make(chan struct{})}
	g := newInngestGuard(Inngest{Serve: serve, Sync: sync, SigningKey: signingKey}, logger)
	g.syncTimeout = 200 * time.Millisecond
	put := func() *httptest.ResponseRecorder {
		body := []byte(`{"url":"https://sync.example.com/api/inngest"}`)
		req, _ := guardRequest(http.MethodPut, body, sign(t, signingKey, time.Now(), body))
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		return rec
	}
	start := time.Now()
	first := put()
	took := time.Since(start)
	if first.Code != http.StatusGatewayTimeout || took < g.syncTimeout || took > g.syncTimeout+2*time.Second {
		t.Errorf("signed PUT /api/inngest whose registration hangs = %d %s after %v; want 504 after %v", first.Code, first.Body, took, g.syncTimeout)
	}
	<-sync.entered
	answered := make(chan *httptest.ResponseRecorder, 1)
	go func() { answered <- put() }()
	select {
	case second := <-answered:
		if second.Code != http.StatusServiceUnavailable || second.Header().Get("Retry-After") != "10" {
			t.Errorf("second signed PUT /api/inngest while the first hangs = %d Retry-After %q %s; want 503 Retry-After 10", second.Code, second.Header().Get("Retry-After"), second.Body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second signed PUT /api/inngest while the first hangs: no answer within 5s; want 503 at once")
	}
	body := []byte(`{"event":{}}`)
	req, _ := guardRequest(http.MethodPost, body, sign(t, signingKey, time.Now(), body))
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || len(serve.got()) != 1 {
		t.Errorf("signed POST /api/inngest while a sync hangs = %d %s (the SDK got %d); want 200 from the SDK", rec.Code, rec.Body, len(serve.got()))
	}
	close(sync.release)
	// The hung sync ends in its own time; the next one runs.
	var next *httptest.ResponseRecorder
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if next = put(); next.Code != http.StatusServiceUnavailable {
			break
		}
	}
	if next.Code != http.StatusOK {
		t.Errorf("signed PUT /api/inngest after the hung sync ended = %d %s; want 200", next.Code, next.Body)
	}
	if !strings.Contains(logs.String(), "Inngest did not answer the app's registration in time") {
		t.Errorf("the timeout is not logged:\n%s", logs)
	}
}

// TestGuardSyncAnswers: the SDK's answer to a sync goes back as it is, but for the text of a
// 5xx, which can name internal URLs: it is logged at error instead. Repeats of a sync's outcome
// are logged at debug.
func TestGuardSyncAnswers(t *testing.T) {
	t.Parallel()
	failure := `{"message":"error registering functions: Post \"http://127.0.0.1:8288/fn/register\": dial tcp 127.0.0.1:8288: connect: connection refused"}`
	tests := []struct {
		name     string
		status   int
		answer   string
		want     int
		wantBody string
		logged   string // at error; "" for none
	}{
		{"registered", 200, `{"ok":true,"modified":true}`, 200, `{"ok":true,"modified":true}`, ""},
		{"Inngest refuses the app", 400, `{"message":"invalid cron"}`, 400, `{"message":"invalid cron"}`, ""},
		{"Inngest unreachable", 500, failure, 500, `{"error":"the sync failed; the service's log says why"}` + "\n", "127.0.0.1:8288"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf syncBuffer
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			sync := &fakeSDK{answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Inngest-Sdk", "go:v0.15.1")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.answer)
			}}
			h := NewHandler(Deps{Logger: logger, Inngest: &Inngest{Serve: &fakeSDK{}, Sync: sync, SigningKey: signingKey}})
			for i := range 2 {
				body := []byte(`{}`)
				req, _ := guardRequest(http.MethodPut, body, sign(t, signingKey, time.Now(), body))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != tt.want || rec.Body.String() != tt.wantBody {
					t.Errorf("signed PUT /api/inngest %d (%s) = %d %q; want %d %q", i, tt.name, rec.Code, rec.Body, tt.want, tt.wantBody)
				}
				if tt.status < 500 && rec.Header().Get("X-Inngest-Sdk") == "" {
					t.Errorf("signed PUT /api/inngest (%s) lost the SDK's headers: %v", tt.name, rec.Header())
				}
			}
			logs := buf.String()
			if tt.logged != "" {
				if !strings.Contains(logs, "level=ERROR msg=\"Inngest sync failed") || !strings.Contains(logs, tt.logged) {
					t.Errorf("%s: the log does not say why the sync failed:\n%s", tt.name, logs)
				}
				return
			}
			if strings.Count(logs, `level=INFO msg="Inngest sync"`) != 1 || strings.Count(logs, `level=DEBUG msg="Inngest sync"`) != 1 {
				t.Errorf("%s: two syncs of one outcome; want the first at info and the repeat at debug:\n%s", tt.name, logs)
			}
		})
	}
}

// readReserved reads r as the guard does: through webhook.ReadBody, reserving from sem.
func readReserved(r io.Reader, limit int64, sem *semaphore.Weighted) ([]byte, int64, error) {
	return webhook.ReadBody(r, -1, limit, sem.TryAcquire)
}

func TestReadReservedFollowsArrivingBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		body         int
		wantReserved int64 // at most
	}{
		{"empty", 0, 0},
		{"small", 100, 100},
		{"a few kilobytes", 5000, 8192},
		{"one mebibyte", 1 << 20, 2 << 20},
	}
	for _, tt := range tests {
		sem := semaphore.NewWeighted(inngestBodyBudget)
		got, reserved, err := readReserved(bytes.NewReader(bytes.Repeat([]byte("x"), tt.body)), MaxInngestBodyBytes, sem)
		if err != nil || len(got) != tt.body {
			t.Errorf("%s: readReserved = %d bytes, %v; want %d bytes", tt.name, len(got), err, tt.body)
		}
		if reserved > tt.wantReserved || reserved < int64(tt.body) {
			t.Errorf("%s: readReserved reserved %d bytes for %d; want %d to %d", tt.name, reserved, tt.body, tt.body, tt.wantReserved)
		}
	}
	// A reader that has sent nothing yet holds nothing.
	pr, pw := io.Pipe()
	sem := semaphore.NewWeighted(1024)
	done := make(chan int64)
	go func() {
		_, reserved, _ := readReserved(pr, MaxInngestBodyBytes, sem)
		done <- reserved
	}()
	time.Sleep(50 * time.Millisecond)
	if !sem.TryAcquire(1024) {
		t.Error("a body that sent nothing holds part of the budget; want none")
	} else {
		sem.Release(1024)
	}
	pw.Close()
	if r := <-done; r != 0 {
		t.Errorf("readReserved of an empty body reserved %d bytes; want 0", r)
	}
	// Past the limit, or past the budget, it stops with its error.
	if _, _, err := readReserved(bytes.NewReader(make([]byte, 2000)), 1000, semaphore.NewWeighted(1<<20)); !errors.Is(err, webhook.ErrBodyTooLarge) {
		t.Errorf("readReserved of 2000 bytes with limit 1000 = %v; want errBodyTooLarge", err)
	}
	if _, _, err := readReserved(bytes.NewReader(make([]byte, 10000)), 1<<20, semaphore.NewWeighted(5000)); !errors.Is(err, webhook.ErrBodyBudget) {
		t.Errorf("readReserved of 10000 bytes with a budget of 5000 = %v; want errBodyBudget", err)
	}
}

package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/inngest/inngestgo"
	"golang.org/x/sync/semaphore"

	"clerksync/webhook"
)

// InngestPath is the route Inngest calls: invocations (POST), syncs (PUT), inspection (GET).
const InngestPath = "/api/inngest"

// Limits of the requests to /api/inngest, whose bodies the SDK would read whole before it
// checks their signature (docs/operations.md, "Limits").
const (
	// MaxInngestBodyBytes caps one request: Inngest pushes at most 4 MiB of event and step
	// state to an SDK (beyond that it asks the SDK to fetch the state, which inngestgo v0.15
	// does not do), plus room for the run's context. The SDK's own limit is set to it.
	MaxInngestBodyBytes = 5 << 20
	// inngestBodyBudget bounds the buffered bytes of all the requests being read or run at
	// once: two requests of the largest size, or thousands of the usual few kilobytes. A
	// request that would go beyond it gets 503, which Inngest retries. The SDK's copy of each
	// body and its decoding come on top: allow about three times the budget.
	inngestBodyBudget = 2 * MaxInngestBodyBytes
	// inngestBodyTimeout bounds how long the body of a request whose signature is not yet
	// verified may take to arrive, once its headers are in (outside dev mode): Inngest sends
	// its bodies at once, and a stalled upload is cut well before the server's read timeout.
	inngestBodyTimeout = 10 * time.Second
	// inngestSyncTimeout bounds the wait for a sync's registration with Inngest (the SDK's own
	// call has no timeout); the server that asked gives up after 10 s.
	inngestSyncTimeout = 8 * time.Second
	// inngestSignatureMaxAge is how old a signature's timestamp may be, as the SDK checks it.
	inngestSignatureMaxAge = 5 * time.Minute
)

// Inngest is what /api/inngest needs: the two SDK handlers the guard stands in front of, and
// the keys it checks signatures with.
type Inngest struct {
	// Serve runs invocations (POST) and answers inspections (GET).
	Serve http.Handler
	// Sync answers syncs (PUT): a second SDK handler with the same functions, whose lock
	// invocations never wait on.
	Sync http.Handler
	// Dev runs unsigned requests, as the SDK does in dev mode (INNGEST_DEV).
	Dev bool
	// SigningKey and SigningKeyFallback sign Inngest's requests outside dev mode.
	SigningKey, SigningKeyFallback string
}

// inngestGuard stands in front of the SDK's handlers on /api/inngest. Outside dev mode it
// refuses, before reading any body, a request without a fresh X-Inngest-Signature; it reads
// the bodies itself within a budget (see webhook.ReadBody); it verifies the signature of GET and
// PUT itself (the SDK checks POST's, but answers an unverified GET with its configuration and
// an unsigned PUT by registering the app); and it sends PUT to a handler of its own, so that a
// sync that hangs on Inngest never holds the lock the SDK takes around it against invocations.
type inngestGuard struct {
	// serve runs invocations (POST) and answers inspections (GET).
	serve http.Handler
	// sync answers syncs (PUT): a second SDK handler with the same functions, whose lock
	// invocations never wait on.
	sync http.Handler
	// dev runs unsigned requests, as the SDK does in dev mode.
	dev                            bool
	signingKey, signingKeyFallback string
	limit                          int64
	budget                         int64
	sem                            *semaphore.Weighted
	bodyTimeout, syncTimeout       time.Duration
	// syncing holds a token while a sync runs: one at a time, the others get 503 at once.
	syncing chan struct{}
	// lastSync is the status of the last sync answered, so that a server that syncs every
	// few seconds logs at info only when the outcome changes.
	lastSync atomic.Int64
	logger   *slog.Logger
}

// newInngestGuard returns the guard of in's SDK handlers, with the service's limits. Outside
// dev mode it requires signatures by in.SigningKey (or in.SigningKeyFallback).
func newInngestGuard(in Inngest, logger *slog.Logger) *inngestGuard {
	return &inngestGuard{
		serve: in.Serve, sync: in.Sync, dev: in.Dev,
		signingKey: in.SigningKey, signingKeyFallback: in.SigningKeyFallback,
		limit: MaxInngestBodyBytes, budget: inngestBodyBudget, sem: semaphore.NewWeighted(inngestBodyBudget),
		bodyTimeout: inngestBodyTimeout, syncTimeout: inngestSyncTimeout,
		syncing: make(chan struct{}, 1),
		logger:  logger,
	}
}

// ServeHTTP answers 401 (nothing read, nothing run) to a request without a fresh signature
// outside dev mode, 413 to a body over the limit, 503 when the budget of bytes in flight is
// spent or a sync is already running, and otherwise what the SDK answers.
func (g *inngestGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sig := r.Header.Get(inngestgo.HeaderKeySignature)
	if !g.dev {
		if reason := staleSignature(sig, time.Now()); reason != "" {
			g.refuse(w, r, reason)
			return
		}
		if r.ContentLength != 0 {
			// Lifted once the body is in: the server then reads the connection to notice a
			// client that goes away, and a deadline there would cancel the run.
			rc := http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Now().Add(g.bodyTimeout))
			defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
		}
	}
	if r.ContentLength > g.limit {
		g.logger.Warn("Inngest request refused: body too large", "method", r.Method, "content_length", r.ContentLength, "max", g.limit)
		writeJSONError(w, http.StatusRequestEntityTooLarge, "request body larger than "+strconv.FormatInt(g.limit, 10)+" bytes")
		return
	}
	// The announced length sizes nothing: each growth of the buffer is reserved as bytes arrive.
	body, reserved, err := webhook.ReadBody(r.Body, -1, g.limit, g.sem.TryAcquire)
	defer g.sem.Release(reserved)
	switch {
	case errors.Is(err, webhook.ErrBodyTooLarge):
		g.logger.Warn("Inngest request refused: body too large", "method", r.Method, "bytes_read", len(body), "max", g.limit)
		writeJSONError(w, http.StatusRequestEntityTooLarge, "request body larger than "+strconv.FormatInt(g.limit, 10)+" bytes")
		return
	case errors.Is(err, webhook.ErrBodyBudget):
		g.logger.Warn("Inngest request refused: too many request bytes in flight; Inngest retries it", "method", r.Method, "bytes_read", len(body), "budget", g.budget)
		w.Header().Set("Retry-After", "1")
		writeJSONError(w, http.StatusServiceUnavailable, "busy: too many large requests in flight; retry")
		return
	case err != nil:
		g.logger.Info("Inngest request refused: reading the body failed", "method", r.Method, "bytes_read", len(body), "error", err)
		writeJSONError(w, http.StatusBadRequest, "could not read the request body")
		return
	}
	if !g.dev && r.Method != http.MethodPost {
		if ok, _, _ := inngestgo.ValidateRequestSignature(r.Context(), sig, g.signingKey, g.signingKeyFallback, body, false); !ok {
			g.refuse(w, r, "invalid signature")
			return
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	if r.Method == http.MethodPut {
		g.serveSync(w, r)
		return
	}
	g.serve.ServeHTTP(w, r)
}

// staleSignature returns why sig cannot be a valid Inngest signature at now, before the body
// is read: missing, malformed, or older than the SDK accepts. It returns "" when only the body
// can tell.
func staleSignature(sig string, now time.Time) string {
	if sig == "" {
		return "no " + inngestgo.HeaderKeySignature + " header"
	}
	v, err := url.ParseQuery(sig)
	if err != nil || v.Get("s") == "" {
		return "malformed signature"
	}
	ts, err := strconv.ParseInt(v.Get("t"), 10, 64)
	if err != nil {
		return "malformed signature"
	}
	if now.Sub(time.Unix(ts, 0)) > inngestSignatureMaxAge {
		return "expired signature"
	}
	return ""
}

// refuse answers 401 to a request whose signature is missing or wrong, and logs it at info:
// the caller is not Inngest (or Inngest's signing key is not the service's), and learns nothing
// else.
func (g *inngestGuard) refuse(w http.ResponseWriter, r *http.Request, reason string) {
	g.logger.Info("Inngest request refused: "+reason, "method", r.Method, "remote", r.RemoteAddr)
	w.Header().Set("Connection", "close") // the body, if any, is not read
	writeJSONError(w, http.StatusUnauthorized, "unauthorized: this route answers only requests signed by Inngest; "+
		"if you are Inngest, check that the service's INNGEST_SIGNING_KEY is your environment's signing key")
}

// serveSync runs a sync (PUT, its signature verified outside dev mode) on the sync handler,
// one at a time, and answers within syncTimeout whatever Inngest does: the SDK registers the
// app with Inngest on a client without a timeout. The SDK's own answer goes back, but for the
// text of a 5xx, which can name internal URLs; it is logged instead.
func (g *inngestGuard) serveSync(w http.ResponseWriter, r *http.Request) {
	select {
	case g.syncing <- struct{}{}:
	default:
		g.logger.Warn("Inngest sync refused: the previous one is still waiting for Inngest; Inngest retries")
		w.Header().Set("Retry-After", "10")
		writeJSONError(w, http.StatusServiceUnavailable, "a sync is already running; retry")
		return
	}
	rec := &syncRecorder{header: http.Header{}}
	done := make(chan struct{})
	start := time.Now()
	req := r.WithContext(context.WithoutCancel(r.Context()))
	go func() {
		defer func() { <-g.syncing }()
		defer close(done)
		g.sync.ServeHTTP(rec, req)
	}()
	select {
	case <-done:
	case <-time.After(g.syncTimeout):
		g.logger.Warn("Inngest sync: Inngest did not answer the app's registration in time; invocations are unaffected, and the next sync retries",
			"timeout", g.syncTimeout)
		writeJSONError(w, http.StatusGatewayTimeout, "the registration with Inngest did not answer in time; retry the sync")
		return
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	if status >= 500 {
		g.logger.Error("Inngest sync failed: the app could not register with Inngest; check INNGEST_BASE_URL and the signing key, then sync again",
			"status", status, "sdk_answer", rec.body.String(), "duration", time.Since(start))
		writeJSONError(w, status, "the sync failed; the service's log says why")
		return
	}
	// The dev server syncs every few seconds, and so does a self-hosted server while an app
	// it was given with -u carries an old error: repeats of the same outcome go to debug.
	level := slog.LevelInfo
	if g.dev || g.lastSync.Swap(int64(status)) == int64(status) {
		level = slog.LevelDebug
	}
	g.logger.Log(r.Context(), level, "Inngest sync", "status", status, "duration", time.Since(start))
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write(rec.body.Bytes())
}

// syncRecorder holds the SDK's answer to a sync until the guard decides what to send.
type syncRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (s *syncRecorder) Header() http.Header { return s.header }

func (s *syncRecorder) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
}

func (s *syncRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.body.Write(p)
}

// writeJSONError answers status with {"error": msg}.
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": msg})
	_, _ = w.Write(append(b, '\n'))
}

package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"clerksync/webhook"
)

// signingKey and otherSigningKey are Inngest signing keys of the shape the SDK takes.
var (
	signingKey      = "signkey-prod-" + strings.Repeat("0123456789abcdef", 4)
	otherSigningKey = "signkey-prod-" + strings.Repeat("fedcba9876543210", 4)
)

// syncBuffer is a log destination that handlers may write to while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// textLogger returns a logger at info that writes text lines to a buffer it also returns.
func textLogger() (*slog.Logger, *syncBuffer) {
	var b syncBuffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

// newSecret returns a fresh Svix signing secret.
func newSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// fakeSender is Inngest's event API: it accepts every event.
type fakeSender struct {
	mu   sync.Mutex
	sent int
}

func (s *fakeSender) Send(context.Context, any) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent++
	return "01FAKEEVENTID", nil
}

// fakePinger is the database as /readyz asks it: it answers err, and keeps the deadline it
// was given.
type fakePinger struct {
	err error

	mu       sync.Mutex
	deadline time.Time
	ok       bool
}

func (p *fakePinger) Ping(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deadline, p.ok = ctx.Deadline()
	return p.err
}

// fakeSDK stands in for one of the Inngest SDK's handlers: it records the requests it gets
// (with their bodies) and answers with answer, or 200 {"ok":true} when answer is nil.
type fakeSDK struct {
	answer func(w http.ResponseWriter, r *http.Request)

	mu    sync.Mutex
	calls []sdkCall
}

// sdkCall is one request a fakeSDK got.
type sdkCall struct {
	method        string
	body          string
	contentLength int64
}

func (f *fakeSDK) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, sdkCall{r.Method, string(body), r.ContentLength})
	f.mu.Unlock()
	if f.answer != nil {
		f.answer(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// got returns the requests f got so far.
func (f *fakeSDK) got() []sdkCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sdkCall(nil), f.calls...)
}

// fullDeps returns Deps with every dependency set: a webhook signed with secret, the Inngest
// guard in production mode over serve and sync, a database that answers, a /metrics handler,
// and the on-demand sync with token "token-...".
func fullDeps(t *testing.T, logger *slog.Logger, secret string, serve, sync http.Handler) Deps {
	t.Helper()
	v, err := webhook.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	return Deps{
		Logger:  logger,
		Webhook: &Webhook{Verifier: v, Sender: &fakeSender{}},
		Inngest: &Inngest{Serve: serve, Sync: sync, SigningKey: signingKey},
		DB:      &fakePinger{},
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "metrics\n") }),
		SyncUser: &SyncUser{
			Token: syncToken,
			Clerk: &fakeClerk{instance: "ins_1"},
			Store: &fakeStore{},
		},
	}
}

// clerkUserEvent returns a Clerk user.created envelope for id.
func clerkUserEvent(id, first string) []byte {
	return []byte(`{"object":"event","type":"user.created","timestamp":1700000000000,"data":{"object":"user","id":"` + id +
		`","first_name":"` + first + `","last_name":"Tester","created_at":1700000000000,"updated_at":1700000000000,"email_addresses":[]}}`)
}

// signedWebhook returns POST /api/webhooks/clerk with body, signed by secret as message id.
func signedWebhook(t *testing.T, secret, id string, body []byte) *http.Request {
	t.Helper()
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sig, err := wh.Sign(id, now, body)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/api/webhooks/clerk", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("svix-id", id)
	req.Header.Set("svix-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("svix-signature", sig)
	return req
}

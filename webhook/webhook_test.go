package webhook_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/labstack/echo/v4"
	svix "github.com/svix/svix-webhooks/go"

	"clerksync/clerk/event"
	"clerksync/webhook"
)

const (
	route = "/api/webhooks/clerk"
	// eventKey is the Inngest event key the SDK puts in the event API's path: POST /e/<key>.
	eventKey = "test-key"
	// marker is placed in request bodies; it must never reach the log of a rejected request.
	marker = "MARKER-7f3a9c1e-body-must-not-be-logged"
	// okTimeout is the handler's send timeout where Inngest is expected to answer at once.
	okTimeout = 5 * time.Second
)

// newSecret returns a fresh Svix signing secret: whsec_ and 24 random bytes in base64.
func newSecret(t *testing.T) string {
	t.Helper()
	return "whsec_" + base64.StdEncoding.EncodeToString(randomBytes(t, 24))
}

// newMsgID returns a fresh Svix-style message id.
func newMsgID(t *testing.T) string {
	t.Helper()
	return "msg_" + hex.EncodeToString(randomBytes(t, 12))
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("crypto/rand: %v", err)
	}
	return b
}

// signing says how signedRequest signs a body. A zero secret means no signature headers.
type signing struct {
	secret string
	id     string
	at     time.Time
	// prefix is the header set: "svix" (svix-id, …) or "webhook" (webhook-id, …).
	prefix string
}

// signedRequest returns POST /api/webhooks/clerk carrying body, signed with the real Svix library.
func signedRequest(t *testing.T, body []byte, s signing) *http.Request {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, route, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if s.secret == "" {
		return req
	}
	wh, err := svix.NewWebhook(s.secret)
	if err != nil {
		t.Fatalf("svix.NewWebhook: %v", err)
	}
	sig, err := wh.Sign(s.id, s.at, body)
	if err != nil {
		t.Fatalf("svix Sign: %v", err)
	}
	req.Header.Set(s.prefix+"-id", s.id)
	req.Header.Set(s.prefix+"-timestamp", fmt.Sprint(s.at.Unix()))
	req.Header.Set(s.prefix+"-signature", sig)
	return req
}

// stubEvent is one event as Inngest's event API received it on the wire.
type stubEvent struct {
	ID   string          `json:"id"`
	Name string          `json:"name"`
	Data json.RawMessage `json:"data"`
	TS   int64           `json:"ts"`
}

// inngestStub stands in for Inngest's event API (POST /e/<key> with a JSON array of events).
type inngestStub struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests int
	events   []stubEvent

	// release ends every delay at once (closed by Release, or at cleanup).
	release     chan struct{}
	releaseOnce sync.Once
}

// stubConfig sets how the stub answers: status (200 accepts), after an optional delay, with
// Inngest's error shape {"error":message} for any other status (message "" means "stub failure").
type stubConfig struct {
	status  int
	delay   time.Duration
	message string
}

// startStub starts an Inngest event API stub that records every event it is sent and answers
// as Inngest does: {"ids":[…],"status":200} with 200, or {"error":…,"status":…} otherwise.
func startStub(t *testing.T, cfg stubConfig) *inngestStub {
	t.Helper()
	st := &inngestStub{release: make(chan struct{})}
	message := cfg.message
	if message == "" {
		message = "stub failure"
	}
	st.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/e/"+eventKey {
			t.Errorf("Inngest stub got %s %s; want POST /e/%s", r.Method, r.URL.Path, eventKey)
			http.NotFound(w, r)
			return
		}
		var evts []stubEvent
		if err := json.NewDecoder(r.Body).Decode(&evts); err != nil {
			t.Errorf("Inngest stub: body is not a JSON array of events: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		st.mu.Lock()
		st.requests++
		st.events = append(st.events, evts...)
		st.mu.Unlock()

		if cfg.delay > 0 {
			select {
			case <-time.After(cfg.delay):
			case <-st.release:
			case <-r.Context().Done():
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(cfg.status)
		if cfg.status != http.StatusOK {
			_ = json.NewEncoder(w).Encode(map[string]any{"error": message, "status": cfg.status})
			return
		}
		ids := make([]string, len(evts))
		for i := range evts {
			ids[i] = fmt.Sprintf("01STUB%04d", i)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ids": ids, "status": 200})
	}))
	// Cleanups run last-in first-out: release a hanging handler, then close the server.
	t.Cleanup(st.srv.Close)
	t.Cleanup(st.Release)
	return st
}

// Release ends the delay of every request the stub holds, and of every later one.
func (st *inngestStub) Release() {
	st.releaseOnce.Do(func() { close(st.release) })
}

// receivedID reports whether the stub received an event with id.
func (st *inngestStub) receivedID(id string) bool {
	evts, _ := st.received()
	for _, ev := range evts {
		if ev.ID == id {
			return true
		}
	}
	return false
}

// received returns the events the stub got and how many requests carried them.
func (st *inngestStub) received() ([]stubEvent, int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]stubEvent(nil), st.events...), st.requests
}

// newSender returns the real Inngest SDK client, sending events to baseURL, each attempt
// limited to 2 s.
func newSender(t *testing.T, baseURL string) inngestgo.Client {
	t.Helper()
	return newSenderTimeout(t, baseURL, 2*time.Second)
}

// newSenderTimeout is newSender with each HTTP attempt limited to httpTimeout.
func newSenderTimeout(t *testing.T, baseURL string, httpTimeout time.Duration) inngestgo.Client {
	t.Helper()
	c, err := inngestgo.NewClient(inngestgo.ClientOpts{
		AppID:           "test",
		EventKey:        inngestgo.StrPtr(eventKey),
		EventAPIBaseURL: &baseURL,
		Dev:             inngestgo.BoolPtr(false),
		HTTPClient:      &http.Client{Timeout: httpTimeout},
		Logger:          slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("inngestgo.NewClient: %v", err)
	}
	return c
}

// newVerifier returns webhook.NewVerifier(secrets...), failing the test on error.
func newVerifier(t *testing.T, secrets ...string) *webhook.Verifier {
	t.Helper()
	v, err := webhook.NewVerifier(secrets...)
	if err != nil {
		t.Fatalf("webhook.NewVerifier: %v", err)
	}
	return v
}

// result is what one request through Echo produced.
type result struct {
	status int
	body   string
	// delivery is the answer's webhook-delivery header (Svix's delivery control).
	delivery string
	log      string
	elapsed  time.Duration
}

// post mounts webhook.Handler with opts on a real Echo instance and serves req through it.
func post(t *testing.T, v *webhook.Verifier, sender webhook.Sender, opts webhook.Options, req *http.Request) result {
	t.Helper()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := echo.New()
	e.POST(route, webhook.Handler(v, sender, logger, opts))
	rec := httptest.NewRecorder()
	start := time.Now()
	e.ServeHTTP(rec, req)
	return result{status: rec.Code, body: rec.Body.String(), delivery: rec.Header().Get(webhook.HeaderDeliveryControl),
		log: logs.String(), elapsed: time.Since(start)}
}

// checkDelivery checks that the answer tells Svix to stop retrying exactly when wantAbort.
func checkDelivery(t *testing.T, got result, wantAbort bool) {
	t.Helper()
	want := ""
	if wantAbort {
		want = webhook.DeliveryAbortMessage
	}
	if got.delivery != want {
		t.Errorf("POST %s = %d with %s: %q; want %q (response %s)", route, got.status, webhook.HeaderDeliveryControl, got.delivery, want, got.body)
	}
}

// checkForwarded checks that the request was answered with want's status and that the stub
// received exactly want (or nothing at all when want is nil).
func checkForwarded(t *testing.T, got result, wantStatus int, st *inngestStub, want *stubEvent) {
	t.Helper()
	if got.status != wantStatus {
		t.Fatalf("POST %s = %d; want %d (response %s; log:\n%s)", route, got.status, wantStatus, got.body, got.log)
	}
	evts, requests := st.received()
	if want == nil {
		if requests != 0 || len(evts) != 0 {
			t.Errorf("POST %s = %d forwarded %d event(s) in %d request(s) to Inngest: %+v; want none", route, got.status, len(evts), requests, evts)
		}
		return
	}
	if len(evts) != 1 {
		t.Fatalf("Inngest stub received %d events in %d request(s); want exactly 1: %+v", len(evts), requests, evts)
	}
	ev := evts[0]
	if ev.Name != want.Name {
		t.Errorf("forwarded event name = %q; want %q", ev.Name, want.Name)
	}
	if ev.ID != want.ID {
		t.Errorf("forwarded event id = %q; want %q", ev.ID, want.ID)
	}
	if ev.TS != want.TS {
		t.Errorf("forwarded event ts = %d; want %d", ev.TS, want.TS)
	}
	if !bytes.Equal(ev.Data, want.Data) {
		t.Errorf("forwarded event data differs from Clerk's data:\n got %s\nwant %s", ev.Data, want.Data)
	}
	var resp webhook.Response
	if err := json.Unmarshal([]byte(got.body), &resp); err != nil {
		t.Fatalf("response %q is not JSON: %v", got.body, err)
	}
	if resp.Status != "forwarded" || resp.EventID != want.ID {
		t.Errorf("response = %+v; want status %q, event_id %q", resp, "forwarded", want.ID)
	}
}

// compact returns what "data unchanged" means on the wire: raw compacted, with &, < and >
// escaped as \u0026, \u003c and \u003e the way encoding/json (and so the Inngest SDK) writes
// them. The value, key order and number spelling are Clerk's.
func compact(t *testing.T, raw string) json.RawMessage {
	t.Helper()
	var b, escaped bytes.Buffer
	if err := json.Compact(&b, []byte(raw)); err != nil {
		t.Fatalf("json.Compact(%s): %v", raw, err)
	}
	json.HTMLEscape(&escaped, b.Bytes())
	return escaped.Bytes()
}

// envelope returns a Clerk event envelope. ts is the raw JSON of "timestamp" ("" leaves it
// out); data is the raw JSON of "data" ("" leaves it out).
func envelope(typ, ts, data string) []byte {
	fields := []string{`"object":"event"`, fmt.Sprintf(`"type":%q`, typ)}
	if ts != "" {
		fields = append(fields, `"timestamp":`+ts)
	}
	if data != "" {
		fields = append(fields, `"data":`+data)
	}
	return []byte("{" + strings.Join(fields, ",") + "}")
}

// oversized returns a well-formed Clerk event of exactly n bytes.
func oversized(n int) []byte {
	head := `{"object":"event","type":"user.updated","timestamp":1716883200,"data":{"id":"user_1","note":"` + marker + `","pad":"`
	tail := `"}}`
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

// exampleFiles returns Clerk's example payloads, copied verbatim into testdata/clerk-examples
// at the repository's root.
func exampleFiles(t *testing.T) []string {
	t.Helper()
	dir := filepath.Join("..", "testdata", "clerk-examples")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		abs, _ := filepath.Abs(dir)
		t.Fatalf("no Clerk example payloads (*.json) in %s (%s), err %v", dir, abs, err)
	}
	return files
}

func TestHandler_ClerkExamples(t *testing.T) {
	t.Parallel()
	for _, file := range exampleFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var env struct {
				Type      string          `json:"type"`
				Timestamp int64           `json:"timestamp"`
				Data      json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatalf("example %s: %v", file, err)
			}
			wantTS := env.Timestamp
			if wantTS < 1e11 { // Clerk sent seconds
				wantTS *= 1000
			}
			secret := newSecret(t)
			id := newMsgID(t)
			st := startStub(t, stubConfig{status: http.StatusOK})
			req := signedRequest(t, body, signing{secret: secret, id: id, at: time.Now(), prefix: "svix"})

			got := post(t, newVerifier(t, secret), newSender(t, st.srv.URL), webhook.Options{Timeout: okTimeout}, req)

			checkForwarded(t, got, http.StatusOK, st, &stubEvent{
				Name: event.Name(env.Type),
				ID:   event.ID(id),
				TS:   wantTS,
				Data: compact(t, string(env.Data)),
			})
		})
	}
}

// Odd but valid Clerk user data, forwarded unchanged.
var (
	hugeMetadata = `{"id":"user_big","public_metadata":{"blob":"` + strings.Repeat("x", 200<<10) + `"}}`
	unicodeUser  = `{"id":"user_uni","first_name":"Zoë 😀","last_name":"Ñandú 山田","username":"zoë_😀"}`
	nullUser     = `{"id":"user_null","first_name":null,"last_name":null,"username":null,"image_url":null,` +
		`"primary_email_address_id":null,"email_addresses":null,"private_metadata":null,"created_at":null,"updated_at":null}`
)

// delHeader returns an edit that removes one header after signing.
func delHeader(name string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Del(name) }
}

func TestHandler(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	userData := `{"id": "user_1", "note": "` + marker + `"}`
	valid := envelope("user.created", "1716883200", userData)
	sixMin := 6 * time.Minute

	tests := []struct {
		name string
		body []byte
		// signer is the secret the request is signed with; "" means secret.
		signer string
		// skew moves the signature's timestamp away from now.
		skew time.Duration
		// prefix is the signature header set; "" means svix.
		prefix string
		// edit changes the request after signing.
		edit       func(r *http.Request)
		wantStatus int
		// wantName, wantTS and wantData describe the forwarded event; wantName "" means
		// nothing may be forwarded.
		wantName string
		wantTS   int64
		wantData string
	}{
		{
			name: "timestamp in seconds is sent in ms", body: valid,
			wantStatus: http.StatusOK, wantName: event.UserCreated, wantTS: 1716883200000, wantData: userData,
		},
		{
			name: "timestamp in ms is sent unchanged", body: envelope("user.updated", "1654012824306", userData),
			wantStatus: http.StatusOK, wantName: event.UserUpdated, wantTS: 1654012824306, wantData: userData,
		},
		{
			name: "webhook-* headers", body: valid, prefix: "webhook",
			wantStatus: http.StatusOK, wantName: event.UserCreated, wantTS: 1716883200000, wantData: userData,
		},
		{
			name: "organization.created is forwarded too", body: envelope("organization.created", "1654012591835", `{"id":"org_1","name":"Acme"}`),
			wantStatus: http.StatusOK, wantName: event.Name("organization.created"), wantTS: 1654012591835, wantData: `{"id":"org_1","name":"Acme"}`,
		},
		{
			name:       "data keeps key order, big numbers and unicode",
			body:       envelope("user.updated", "1716883200", `{ "z": 1, "a": 12345678901234567890, "f": 1.50, "u": "Zoë 😀", "n": null, "o": {"b": [1, 2], "a": {}} }`),
			wantStatus: http.StatusOK, wantName: event.UserUpdated, wantTS: 1716883200000,
			wantData: `{ "z": 1, "a": 12345678901234567890, "f": 1.50, "u": "Zoë 😀", "n": null, "o": {"b": [1, 2], "a": {}} }`,
		},
		// encoding/json (inside the SDK) escapes & < > as \u0026 \u003c \u003e: the same JSON
		// value; compact() expects exactly that.
		{
			name:       "data with & < > is sent unchanged",
			body:       envelope("user.updated", "1716883200", `{"first_name":"Tom & Jerry","last_name":"<b>"}`),
			wantStatus: http.StatusOK, wantName: event.UserUpdated, wantTS: 1716883200000,
			wantData: `{"first_name":"Tom & Jerry","last_name":"<b>"}`,
		},
		{
			name: "200 KB of metadata within the limit", body: envelope("user.updated", "1716883200", hugeMetadata),
			wantStatus: http.StatusOK, wantName: event.UserUpdated, wantTS: 1716883200000, wantData: hugeMetadata,
		},
		{
			name: "unicode and emoji names", body: envelope("user.created", "1716883200", unicodeUser),
			wantStatus: http.StatusOK, wantName: event.UserCreated, wantTS: 1716883200000, wantData: unicodeUser,
		},
		{
			name: "every nullable field null", body: envelope("user.created", "1716883200", nullUser),
			wantStatus: http.StatusOK, wantName: event.UserCreated, wantTS: 1716883200000, wantData: nullUser,
		},
		{name: "empty body", body: []byte{}, wantStatus: http.StatusBadRequest},
		{name: "invalid UTF-8", body: envelope("user.created", "1716883200", "{\"first_name\":\"\xff\xfe\"}"), wantStatus: http.StatusBadRequest},
		{name: "JSON nested 10,000 deep", body: envelope("user.created", "1716883200", `{"x":`+strings.Repeat("[", 10000)+strings.Repeat("]", 10000)+`}`), wantStatus: http.StatusBadRequest},
		{name: "valid signature over an array", body: []byte(`[1,2,3]`), wantStatus: http.StatusBadRequest},
		{name: "valid signature over a string", body: []byte(`"user.created"`), wantStatus: http.StatusBadRequest},
		{name: "valid signature over a number", body: []byte(`42`), wantStatus: http.StatusBadRequest},
		{name: "type is not a string", body: []byte(`{"type":7,"data":{}}`), wantStatus: http.StatusBadRequest},
		{name: "type with spaces", body: []byte(`{"type":"user created","data":{}}`), wantStatus: http.StatusBadRequest},
		{name: "timestamp not a number", body: []byte(`{"type":"user.created","timestamp":"soon","data":{}}`), wantStatus: http.StatusBadRequest},
		{name: "2 MiB body", body: oversized(2 << 20), wantStatus: http.StatusRequestEntityTooLarge},
		{name: "missing svix-id", body: valid, edit: delHeader("svix-id"), wantStatus: http.StatusUnauthorized},
		{name: "missing svix-timestamp", body: valid, edit: delHeader("svix-timestamp"), wantStatus: http.StatusUnauthorized},
		{name: "missing svix-signature", body: valid, edit: delHeader("svix-signature"), wantStatus: http.StatusUnauthorized},
		{name: "signature of another delivery id", body: valid, edit: func(r *http.Request) { r.Header.Set("svix-id", "msg_other") }, wantStatus: http.StatusUnauthorized},
		{name: "signature with unknown version only", body: valid, edit: func(r *http.Request) {
			r.Header.Set("svix-signature", strings.Replace(r.Header.Get("svix-signature"), "v1,", "v2,", 1))
		}, wantStatus: http.StatusUnauthorized},
		{
			name: "signed with another secret", body: valid, signer: newSecret(t),
			wantStatus: http.StatusUnauthorized,
		},
		{
			name: "timestamp 6 minutes old", body: valid, skew: -sixMin,
			wantStatus: http.StatusUnauthorized,
		},
		{
			name: "timestamp 6 minutes in the future", body: valid, skew: sixMin,
			wantStatus: http.StatusUnauthorized,
		},
		{
			name: "no signature headers", body: valid,
			edit: func(r *http.Request) {
				for _, h := range []string{"svix-id", "svix-timestamp", "svix-signature"} {
					r.Header.Del(h)
				}
			},
			wantStatus: http.StatusUnauthorized,
		},
		{
			name: "body changed by one byte after signing", body: valid,
			edit: func(r *http.Request) {
				changed := bytes.Replace(valid, []byte("user_1"), []byte("user_2"), 1)
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(changed)), int64(len(changed))
			},
			wantStatus: http.StatusUnauthorized,
		},
		{
			name: "body 512 KiB + 1 byte", body: oversized(webhook.DefaultMaxBodyBytes + 1),
			wantStatus: http.StatusRequestEntityTooLarge,
		},
		{
			name: "body 512 KiB + 1 byte, length unknown", body: oversized(webhook.DefaultMaxBodyBytes + 1),
			edit:       func(r *http.Request) { r.ContentLength = -1 },
			wantStatus: http.StatusRequestEntityTooLarge,
		},
		{name: "bad JSON", body: []byte(`{"type":"user.created","data":{"id":"user_1"`), wantStatus: http.StatusBadRequest},
		{name: "trailing data after the object", body: append(append([]byte{}, valid...), `{}`...), wantStatus: http.StatusBadRequest},
		// Fails: decodeEvent's dec.More() is false before ']' or '}', so this invalid JSON
		// is forwarded with 200.
		{name: "trailing ] after the object", body: append(append([]byte{}, valid...), ']'), wantStatus: http.StatusBadRequest},
		{name: "no type", body: []byte(`{"object":"event","timestamp":1716883200,"data":{"id":"user_1"}}`), wantStatus: http.StatusBadRequest},
		{name: "data is an array", body: envelope("user.created", "1716883200", `[{"id":"user_1"}]`), wantStatus: http.StatusBadRequest},
		{name: "data missing", body: envelope("user.created", "1716883200", ""), wantStatus: http.StatusBadRequest},
		{name: "data is null", body: envelope("user.created", "1716883200", "null"), wantStatus: http.StatusBadRequest},
		{name: "body is an array", body: []byte(`[` + string(valid) + `]`), wantStatus: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			signer := tt.signer
			if signer == "" {
				signer = secret
			}
			prefix := tt.prefix
			if prefix == "" {
				prefix = "svix"
			}
			id := newMsgID(t)
			req := signedRequest(t, tt.body, signing{secret: signer, id: id, at: time.Now().Add(tt.skew), prefix: prefix})
			if tt.edit != nil {
				tt.edit(req)
			}
			st := startStub(t, stubConfig{status: http.StatusOK})

			got := post(t, newVerifier(t, secret), newSender(t, st.srv.URL), webhook.Options{Timeout: okTimeout}, req)

			var want *stubEvent
			if tt.wantName != "" {
				want = &stubEvent{Name: tt.wantName, ID: event.ID(id), TS: tt.wantTS, Data: compact(t, tt.wantData)}
			}
			checkForwarded(t, got, tt.wantStatus, st, want)
			// Every 400 here is a verified body that is not a Clerk event: a retry cannot change
			// it, nor a 413's; a 401 can succeed once the secret is fixed.
			checkDelivery(t, got, tt.wantStatus == http.StatusBadRequest || tt.wantStatus == http.StatusRequestEntityTooLarge)
			if tt.wantStatus == http.StatusUnauthorized {
				if !strings.Contains(got.log, "webhook rejected") {
					t.Errorf("POST %s = 401 logged no rejection; log:\n%s", route, got.log)
				}
				if strings.Contains(got.log, marker) {
					t.Errorf("POST %s = 401 logged the request body; log:\n%s", route, got.log)
				}
			}
		})
	}
}

func TestHandler_EnvelopeWithoutTimestamp(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	id := newMsgID(t)
	at := time.Now()
	data := `{"id":"user_1"}`
	st := startStub(t, stubConfig{status: http.StatusOK})
	req := signedRequest(t, envelope("user.deleted", "", data), signing{secret: secret, id: id, at: at, prefix: "svix"})

	got := post(t, newVerifier(t, secret), newSender(t, st.srv.URL), webhook.Options{Timeout: okTimeout}, req)

	// The documented fallback: the signature's timestamp (seconds), in ms.
	checkForwarded(t, got, http.StatusOK, st, &stubEvent{
		Name: event.UserDeleted, ID: event.ID(id), TS: at.Unix() * 1000, Data: compact(t, data),
	})
}

func TestHandler_RotatedSecret(t *testing.T) {
	t.Parallel()
	previous, current := newSecret(t), newSecret(t)
	body := envelope("user.created", "1716883200", `{"id":"user_1"}`)
	tests := []struct {
		name       string
		signer     string
		wantStatus int
	}{
		{"signed with the old secret", previous, http.StatusOK},
		{"signed with the new secret", current, http.StatusOK},
		{"signed with neither", newSecret(t), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := newMsgID(t)
			st := startStub(t, stubConfig{status: http.StatusOK})
			req := signedRequest(t, body, signing{secret: tt.signer, id: id, at: time.Now(), prefix: "svix"})

			got := post(t, newVerifier(t, previous, current), newSender(t, st.srv.URL), webhook.Options{Timeout: okTimeout}, req)

			var want *stubEvent
			if tt.wantStatus == http.StatusOK {
				want = &stubEvent{Name: event.UserCreated, ID: event.ID(id), TS: 1716883200000, Data: compact(t, `{"id":"user_1"}`)}
			}
			checkForwarded(t, got, tt.wantStatus, st, want)
		})
	}
}

func TestHandler_SendFailure(t *testing.T) {
	t.Parallel()
	const (
		timeout = 1 * time.Second
		bound   = 5 * time.Second
	)
	// closedURL is an event API nobody listens on any more.
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name string
		// stub is how the Inngest stub answers; nil means use closedURL instead.
		stub *stubConfig
	}{
		{"Inngest answers 500 (SDK retries)", &stubConfig{status: http.StatusInternalServerError}},
		{"Inngest hangs past the timeout", &stubConfig{status: http.StatusOK, delay: 30 * time.Second}},
		{"Inngest unreachable", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secret := newSecret(t)
			url := closedURL
			var st *inngestStub
			if tt.stub != nil {
				st = startStub(t, *tt.stub)
				url = st.srv.URL
			}
			req := signedRequest(t, envelope("user.created", "1716883200", `{"id":"user_1"}`),
				signing{secret: secret, id: newMsgID(t), at: time.Now(), prefix: "svix"})

			got := post(t, newVerifier(t, secret), newSender(t, url), webhook.Options{Timeout: timeout}, req)

			if got.status != http.StatusServiceUnavailable {
				t.Errorf("POST %s = %d; want %d (response %s; log:\n%s)", route, got.status, http.StatusServiceUnavailable, got.body, got.log)
			}
			checkDelivery(t, got, false)
			if got.elapsed > bound {
				t.Errorf("POST %s took %v; want under %v (handler timeout %v)", route, got.elapsed, bound, timeout)
			}
			if st != nil {
				if _, requests := st.received(); requests == 0 {
					t.Errorf("Inngest stub received no request; want the handler to have tried to send")
				}
			}
		})
	}
}

func TestNewVerifier(t *testing.T) {
	t.Parallel()
	good := newSecret(t)
	tests := []struct {
		name    string
		secrets []string
		wantErr bool
	}{
		{"no secrets", nil, true},
		{"secret without whsec_ prefix", []string{strings.TrimPrefix(good, "whsec_")}, true},
		{"whsec_ and invalid base64", []string{"whsec_not*valid*base64!"}, true},
		{"whsec_ and nothing", []string{"whsec_"}, true},
		{"second secret invalid", []string{good, "whsec_%%%"}, true},
		{"one valid secret", []string{good}, false},
		{"two valid secrets", []string{good, newSecret(t)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := webhook.NewVerifier(tt.secrets...)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("NewVerifier(%q) error = %v; want error: %v", tt.secrets, err, tt.wantErr)
			}
			if err == nil && v == nil {
				t.Errorf("NewVerifier(%q) = nil, nil; want a Verifier", tt.secrets)
			}
		})
	}
}

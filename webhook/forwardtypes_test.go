package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"clerksync/clerk/event"
	"clerksync/webhook"
)

// otpEvent is an email.created event as Clerk sends it for a sign-in code: its data carries
// the one-time code, which must not reach Inngest's event history unless asked for.
const otpEvent = `{"object":"event","type":"email.created","timestamp":1716883200000,"data":{"object":"email",` +
	`"id":"ema_1","slug":"verification_code","to_email_address":"user@example.org","data":{"otp_code":"123456"},` +
	`"body":"Your code is 123456","status":"queued"}}`

// forwardTypesResult is what one request through a handler with some Options produced.
type forwardTypesResult struct {
	status  int
	resp    webhook.Response
	sent    []string // the names of the events sent to Inngest
	payload string   // every event sent, as JSON
	metrics map[string]int
	log     string
}

// postWith serves req through a handler with opts (and a recording Sender and Metrics).
func postWith(t *testing.T, secret string, opts webhook.Options, req *http.Request) forwardTypesResult {
	t.Helper()
	sender := &recordingSender{}
	m := &recordingMetrics{}
	opts.Metrics = m
	var logs bytes.Buffer
	e := echo.New()
	e.POST(route, webhook.Handler(newVerifier(t, secret), sender, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), opts))
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	got := forwardTypesResult{status: rec.Code, metrics: m.snapshot(), log: logs.String()}
	if err := json.Unmarshal(rec.Body.Bytes(), &got.resp); err != nil {
		t.Fatalf("POST %s = %d %q: not JSON: %v", route, rec.Code, rec.Body, err)
	}
	for _, b := range sender.sent {
		var evts []struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(b, &evts); err != nil || len(evts) != 1 {
			t.Fatalf("sent %s: %v; want one event", b, err)
		}
		got.sent = append(got.sent, evts[0].Name)
		got.payload += string(b)
	}
	return got
}

// TestHandlerForwardsOnlyHandledTypes: by default only the types the functions handle reach
// Inngest; a verified event of another type is answered 200 "ignored", counted, and not sent.
// Options.ForwardTypes and Options.ForwardAll forward more.
func TestHandlerForwardsOnlyHandledTypes(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	handled := event.Handled()
	type want struct {
		status  int
		answer  string   // Response.Status
		sent    []string // event names sent to Inngest; nil: none
		metrics map[string]int
	}
	forwarded := func(typ string) want {
		return want{http.StatusOK, "forwarded", []string{event.Name(typ)}, map[string]int{"received": 1, "verified": 1, "forwarded": 1}}
	}
	ignored := func(label string) want {
		return want{http.StatusOK, webhook.StatusIgnored, nil, map[string]int{"received": 1, "verified": 1, "ignored:" + label: 1}}
	}
	tests := []struct {
		name   string
		opts   webhook.Options
		body   []byte
		signer string // "" signs with secret
		want   want
	}{
		{"email.created with an OTP code is not forwarded", webhook.Options{}, []byte(otpEvent), "", ignored("email.created")},
		{"session.created is not forwarded", webhook.Options{}, envelope("session.created", "1716883200", `{"id":"sess_1","user_id":"user_1"}`), "", ignored("session.created")},
		{"unknown type is not forwarded", webhook.Options{}, envelope("widget.exploded", "1716883200", `{"id":"w_1"}`), "", ignored("widget.exploded")},
		{"odd type is counted as other", webhook.Options{}, envelope("Widget-X.exploded", "1716883200", `{"id":"w_1"}`), "", ignored(webhook.IgnoredOtherType)},
		{"forged email.created is still 401", webhook.Options{}, []byte(otpEvent), newSecret(t),
			want{http.StatusUnauthorized, "", nil, map[string]int{"received": 1, "rejected:signature": 1}}},
		{"listed in ForwardTypes: forwarded", webhook.Options{ForwardTypes: []string{"session.created", "email.created"}}, []byte(otpEvent), "", forwarded("email.created")},
		{"not listed in ForwardTypes: not forwarded", webhook.Options{ForwardTypes: []string{"email.created"}},
			envelope("session.created", "1716883200", `{"id":"sess_1"}`), "", ignored("session.created")},
		{"ForwardTypes keeps the handled types", webhook.Options{ForwardTypes: []string{"email.created"}},
			envelope("user.deleted", "1716883200", `{"id":"user_1","deleted":true}`), "", forwarded("user.deleted")},
		{"ForwardAll: email.created forwarded", webhook.Options{ForwardAll: true}, []byte(otpEvent), "", forwarded("email.created")},
		{"ForwardAll: unknown type forwarded", webhook.Options{ForwardAll: true}, envelope("widget.exploded", "1716883200", `{"id":"w_1"}`), "", forwarded("widget.exploded")},
	}
	for _, name := range handled {
		typ := strings.TrimPrefix(name, event.NamePrefix)
		tests = append(tests, struct {
			name   string
			opts   webhook.Options
			body   []byte
			signer string
			want   want
		}{"handled " + typ + " is forwarded", webhook.Options{}, envelope(typ, "1716883200", `{"id":"x_1"}`), "", forwarded(typ)})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			signer := tt.signer
			if signer == "" {
				signer = secret
			}
			req := signedRequest(t, tt.body, signing{secret: signer, id: newMsgID(t), at: time.Now(), prefix: "svix"})

			got := postWith(t, secret, tt.opts, req)

			if got.status != tt.want.status {
				t.Fatalf("POST %s = %d %+v; want %d (log:\n%s)", route, got.status, got.resp, tt.want.status, got.log)
			}
			if got.resp.Status != tt.want.answer {
				t.Errorf("POST %s = %d with status %q; want %q", route, got.status, got.resp.Status, tt.want.answer)
			}
			if !reflect.DeepEqual(got.sent, tt.want.sent) {
				t.Errorf("events sent to Inngest = %q; want %q", got.sent, tt.want.sent)
			}
			if !reflect.DeepEqual(got.metrics, tt.want.metrics) {
				t.Errorf("metrics calls = %v; want %v", got.metrics, tt.want.metrics)
			}
			if tt.want.sent == nil && strings.Contains(got.payload+got.log, "123456") {
				t.Errorf("the one-time code reached Inngest or the log:\nsent %s\nlog %s", got.payload, got.log)
			}
			if tt.want.answer == webhook.StatusIgnored && !strings.Contains(got.log, "type=") {
				t.Errorf("no log line names the ignored type; log:\n%s", got.log)
			}
		})
	}
}

// TestHandlerIgnoredTypeLabelsBounded: the types counted as ignored are at most 64 distinct
// labels; later new types are counted as "other", the first ones still under their name.
func TestHandlerIgnoredTypeLabelsBounded(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	m := &recordingMetrics{}
	e := echo.New()
	e.POST(route, webhook.Handler(newVerifier(t, secret), &recordingSender{}, slog.New(slog.DiscardHandler), webhook.Options{Metrics: m}))
	post := func(typ string) {
		req := signedRequest(t, envelope(typ, "1716883200", `{"id":"x"}`), signing{secret: secret, id: newMsgID(t), at: time.Now(), prefix: "svix"})
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("POST %s (%s) = %d; want 200", route, typ, rec.Code)
		}
	}
	for i := range 100 {
		post(fmt.Sprintf("custom.type%d", i))
	}
	post("custom.type0")
	labels := 0
	for k, n := range m.snapshot() {
		if label, ok := strings.CutPrefix(k, "ignored:"); ok && label != webhook.IgnoredOtherType {
			labels++
			if want := map[bool]int{true: 2, false: 1}[label == "custom.type0"]; n != want {
				t.Errorf("ignored %s counted %d; want %d", label, n, want)
			}
		}
	}
	if got := m.snapshot(); labels != 64 || got["ignored:"+webhook.IgnoredOtherType] != 36 {
		t.Errorf("ignored: %d distinct type labels, %d as %q; want 64 and 36 (calls %v)", labels, got["ignored:"+webhook.IgnoredOtherType], webhook.IgnoredOtherType, got)
	}
}

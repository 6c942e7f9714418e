package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	svix "github.com/svix/svix-webhooks/go"

	"clerksync/clerk/event"
	"clerksync/webhook"
)

// fuzzSecret is fixed so that the seed corpus (testdata/fuzz/FuzzHandler) stays meaningful.
const fuzzSecret = "whsec_ZnV6ei10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5"

// recordingSender keeps what it is sent, after checking that it marshals the way the SDK
// will marshal it.
type recordingSender struct {
	mu   sync.Mutex
	sent [][]byte
}

func (s *recordingSender) Send(_ context.Context, evt any) (string, error) {
	b, err := json.Marshal([]any{evt})
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, b)
	return "01FUZZ", nil
}

// FuzzHandler feeds arbitrary bodies, signed or not, at any clock skew, through the handler:
// it must never panic, must answer one of its documented statuses, must forward exactly one
// well-formed event of a handled type when it answers 200 and does not say "ignored", and
// nothing otherwise. The seed corpus runs as an ordinary test.
func FuzzHandler(f *testing.F) {
	v, err := webhook.NewVerifier(fuzzSecret)
	if err != nil {
		f.Fatal(err)
	}
	wh, err := svix.NewWebhook(fuzzSecret)
	if err != nil {
		f.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, body []byte, sign bool, skewSeconds int64, webhookHeaders bool) {
		sender := &recordingSender{}
		e := echo.New()
		e.POST(route, webhook.Handler(v, sender, logger, webhook.Options{Timeout: time.Second}))

		skew := time.Duration(skewSeconds%100_000) * time.Second
		at := time.Now().Add(skew)
		req := httptest.NewRequest(http.MethodPost, route, bytes.NewReader(body))
		prefix := "svix"
		if webhookHeaders {
			prefix = "webhook"
		}
		if sign {
			sig, err := wh.Sign("msg_fuzz", at, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(prefix+"-id", "msg_fuzz")
			req.Header.Set(prefix+"-timestamp", strconv.FormatInt(at.Unix(), 10))
			req.Header.Set(prefix+"-signature", sig)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		got := rec.Code

		switch got {
		case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("POST %s = %d (%s); want one of 200, 400, 401, 413", route, got, rec.Body)
		}
		tooLarge := len(body) > webhook.DefaultMaxBodyBytes
		inTolerance := skew > -290*time.Second && skew < 290*time.Second
		switch {
		case tooLarge && got != http.StatusRequestEntityTooLarge:
			t.Fatalf("POST %s with %d bytes = %d; want 413", route, len(body), got)
		case !tooLarge && !sign && got != http.StatusUnauthorized:
			t.Fatalf("unsigned POST %s = %d; want 401", route, got)
		case !tooLarge && sign && inTolerance && got != http.StatusOK && got != http.StatusBadRequest:
			t.Fatalf("signed POST %s = %d (%s); want 200 or 400", route, got, rec.Body)
		case got == http.StatusOK && !json.Valid(body):
			t.Fatalf("POST %s of invalid JSON = 200; want 400", route)
		}

		var resp webhook.Response
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("POST %s = %d with %q: not JSON: %v", route, got, rec.Body, err)
		}
		if got != http.StatusOK || resp.Status == webhook.StatusIgnored {
			if len(sender.sent) != 0 {
				t.Fatalf("POST %s = %d %+v but forwarded %d events; want none", route, got, resp, len(sender.sent))
			}
			return
		}
		if len(sender.sent) != 1 {
			t.Fatalf("POST %s = 200 but forwarded %d events; want 1", route, len(sender.sent))
		}
		var evts []struct {
			ID   string          `json:"id"`
			Name string          `json:"name"`
			Data json.RawMessage `json:"data"`
			TS   int64           `json:"ts"`
		}
		if err := json.Unmarshal(sender.sent[0], &evts); err != nil || len(evts) != 1 {
			t.Fatalf("forwarded %s: %v", sender.sent[0], err)
		}
		ev := evts[0]
		if ev.ID != event.ID("msg_fuzz") || !slices.Contains(event.Handled(), ev.Name) || ev.TS <= 0 || len(ev.Data) == 0 || ev.Data[0] != '{' {
			t.Fatalf("forwarded event id=%q name=%q ts=%d data=%.40s; want id clerk-msg_fuzz, one of event.Handled, ts > 0, an object", ev.ID, ev.Name, ev.TS, ev.Data)
		}
	})
}

// TestFuzzSeedCorpusPresent keeps the seed corpus from disappearing unnoticed.
func TestFuzzSeedCorpusPresent(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"FuzzHandler"} {
		files, _ := filepath.Glob("testdata/fuzz/" + name + "/*")
		if len(files) < 5 {
			t.Errorf("testdata/fuzz/%s has %d seed files; want the committed corpus (at least 5)", name, len(files))
		}
	}
}

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inngest/inngestgo"
	svix "github.com/svix/svix-webhooks/go"

	"clerksync/store"
)

// cloudService starts the service through run in Inngest Cloud mode (keys, no INNGEST_DEV)
// against a database the test can read, reached through a proxy the test can cut.
type cloudService struct {
	*service
	secret, eventKey, signingKey string
	db                           *proxy
	store                        *store.Store
}

func startCloudService(t *testing.T) *cloudService {
	t.Helper()
	db := newDatabase(t, "cloud")
	c := &cloudService{
		secret:     newSecret(t),
		eventKey:   "evtkey-" + strings.Repeat("e", 40),
		signingKey: "signkey-prod-" + strings.Repeat("0123456789abcdef", 4),
		db:         startProxy(t, strings.TrimPrefix(db.base, "mongodb://")),
		store:      db.store,
	}
	c.service = startService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": c.secret,
		"INNGEST_EVENT_KEY":            c.eventKey,
		"INNGEST_SIGNING_KEY":          c.signingKey,
		"INNGEST_SERVE_URL":            "https://sync.example.com/api/inngest",
		"INNGEST_BASE_URL":             "http://127.0.0.1:1", // no Inngest Cloud from tests
		"MONGODB_URI":                  "mongodb://" + c.db.addr() + "/" + db.name,
		"WEBHOOK_FORWARD_TIMEOUT":      "6s", // longer than the SDK's 5 attempts against a refused connection (about 3.5 s), so their error is what gets logged
		"LOG_LEVEL":                    "debug",
	})
	return c
}

// invokeBody returns what Inngest posts to run sync-user-from-clerk for a user.created event.
func invokeBody(userID, firstName string) []byte {
	evt := map[string]any{
		"name": "clerk/user.created", "id": "clerk-msg_invoke_" + userID, "ts": 1700000000000,
		"data": map[string]any{"id": userID, "first_name": firstName, "updated_at": 1700000000000, "created_at": 1700000000000},
	}
	b, _ := json.Marshal(map[string]any{
		"event": evt, "events": []any{evt}, "steps": map[string]any{},
		"ctx": map[string]any{
			"fn_id": "0b1f1c7e-7c1a-4a4e-9a55-2b8f0d1e6c11", "run_id": "01JRUNRUNRUNRUNRUNRUNRUNRU", "step_id": "step",
			"attempt": 0, "stack": map[string]any{"current": 0, "stack": []string{}},
		},
	})
	return b
}

func TestCloudModeServeHandlerRequiresSignature(t *testing.T) {
	parallel(t)
	c := startCloudService(t)
	fnURL := c.url + "/api/inngest?" + url.Values{"fnId": {"clerk-user-sync-sync-user-from-clerk"}, "stepId": {"step"}}.Encode()
	sign := func(key string, at time.Time, body []byte) string {
		sig, err := inngestgo.Sign(context.Background(), at, []byte(key), body)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	otherKey := "signkey-prod-" + strings.Repeat("fedcba9876543210", 4)
	tests := []struct {
		name     string
		user     string
		sig      func(body []byte) string
		wantAuth bool
	}{
		{"unsigned", "user_unsigned", func([]byte) string { return "" }, false},
		{"signed with another key", "user_forged", func(b []byte) string { return sign(otherKey, time.Now(), b) }, false},
		{"signature 6 minutes old (replayed)", "user_replayed", func(b []byte) string { return sign(c.signingKey, time.Now().Add(-6*time.Minute), b) }, false},
		{"signature of another body", "user_changed", func(b []byte) string { return sign(c.signingKey, time.Now(), invokeBody("user_other", "Other")) }, false},
		{"garbage signature", "user_garbage", func([]byte) string { return "t=abc&s=zz" }, false},
		{"signed with the signing key", "user_signed", func(b []byte) string { return sign(c.signingKey, time.Now(), b) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := invokeBody(tt.user, "Marker-invoke-body")
			req, _ := http.NewRequest(http.MethodPost, fnURL, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if sig := tt.sig(body); sig != "" {
				req.Header.Set("X-Inngest-Signature", sig)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			respBody, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			_, getErr := c.store.Get(context.Background(), tt.user)
			if tt.wantAuth {
				if resp.StatusCode >= 400 || getErr != nil {
					t.Errorf("signed POST /api/inngest = %d %s, user stored: %v; want it run (2xx) and the user stored", resp.StatusCode, respBody, getErr)
				}
				return
			}
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("POST /api/inngest %s = %d %s; want 401", tt.name, resp.StatusCode, respBody)
			}
			if getErr != store.ErrNotFound {
				t.Errorf("%s: user %s stored (%v); want nothing written", tt.name, tt.user, getErr)
			}
		})
	}
}

func TestLogsHoldNoSecretsOrBodies(t *testing.T) {
	parallel(t)
	c := startCloudService(t)
	wh, _ := svix.NewWebhook(c.secret)
	other, _ := svix.NewWebhook(newSecret(t))
	var sigs []string
	post := func(wh *svix.Webhook, body []byte, id string) {
		now := time.Now()
		sig, _ := wh.Sign(id, now, body)
		sigs = append(sigs, strings.TrimPrefix(sig, "v1,"))
		req, _ := http.NewRequest(http.MethodPost, c.url+"/api/webhooks/clerk", bytes.NewReader(body))
		req.Header.Set("svix-id", id)
		req.Header.Set("svix-timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("svix-signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	marker := "BODY-MARKER-4b1d"
	event := []byte(`{"type":"user.created","timestamp":1700000000000,"data":{"id":"user_log","first_name":"` + marker + `","updated_at":1700000000000}}`)
	post(wh, event, "msg_log_valid")                                                         // verified, then Inngest unreachable: 503
	post(other, event, "msg_log_forged")                                                     // 401
	post(wh, []byte(`{"type":"user.created","data":[`+"\""+marker+"\""+`]}`), "msg_log_bad") // 400

	body := invokeBody("user_log_invoke", marker)
	sig, _ := inngestgo.Sign(context.Background(), time.Now(), []byte(c.signingKey), body)
	sigs = append(sigs, sig)
	req, _ := http.NewRequest(http.MethodPost, c.url+"/api/inngest?fnId=clerk-user-sync-sync-user-from-clerk&stepId=step", bytes.NewReader(body))
	req.Header.Set("X-Inngest-Signature", sig)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}

	logs := c.log()
	if !strings.Contains(logs, "msg_log_forged") {
		t.Fatalf("the log does not mention the rejected delivery; is it logging at all?\n%s", logs)
	}
	// The SDK's own error for the unreachable event API (not our timeout) must be what was
	// logged, with the key in its URL replaced.
	if !strings.Contains(logs, "forwarding to Inngest failed") || !strings.Contains(logs, "<INNGEST_EVENT_KEY>") {
		t.Errorf("the log has no forwarding failure quoting the event API's URL with the key replaced:\n%s", logs)
	}
	secrets := map[string]string{
		"webhook secret":           c.secret,
		"webhook secret key":       strings.TrimPrefix(c.secret, "whsec_"),
		"Inngest signing key":      strings.TrimPrefix(c.signingKey, "signkey-prod-"),
		"Inngest event key":        c.eventKey,
		"a request body's content": marker,
	}
	for i, s := range sigs {
		secrets[fmt.Sprintf("signature %d", i)] = s
	}
	for what, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the log contains %s (%q)", what, s)
		}
	}
}

func TestSlowClientsAreCut(t *testing.T) {
	parallel(t)
	base := startService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_DEV":                  "http://127.0.0.1:1",
		"DATA_DIR":                     t.TempDir(),
	}).url
	addr := strings.TrimPrefix(base, "http://")
	tests := []struct {
		name    string
		head    string // sent at once
		trickle string // then one byte a second
		within  time.Duration
	}{
		{"headers trickled", "", "POST /api/webhooks/clerk HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 60), readHeaderTimeout + 3*time.Second},
		{"body trickled", "POST /api/webhooks/clerk HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", strings.Repeat("b", 60), readTimeout + 3*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			closed := make(chan time.Duration, 1)
			go func() {
				_, _ = io.Copy(io.Discard, bufio.NewReader(conn)) // returns when the server closes
				closed <- time.Since(start)
			}()
			if _, err := conn.Write([]byte(tt.head)); err != nil {
				t.Fatal(err)
			}
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case d := <-closed:
					if d > tt.within {
						t.Errorf("%s: the server closed the connection after %v; want within %v", tt.name, d, tt.within)
					}
					return
				case <-tick.C:
					if i >= len(tt.trickle) || time.Since(start) > tt.within+5*time.Second {
						t.Fatalf("%s: the connection is still open after %v; want it cut within %v", tt.name, time.Since(start), tt.within)
					}
					_, _ = conn.Write([]byte{tt.trickle[i]})
				}
			}
		})
	}
}

func TestErrorResponsesRevealNoInternals(t *testing.T) {
	parallel(t)
	c := startCloudService(t)
	c.db.cut() // the database goes away: connections closed, new ones refused
	internals := []string{"mongo", "dial tcp", "connection refused", "server selection", "goroutine", ".go:", "ferretdb", "127.0.0.1:"}
	requests := []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/readyz", "", http.StatusServiceUnavailable},
		{"POST", "/api/webhooks/clerk", `{"type":"user.created","data":{}}`, http.StatusUnauthorized},
		{"GET", "/no/such/route", "", http.StatusNotFound},
		{"DELETE", "/api/webhooks/clerk", "", http.StatusMethodNotAllowed},
		{"POST", "/api/inngest?fnId=nope", "{", http.StatusUnauthorized},
	}
	for _, r := range requests {
		req, _ := http.NewRequest(r.method, c.url+r.path, strings.NewReader(r.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != r.want {
			t.Errorf("%s %s = %d; want %d", r.method, r.path, resp.StatusCode, r.want)
		}
		for _, s := range internals {
			if strings.Contains(strings.ToLower(string(body)), s) {
				t.Errorf("%s %s = %d %q: reveals %q", r.method, r.path, resp.StatusCode, body, s)
			}
		}
	}
}

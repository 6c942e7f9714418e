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
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inngest/inngestgo"

	"clerksync/store"
)

// serveURL is the INNGEST_SERVE_URL of the production-mode tests.
const serveURL = "https://sync.example.com/api/inngest"

// inngestSyncTimeout is how long the service waits for Inngest to answer a sync's
// registration (inngestguard.go) before it answers 504.
const inngestSyncTimeout = 8 * time.Second

// standInInngest is an Inngest API that records the app registrations it receives
// (POST /fn/register), answering them as its answer func says, and accepts events (POST
// /e/<key>).
type standInInngest struct {
	url      string
	mu       sync.Mutex
	register []registration
	events   []string      // the ids of the events sent to POST /e/<key>
	got      chan struct{} // one value per registration received
	answer   func(w http.ResponseWriter, r *http.Request)
}

// registration is what a POST /fn/register carried.
type registration struct {
	auth string
	URL  string `json:"url"`
	// Functions' step URLs, which Inngest calls to run them.
	Functions []struct {
		Steps map[string]struct {
			Runtime struct {
				URL string `json:"url"`
			} `json:"runtime"`
		} `json:"steps"`
	} `json:"functions"`
}

// startStandInInngest starts a stand-in whose registrations answer(w, r); nil answers 200.
func startStandInInngest(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *standInInngest {
	t.Helper()
	s := &standInInngest{got: make(chan struct{}, 100), answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/e/") {
			type event struct {
				ID string `json:"id"`
			}
			raw, _ := io.ReadAll(r.Body)
			var evts []event
			if json.Unmarshal(raw, &evts) != nil {
				var one event
				_ = json.Unmarshal(raw, &one)
				evts = []event{one}
			}
			var ids []string
			s.mu.Lock()
			for _, e := range evts {
				s.events = append(s.events, e.ID)
				ids = append(ids, e.ID)
			}
			s.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			b, _ := json.Marshal(map[string]any{"ids": ids, "status": 200})
			_, _ = w.Write(b)
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/fn/register" {
			http.NotFound(w, r)
			return
		}
		var reg registration
		_ = json.NewDecoder(r.Body).Decode(&reg)
		reg.auth = r.Header.Get("Authorization")
		s.mu.Lock()
		s.register = append(s.register, reg)
		s.mu.Unlock()
		s.got <- struct{}{}
		if s.answer != nil {
			s.answer(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// eventIDs returns the ids of the events the stand-in accepted so far.
func (s *standInInngest) eventIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

// registrations returns what the stand-in received so far.
func (s *standInInngest) registrations() []registration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]registration(nil), s.register...)
}

// prodService is the service in production mode (keys, INNGEST_SERVE_URL) against a
// stand-in Inngest at baseURL and an embedded FerretDB the test reads.
type prodService struct {
	*service
	signingKey string
	store      *store.Store
}

func startProdService(t *testing.T, baseURL string) *prodService {
	t.Helper()
	db := newDatabase(t, "guard")
	p := &prodService{signingKey: "signkey-prod-" + strings.Repeat("0123456789abcdef", 4)}
	p.service = startService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_EVENT_KEY":            "evtkey-guard",
		"INNGEST_SIGNING_KEY":          p.signingKey,
		"INNGEST_BASE_URL":             baseURL,
		"INNGEST_SERVE_URL":            serveURL,
		"MONGODB_URI":                  db.uri,
		"LOG_LEVEL":                    "info",
	})
	p.store = db.store
	return p
}

// sign returns the X-Inngest-Signature of body by key at at.
func sign(t *testing.T, key string, at time.Time, body []byte) string {
	t.Helper()
	sig, err := inngestgo.Sign(context.Background(), at, []byte(key), body)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// do sends method path with body and headers to the service, as Host host when not empty, and
// returns the status and body.
func (p *prodService) do(t *testing.T, method, path, host string, body []byte, header map[string]string) (int, string) {
	t.Helper()
	status, answer, err := p.send(method, path, host, body, header)
	if err != nil {
		t.Fatal(err)
	}
	return status, answer
}

// send is do for any goroutine: it returns the error instead of failing the test.
func (p *prodService) send(method, path, host string, body []byte, header map[string]string) (int, string, error) {
	req, err := http.NewRequest(method, p.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// invoke runs sync-user-from-clerk for user through a signed POST /api/inngest, as Inngest
// does, and returns the status and body.
func (p *prodService) invoke(t *testing.T, user string) (int, string) {
	t.Helper()
	body := invokeBody(user, "Invoked")
	path := "/api/inngest?" + url.Values{"fnId": {"clerk-user-sync-sync-user-from-clerk"}, "stepId": {"step"}}.Encode()
	return p.do(t, http.MethodPost, path, "", body, map[string]string{
		"Content-Type": "application/json", "X-Inngest-Signature": sign(t, p.signingKey, time.Now(), body),
	})
}

// configurationLeaks are what an answer to a caller that is not Inngest must not contain: the
// SDK's inspection (function count, which keys are set, the mode) and internal addresses.
var configurationLeaks = []string{"function_count", "has_event_key", "has_signing_key", "has_signing_key_fallback", "sdk_version", "\"mode\"", "127.0.0.1", "fn/register", "functions"}

func TestUnsignedSyncOrInspectionTellsAndRegistersNothing(t *testing.T) {
	parallel(t)
	inngest := startStandInInngest(t, nil)
	p := startProdService(t, inngest.url)
	attacker := map[string]string{"X-Forwarded-Proto": "https", "Content-Type": "application/json"}
	body := []byte(`{"url":"https://attacker.example/api/inngest"}`)
	otherKey := "signkey-prod-" + strings.Repeat("fedcba9876543210", 4)
	with := func(h map[string]string, k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range h {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name, method string
		header       map[string]string
		body         []byte
	}{
		{"unsigned PUT", http.MethodPut, attacker, body},
		{"unsigned PUT, no body", http.MethodPut, attacker, nil},
		{"PUT signed with another key", http.MethodPut, with(attacker, "X-Inngest-Signature", sign(t, otherKey, time.Now(), body)), body},
		{"PUT with a signature 6 minutes old", http.MethodPut, with(attacker, "X-Inngest-Signature", sign(t, p.signingKey, time.Now().Add(-6*time.Minute), body)), body},
		{"PUT with the signature of another body", http.MethodPut, with(attacker, "X-Inngest-Signature", sign(t, p.signingKey, time.Now(), []byte(`{"url":"x"}`))), body},
		{"PUT with a garbage signature", http.MethodPut, with(attacker, "X-Inngest-Signature", "t=abc&s=zz"), body},
		{"in-band PUT unsigned", http.MethodPut, with(attacker, "X-Inngest-Sync-Kind", "in_band"), body},
		{"unsigned GET", http.MethodGet, attacker, nil},
		{"GET with a forged signature", http.MethodGet, with(attacker, "X-Inngest-Signature", sign(t, otherKey, time.Now(), nil)), nil},
		{"GET with a garbage signature", http.MethodGet, with(attacker, "X-Inngest-Signature", "t=1&s=00"), nil},
		{"unsigned trust probe", http.MethodPost, attacker, []byte("{}")},
	}
	for _, tt := range tests {
		path := "/api/inngest"
		if tt.name == "unsigned trust probe" {
			path += "?probe=trust"
		}
		got, answer := p.do(t, tt.method, path, "attacker.example", tt.body, tt.header)
		if got != http.StatusUnauthorized {
			t.Errorf("%s: %s /api/inngest = %d %s; want 401", tt.name, tt.method, got, answer)
		}
		for _, leak := range append(configurationLeaks, strings.TrimPrefix(inngest.url, "http://")) {
			if strings.Contains(answer, leak) {
				t.Errorf("%s: %s /api/inngest answered %q, which tells %q", tt.name, tt.method, answer, leak)
			}
		}
	}
	if regs := inngest.registrations(); len(regs) != 0 {
		t.Errorf("Inngest received %d registrations (the first for %q); want none", len(regs), regs[0].URL)
	}
	if got, want := strings.Count(p.log(), "Inngest request refused"), len(tests); got != want {
		t.Errorf("log lines of refused Inngest requests at LOG_LEVEL=info = %d; want %d:\n%s", got, want, p.stderr)
	}
}

func TestSignedSyncRegistersTheConfiguredURL(t *testing.T) {
	parallel(t)
	inngest := startStandInInngest(t, nil)
	p := startProdService(t, inngest.url)
	// As the server sends it (deploy.Ping): the URL it pings, signed. A replayed or proxied
	// request can name any Host; the registered URL must not follow.
	body := []byte(`{"url":"https://attacker.example/api/inngest"}`)
	got, answer := p.do(t, http.MethodPut, "/api/inngest", "attacker.example", body, map[string]string{
		"X-Forwarded-Proto": "https", "Content-Type": "application/json", "X-Inngest-Signature": sign(t, p.signingKey, time.Now(), body),
	})
	if got != http.StatusOK {
		t.Fatalf("signed PUT /api/inngest = %d %s; want 200", got, answer)
	}
	regs := inngest.registrations()
	if len(regs) != 1 {
		t.Fatalf("Inngest received %d registrations; want 1", len(regs))
	}
	if regs[0].URL != serveURL {
		t.Errorf("registered URL = %q; want INNGEST_SERVE_URL %q", regs[0].URL, serveURL)
	}
	if !strings.HasPrefix(regs[0].auth, "Bearer signkey-prod-") {
		t.Errorf("registration's Authorization = %q; want the hashed signing key", regs[0].auth)
	}
	steps := 0
	for _, fn := range regs[0].Functions {
		for _, st := range fn.Steps {
			steps++
			if !strings.HasPrefix(st.Runtime.URL, serveURL+"?") {
				t.Errorf("a function's step URL = %q; want it under %q", st.Runtime.URL, serveURL)
			}
		}
	}
	if steps == 0 {
		t.Errorf("the registration lists no function steps: %+v", regs[0])
	}
	if !strings.Contains(p.log(), `msg="Inngest sync" status=200`) {
		t.Errorf("the sync is not logged at LOG_LEVEL=info:\n%s", p.stderr)
	}
}

func TestHangingSyncHoldsNoInvocation(t *testing.T) {
	parallel(t)
	release := make(chan struct{})
	inngest := startStandInInngest(t, func(w http.ResponseWriter, r *http.Request) {
		select { // Inngest never answers the registration
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	p := startProdService(t, inngest.url)
	syncBody := []byte(`{"url":"` + serveURL + `"}`)
	signature := sign(t, p.signingKey, time.Now(), syncBody)
	signedPut := func() (int, string, error) {
		return p.send(http.MethodPut, "/api/inngest", "", syncBody, map[string]string{"X-Inngest-Signature": signature})
	}

	type answer struct {
		status int
		body   string
		err    error
		took   time.Duration
	}
	first := make(chan answer, 1)
	go func() {
		start := time.Now()
		s, b, err := signedPut()
		first <- answer{s, b, err, time.Since(start)}
	}()
	select {
	case <-inngest.got:
	case <-time.After(10 * time.Second):
		t.Fatal("the signed sync did not reach Inngest within 10s")
	}

	// While the registration hangs, Inngest's invocations still run, one after another.
	for i := range 3 {
		user := fmt.Sprintf("user_during_sync_%d", i)
		if got, body := p.invoke(t, user); got >= 300 {
			t.Errorf("signed POST /api/inngest while a sync hangs = %d %s; want 2xx", got, body)
		}
		if _, err := p.store.Get(context.Background(), user); err != nil {
			t.Errorf("user %s after its invocation: %v; want it stored", user, err)
		}
	}
	// A second sync does not queue behind the first.
	if got, body, err := signedPut(); err != nil || got != http.StatusServiceUnavailable {
		t.Errorf("second signed PUT /api/inngest while the first hangs = %d %s, %v; want 503", got, body, err)
	}
	a := <-first
	if a.err != nil || a.status != http.StatusGatewayTimeout {
		t.Errorf("signed PUT /api/inngest whose registration hangs = %d %s, %v after %v; want 504 after about %v", a.status, a.body, a.err, a.took, inngestSyncTimeout)
	}
	if n := len(inngest.registrations()); n != 1 {
		t.Errorf("Inngest received %d registrations; want 1 (the second sync refused)", n)
	}
}

func TestSyncFailureNamesNoInternalURL(t *testing.T) {
	parallel(t)
	p := startProdService(t, "http://127.0.0.1:1") // Inngest unreachable
	body := []byte(`{"url":"` + serveURL + `"}`)
	got, answer := p.do(t, http.MethodPut, "/api/inngest", "", body, map[string]string{"X-Inngest-Signature": sign(t, p.signingKey, time.Now(), body)})
	if got != http.StatusInternalServerError {
		t.Errorf("signed PUT /api/inngest with Inngest unreachable = %d %s; want 500", got, answer)
	}
	for _, leak := range []string{"127.0.0.1", "fn/register", "dial"} {
		if strings.Contains(answer, leak) {
			t.Errorf("signed PUT /api/inngest answered %q, which names %q", answer, leak)
		}
	}
	if log := p.log(); !strings.Contains(log, "Inngest sync failed") || !strings.Contains(log, "127.0.0.1:1") {
		t.Errorf("the log does not say why the sync failed:\n%s", p.stderr)
	}
	if got, answer := p.do(t, http.MethodPut, "/api/inngest", "", body, nil); got != http.StatusUnauthorized || strings.Contains(answer, "127.0.0.1") {
		t.Errorf("unsigned PUT /api/inngest with Inngest unreachable = %d %q; want 401 naming nothing", got, answer)
	}
}

func TestStalledUploadsHoldNoBodyBudget(t *testing.T) {
	parallel(t)
	p := startProdService(t, "http://127.0.0.1:1")
	host := strings.TrimPrefix(p.url, "http://")
	const stalled = 700
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	open := func(signature string) net.Conn {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatalf("stalled upload %d: %v", len(conns), err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /api/inngest?fnId=clerk-user-sync-sync-user-from-clerk&stepId=step HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n%s\r\n", host, signature)
		return c
	}
	var unsigned []net.Conn
	for range stalled {
		unsigned = append(unsigned, open("")) // announces 100 bytes, sends none
	}
	for range stalled {
		open(fmt.Sprintf("X-Inngest-Signature: t=%d&s=%s\r\n", time.Now().Unix(), strings.Repeat("0", 64))) // a fresh forgery
	}
	// The unsigned ones are answered without waiting for their bodies.
	var answered atomic.Int64
	var wg sync.WaitGroup
	for _, c := range unsigned[:50] {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if line, err := bufio.NewReader(c).ReadString('\n'); err == nil && strings.HasPrefix(line, "HTTP/1.1 401") {
				answered.Add(1)
			}
		})
	}
	wg.Wait()
	if got := answered.Load(); got != 50 {
		t.Errorf("stalled unsigned POSTs answered 401 before their bodies = %d of 50; want all", got)
	}
	for i := range 3 {
		user := fmt.Sprintf("user_beside_stalled_%d", i)
		if got, body := p.invoke(t, user); got >= 300 {
			t.Errorf("signed POST /api/inngest beside %d stalled uploads = %d %s; want 2xx", 2*stalled, got, body)
		}
	}
}

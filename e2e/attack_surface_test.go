package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"clerksync/clerk/clerkfake"
	"clerksync/store"
)

// The service's HTTP timeouts (serve.go): a client that has not sent its request's headers,
// or its whole request, by then is cut.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
)

// cutForLog returns s, cut to its first n bytes with a mark when longer, for failure messages.
func cutForLog(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…(cut)"
}

// attackRoutes is every route the service can serve (all of them on: SYNC_API_TOKEN set,
// /metrics on PORT): a copy of the list the root package's TestAttackSurfaceListsEveryRoute
// holds the service's routes to (a black-box test cannot list them). The attack tests try each
// one with every credential state.
var attackRoutes = []string{
	"GET /", "GET /healthz", "GET /readyz", "GET /metrics",
	"POST /api/webhooks/clerk",
	"POST /api/sync/users/:id",
	"GET /api/inngest", "POST /api/inngest", "PUT /api/inngest",
}

// credentialStates are what each route is tried with: no credentials, another secret's,
// forged ones, ones too old, the right ones, a body or path over the limits, and a body
// announced but never sent (with no credentials).
var credentialStates = []string{"none", "wrong", "forged", "stale", "valid", "oversized", "stalled"}

// attackCase is one request of the attack-surface tests and what must come of it.
type attackCase struct {
	route, state string
	method, path string
	header       map[string]string
	body         []byte
	// contentLength, when not 0, is announced instead of len(body) (stalled: nothing is sent).
	contentLength int
	// want is the status; 0 for a stalled request means "answered or cut, within the
	// server's timeouts".
	want []int
	// user, when set, must be stored after the request and only then; every other case's
	// user must not be.
	user string
	// event, when set, must reach Inngest; registers, when set, makes one registration.
	event     string
	registers bool
	// mayTell exempts an answer from the leak check: Inngest's own signed inspection.
	mayTell bool
}

// attackFixture is the service under attack and what it holds.
type attackFixture struct {
	url, host                               string
	secret, signingKey, syncToken, clerkKey string
	eventKey                                string
	otherSecret                             string
	dev                                     bool
	connect                                 bool // INNGEST_CONNECT: no /api/inngest, and not ready (no gateway)
	inngest                                 *standInInngest
	clerk                                   *clerkfake.Server
	store                                   *store.Store
	stderr                                  *syncBuffer
	secrets                                 map[string]string // what no answer may contain
}

func startAttackFixture(t *testing.T, dev, connect bool) *attackFixture {
	t.Helper()
	f := &attackFixture{
		secret: newSecret(t), otherSecret: newSecret(t), dev: dev, connect: connect,
		signingKey: "signkey-prod-" + strings.Repeat("a1b2c3d4", 8),
		syncToken:  strings.Repeat("t0k3n", 8),
		clerkKey:   "sk_test_attack",
		eventKey:   "evtkey-attack-" + strings.Repeat("e", 20),
	}
	f.inngest = startStandInInngest(t, nil)
	f.clerk = clerkfake.New(t, f.clerkKey, clerkfake.NewUser("user_atksync", "Synced", 1000))
	db := newDatabase(t, "attack")
	vars := map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": f.secret,
		"MONGODB_URI":                  db.uri,
		"CLERK_SECRET_KEY":             f.clerkKey,
		"CLERK_API_URL":                f.clerk.URL,
		"SYNC_API_TOKEN":               f.syncToken,
		"LOG_LEVEL":                    "info",
	}
	switch {
	case dev:
		vars["INNGEST_DEV"] = f.inngest.url
	case connect: // the stand-in has no Connect gateway: the worker never connects
		vars["INNGEST_EVENT_KEY"] = f.eventKey
		vars["INNGEST_SIGNING_KEY"] = f.signingKey
		vars["INNGEST_BASE_URL"] = f.inngest.url
		vars["INNGEST_CONNECT"] = "1"
	default:
		vars["INNGEST_EVENT_KEY"] = f.eventKey
		vars["INNGEST_SIGNING_KEY"] = f.signingKey
		vars["INNGEST_BASE_URL"] = f.inngest.url
		vars["INNGEST_SERVE_URL"] = serveURL
	}
	svc := startService(t, vars)
	f.url, f.stderr = svc.url, svc.stderr
	f.host = strings.TrimPrefix(f.url, "http://")
	f.store = db.store
	f.secrets = map[string]string{
		"the webhook secret":           strings.TrimPrefix(f.secret, "whsec_"),
		"the signing key":              strings.TrimPrefix(f.signingKey, "signkey-prod-"),
		"the event key":                f.eventKey,
		"the sync token":               f.syncToken,
		"the Clerk secret key":         f.clerkKey,
		"Inngest's address":            strings.TrimPrefix(f.inngest.url, "http://"),
		"Clerk's address":              strings.TrimPrefix(f.clerk.URL, "http://"),
		"the database's address":       strings.TrimPrefix(db.base, "mongodb://"),
		"the SDK's inspection":         "function_count",
		"which keys are set":           "has_signing_key",
		"the SDK's registration error": "fn/register",
	}
	return f
}

// svixHeaders signs body as delivery id at at with secret.
func svixHeaders(t *testing.T, secret, id string, at time.Time, body []byte) map[string]string {
	t.Helper()
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign(id, at, body)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"svix-id": id, "svix-timestamp": strconv.FormatInt(at.Unix(), 10), "svix-signature": sig, "Content-Type": "application/json"}
}

// attackCases returns every route × credential state, and the requests of the methods no
// route serves, with what the service must answer in production (dev false) or dev mode.
func (f *attackFixture) attackCases(t *testing.T) []attackCase {
	now := time.Now()
	stalled := func(route, method, path string) attackCase {
		return attackCase{route: route, state: "stalled", method: method, path: path, contentLength: 100}
	}
	var cases []attackCase

	// The public routes take no credentials: whatever is sent, they answer the same and tell
	// nothing.
	for _, path := range []string{"/", "/healthz", "/readyz", "/metrics"} {
		route := "GET " + path
		for _, st := range []struct{ state, auth string }{{"none", ""}, {"wrong", "Bearer " + strings.Repeat("x", 40)}, {"forged", "Basic YWRtaW46YWRtaW4="}, {"stale", "Bearer " + f.syncToken[:len(f.syncToken)-1]}, {"valid", "Bearer " + f.syncToken}} {
			c := attackCase{route: route, state: st.state, method: http.MethodGet, path: path, want: []int{f.publicStatus(path)}}
			if st.auth != "" {
				c.header = map[string]string{"Authorization": st.auth}
			}
			cases = append(cases, c)
		}
		cases = append(cases,
			attackCase{route: route, state: "oversized", method: http.MethodGet, path: path, header: map[string]string{"X-Pad": strings.Repeat("p", 70<<10)}, want: []int{http.StatusRequestHeaderFieldsTooLarge}},
			withWant(stalled(route, http.MethodGet, path), f.publicStatus(path))) // answered without reading the body
	}

	// The webhook: only the endpoint's secret, fresh, forwards.
	hook := func(state, id string, body []byte, header map[string]string, want int) attackCase {
		c := attackCase{route: "POST /api/webhooks/clerk", state: state, method: http.MethodPost, path: "/api/webhooks/clerk", header: header, body: body, want: []int{want}}
		if want == http.StatusOK {
			c.event = "clerk-" + id
		}
		return c
	}
	event := func(user string) []byte { return clerkUserEvent("user.created", user, "Attack", "", 1700000000000) }
	forged := svixHeaders(t, f.secret, "msg_atk_forged", now, event("user_atk_hook_forged"))
	forged["svix-signature"] = "v1," + strings.Repeat("A", 43) + "="
	big := bytes.Repeat([]byte("x"), 600<<10)
	bigEvent := []byte(`{"type":"user.created","timestamp":1700000000000,"data":{"id":"user_atk_hook_big","pad":"` + string(big) + `"}}`)
	cases = append(cases,
		hook("none", "msg_atk_none", event("user_atk_hook_none"), map[string]string{"Content-Type": "application/json"}, http.StatusUnauthorized),
		hook("wrong", "msg_atk_wrong", event("user_atk_hook_wrong"), svixHeaders(t, f.otherSecret, "msg_atk_wrong", now, event("user_atk_hook_wrong")), http.StatusUnauthorized),
		hook("forged", "msg_atk_forged", event("user_atk_hook_forged"), forged, http.StatusUnauthorized),
		hook("stale", "msg_atk_stale", event("user_atk_hook_stale"), svixHeaders(t, f.secret, "msg_atk_stale", now.Add(-10*time.Minute), event("user_atk_hook_stale")), http.StatusUnauthorized),
		hook("valid", "msg_atk_valid", event("user_atk_hook_valid"), svixHeaders(t, f.secret, "msg_atk_valid", now, event("user_atk_hook_valid")), http.StatusOK),
		hook("oversized", "msg_atk_big", bigEvent, svixHeaders(t, f.secret, "msg_atk_big", now, bigEvent), http.StatusRequestEntityTooLarge),
	)
	c := stalled("POST /api/webhooks/clerk", http.MethodPost, "/api/webhooks/clerk")
	cases = append(cases, c)

	// The on-demand sync: only the bearer token, and only a Clerk id.
	syncCase := func(state, id, auth string, want int) attackCase {
		c := attackCase{route: "POST /api/sync/users/:id", state: state, method: http.MethodPost, path: "/api/sync/users/" + id, want: []int{want}}
		if auth != "" {
			c.header = map[string]string{"Authorization": auth}
		}
		if want == http.StatusOK {
			c.user = id
		}
		return c
	}
	cases = append(cases,
		syncCase("none", "user_atksync", "", http.StatusUnauthorized),
		syncCase("wrong", "user_atksync", "Bearer "+strings.Repeat("w", 40), http.StatusUnauthorized),
		syncCase("forged", "user_atksync", "Basic "+f.syncToken, http.StatusUnauthorized),
		syncCase("stale", "user_atksync", "Bearer "+f.syncToken[:len(f.syncToken)-1], http.StatusUnauthorized),
		syncCase("valid", "user_atksync", "Bearer "+f.syncToken, http.StatusOK),
		syncCase("oversized", "user_"+strings.Repeat("O", 60<<10), "Bearer "+f.syncToken, http.StatusBadRequest),
		stalled("POST /api/sync/users/:id", http.MethodPost, "/api/sync/users/user_atksync"),
	)

	// /api/inngest: only Inngest's signature, fresh, outside dev mode. In dev mode it runs
	// anything: that mode listens on loopback only (TestListenAddressByMode).
	otherKey := "signkey-prod-" + strings.Repeat("0f", 32)
	invokePath := "/api/inngest?" + url.Values{"fnId": {"clerk-user-sync-sync-user-from-clerk"}, "stepId": {"step"}}.Encode()
	syncBody := []byte(`{"url":"https://attacker.example/api/inngest"}`)
	inngest := func(method, state string) attackCase {
		route := method + " /api/inngest"
		path := "/api/inngest"
		var body []byte
		user := ""
		switch method {
		case http.MethodPost:
			path = invokePath
			user = "user_atk_invoke_" + state
			body = invokeBody(user, "Attack")
		case http.MethodPut:
			body = syncBody
		}
		sig := map[string]string{"Content-Type": "application/json"}
		switch state {
		case "wrong":
			sig["X-Inngest-Signature"] = sign(t, otherKey, now, body)
		case "forged":
			sig["X-Inngest-Signature"] = fmt.Sprintf("t=%d&s=%s", now.Unix(), strings.Repeat("0", 64))
		case "stale":
			sig["X-Inngest-Signature"] = sign(t, f.signingKey, now.Add(-6*time.Minute), body)
		case "valid":
			sig["X-Inngest-Signature"] = sign(t, f.signingKey, now, body)
		}
		c := attackCase{route: route, state: state, method: method, path: path, header: sig, body: body}
		ok := state == "valid" || f.dev
		switch {
		case f.connect: // no such route, whatever is sent
			if state == "oversized" {
				c.body, c.contentLength = nil, 6<<20
			}
			if state == "stalled" {
				c.contentLength = 100
			}
			c.want = []int{http.StatusNotFound}
		case state == "oversized":
			c.body = nil
			c.header["X-Inngest-Signature"] = fmt.Sprintf("t=%d&s=%s", now.Unix(), strings.Repeat("0", 64))
			c.contentLength = 6 << 20
			c.want = []int{http.StatusRequestEntityTooLarge}
		case state == "stalled":
			c.contentLength = 100
			if !f.dev {
				c.want = []int{http.StatusUnauthorized}
			}
		case !ok:
			c.want = []int{http.StatusUnauthorized}
		case method == http.MethodPost:
			c.want = []int{http.StatusOK, http.StatusPartialContent}
			c.user = user
		case method == http.MethodPut:
			c.want = []int{http.StatusOK}
			c.registers = true
			if f.dev { // every PUT syncs, one at a time: the others meanwhile get 503
				c.want = append(c.want, http.StatusServiceUnavailable)
			}
		case method == http.MethodGet:
			c.want = []int{http.StatusOK}
			c.mayTell = true // Inngest's inspection, or dev mode's
		}
		return c
	}
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
		for _, state := range credentialStates {
			cases = append(cases, inngest(method, state))
		}
	}

	// Methods no route serves.
	for _, r := range []string{"DELETE /api/webhooks/clerk", "GET /api/webhooks/clerk", "PUT /api/webhooks/clerk", "GET /api/sync/users/user_atksync",
		"DELETE /api/sync/users/user_atksync", "DELETE /api/inngest", "PATCH /api/inngest", "OPTIONS /api/inngest", "POST /healthz", "DELETE /metrics", "PUT /"} {
		method, path, _ := strings.Cut(r, " ")
		c := attackCase{route: "unserved", state: r, method: method, path: path, header: map[string]string{"Authorization": "Bearer " + f.syncToken}, want: []int{http.StatusMethodNotAllowed}}
		switch {
		case f.connect && path == "/api/inngest":
			c.want = []int{http.StatusNotFound} // no route at that path at all
		case method == http.MethodOptions:
			c.want = []int{http.StatusNoContent} // Echo's answer to a preflight: the Allow header, nothing run
		}
		cases = append(cases, c)
	}
	cases = append(cases, attackCase{route: "unserved", state: "GET /no/such/route", method: http.MethodGet, path: "/no/such/route", want: []int{http.StatusNotFound}})
	return cases
}

// withWant returns c wanting one of want.
func withWant(c attackCase, want ...int) attackCase {
	c.want = want
	return c
}

// result is what one attack request got.
type result struct {
	status int // 0: the connection was cut before a whole answer
	body   string
}

// send sends c over a connection of its own and returns the answer; a stalled case sends its
// headers and waits, with a deadline past the server's own timeouts.
func (f *attackFixture) send(c attackCase) (result, error) {
	conn, err := net.Dial("tcp", f.host)
	if err != nil {
		return result{}, err
	}
	defer conn.Close()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", c.method, c.path, f.host)
	for k, v := range c.header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	n := len(c.body)
	if c.contentLength != 0 {
		n = c.contentLength
	}
	if n > 0 || c.method != http.MethodGet {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", n)
	}
	b.WriteString("\r\n")
	if c.contentLength == 0 {
		b.Write(c.body)
	}
	_ = conn.SetDeadline(time.Now().Add(readTimeout + 10*time.Second))
	go func() { _, _ = conn.Write(b.Bytes()) }() // the server may answer before it reads it all
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return result{}, nil // cut
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return result{status: resp.StatusCode, body: string(body)}, nil
}

// publicStatus is what a public route answers whatever is sent: 200, but for GET /readyz in
// Connect mode, where the worker has no gateway to connect to, 503.
func (f *attackFixture) publicStatus(path string) int {
	if f.connect && path == "/readyz" {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

func TestAttackSurfaceProduction(t *testing.T) { parallel(t); testAttackSurface(t, false, false) }

func TestAttackSurfaceDevMode(t *testing.T) { parallel(t); testAttackSurface(t, true, false) }

// TestAttackSurfaceConnect: in Connect mode (production keys) every /api/inngest route and
// method answers 404 in every credential state, and the other routes as in serve mode.
func TestAttackSurfaceConnect(t *testing.T) { parallel(t); testAttackSurface(t, false, true) }

func testAttackSurface(t *testing.T, dev, connect bool) {
	f := startAttackFixture(t, dev, connect)
	cases := f.attackCases(t)

	// Every route is tried in every credential state.
	tried := map[string]bool{}
	for _, c := range cases {
		tried[c.route+" "+c.state] = true
	}
	for _, r := range attackRoutes {
		for _, s := range credentialStates {
			if !tried[r+" "+s] {
				t.Errorf("no attack case for %s with %s credentials", r, s)
			}
		}
	}

	results := make([]result, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() {
			r, err := f.send(c)
			if err != nil {
				t.Errorf("%s (%s): %v", c.route, c.state, err)
			}
			results[i] = r
		})
	}
	wg.Wait()

	registrations := 0
	for i, c := range cases {
		got := results[i]
		name := fmt.Sprintf("%s %s with %s credentials", c.method, cutForLog(c.path, 60), c.state)
		if c.want == nil {
			if got.status != 0 && got.status < 400 {
				t.Errorf("%s = %d %s; want it refused or cut", name, got.status, cutForLog(got.body, 200))
			}
		} else if !slices.Contains(c.want, got.status) {
			t.Errorf("%s = %d %s; want %v", name, got.status, cutForLog(got.body, 200), c.want)
		}
		if !c.mayTell {
			for what, s := range f.secrets {
				if strings.Contains(got.body, s) {
					t.Errorf("%s answered %q, which tells %s", name, cutForLog(got.body, 300), what)
				}
			}
		}
		if c.registers && got.status == http.StatusOK {
			registrations++
		}
	}

	// Nothing was written, sent or registered but by the cases that may.
	events := f.inngest.eventIDs()
	for _, c := range cases {
		if c.event != "" && !slices.Contains(events, c.event) {
			t.Errorf("%s %s (%s): event %s did not reach Inngest", c.method, c.route, c.state, c.event)
		}
		if c.route != "POST /api/inngest" {
			continue
		}
		id := "user_atk_invoke_" + c.state
		_, err := f.store.Get(t.Context(), id)
		if stored, want := err == nil, c.user != ""; stored != want {
			t.Errorf("POST /api/inngest with %s credentials: user %s stored = %v; want %v", c.state, id, stored, want)
		}
	}
	wantEvents := 0
	for _, c := range cases {
		if c.event != "" {
			wantEvents++
		}
	}
	if len(events) != wantEvents {
		t.Errorf("events sent to Inngest = %q; want %d", events, wantEvents)
	}
	regs := f.inngest.registrations()
	if len(regs) != registrations {
		t.Errorf("registrations with Inngest = %d; want %d", len(regs), registrations)
	}
	if !dev {
		for _, r := range regs {
			if r.URL != serveURL {
				t.Errorf("registered URL %q; want INNGEST_SERVE_URL %q", r.URL, serveURL)
			}
		}
		for _, req := range f.clerk.Requests() {
			if strings.HasPrefix(req, "GET /v1/users/") && req != "GET /v1/users/user_atksync" {
				t.Errorf("Clerk was asked %q; want only the valid sync's user", cutForLog(req, 80))
			}
		}
	}
	if _, err := f.store.Get(t.Context(), "user_atksync"); err != nil {
		t.Errorf("the valid on-demand sync's user: %v; want it stored", err)
	}
}

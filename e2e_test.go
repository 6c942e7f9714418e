package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"clerksync/store"
)

// The end-to-end tests drive signed webhooks through the whole service (started through run)
// and the real Inngest dev server into an embedded FerretDB, then poll the database.
//
// The dev server binary comes from INNGEST_BIN, else .bin/inngest (tools/inngest/build.sh
// builds it). Without it the tests skip, except under CI, where they fail.

// devServerBinary returns the dev server's path, skipping or failing the test without it.
func devServerBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("INNGEST_BIN")
	if bin == "" {
		bin = filepath.Join(".bin", "inngest")
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Inngest dev server binary %s: %v; CI must build it first (tools/inngest/build.sh)", bin, err)
		}
		t.Skipf("Inngest dev server binary %s not found; build it with tools/inngest/build.sh (CI does)", bin)
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// stack is one running copy of everything: FerretDB, the service, the dev server.
type stack struct {
	t       *testing.T
	secret  string
	wh      *svix.Webhook
	appURL  string
	devURL  string
	devPort int
	users   *store.Store

	bin, dir string
	dev      *exec.Cmd
	devDone  chan struct{}

	opts    stackOptions
	env     map[string]string // the service's settings
	dbProxy *proxy            // with opts.dbProxy
	calls   *callLog          // with opts.countCalls
	svc     *exec.Cmd         // with opts.subprocess
	svcDone chan struct{}
}

// stackOptions vary the stack for the fault tests.
type stackOptions struct {
	// dbProxy puts a TCP proxy between the service and FerretDB, so the test can cut it.
	dbProxy bool
	// subprocess runs the service as a child process (this test binary, re-executed), so the
	// test can kill it; otherwise it runs in-process through run.
	subprocess bool
	// retryInterval is the dev server's --retry-interval in seconds (default 1).
	retryInterval int
	// writeMode is the service's STORE_WRITE_MODE ("" for the default, auto).
	writeMode string
	// countCalls puts a proxy that records every call of a function (callLog) between the
	// dev server and /api/inngest, so the test can count a run's attempts.
	countCalls bool
	// env adds to the service's settings (INNGEST_BATCH_SIZE, say).
	env map[string]string
}

// writeModes are the store's write modes the guarantee tests run in: auto (on FerretDB, writes
// by _id under the per-process lock) and conditional (MongoDB's atomic conditional writes, run
// here on FerretDB, since no MongoDB server installs on these machines).
var writeModes = []string{"auto", "conditional"}

// eachWriteMode runs f as one subtest per write mode.
func eachWriteMode(t *testing.T, f func(t *testing.T, mode string)) {
	for _, mode := range writeModes {
		t.Run(mode, func(t *testing.T) { f(t, mode) })
	}
}

// startStack starts FerretDB, the service (through run, against that FerretDB) and the dev
// server (configured by a copy of inngest.json with the test's ports), and waits until the
// dev server has synced every function the service serves.
func startStack(t *testing.T) *stack { return startStackWith(t, stackOptions{}) }

func startStackWith(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	s := &stack{t: t, bin: devServerBinary(t), dir: t.TempDir(), secret: newSecret(t), opts: opts}
	s.wh = mustWebhook(t, s.secret)

	_, directURI := startEmbeddedDB(t)
	uri := directURI + "/e2e"
	if opts.dbProxy {
		u, _ := url.Parse(directURI)
		s.dbProxy = startProxy(t, u.Host)
		uri = "mongodb://" + s.dbProxy.addr() + "/e2e"
	}

	s.devPort = freePort(t)
	s.devURL = fmt.Sprintf("http://127.0.0.1:%d", s.devPort)
	s.env = map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": s.secret,
		"INNGEST_DEV":                  s.devURL,
		"MONGODB_URI":                  uri,
		"WEBHOOK_FORWARD_TIMEOUT":      "6s",
		"LOG_LEVEL":                    "warn",
	}
	if opts.writeMode != "" {
		s.env["STORE_WRITE_MODE"] = opts.writeMode
	}
	if opts.countCalls {
		s.calls = startCallLog(t)
		s.env["INNGEST_SERVE_URL"] = s.calls.url + "/api/inngest" // the URL the sync registers
	}
	for k, v := range opts.env {
		s.env[k] = v
	}
	if opts.subprocess {
		s.env["PORT"] = strconv.Itoa(freePort(t))
		s.appURL = "http://localhost:" + s.env["PORT"]
		s.startService()
	} else {
		s.appURL = startRun(t, s.env).url
	}
	if s.calls != nil {
		s.calls.setTarget(t, s.appURL)
	}
	s.users = openTestStore(t, directURI+"/e2e", "e2e") // directly, not through the proxy

	s.writeDevConfig()
	s.startDevServer()
	return s
}

// writeDevConfig copies the repository's inngest.json, changing only the app's URL and the
// port, so the dev server runs from the same configuration keys `make dev` uses.
func (s *stack) writeDevConfig() {
	raw, err := os.ReadFile("inngest.json")
	if err != nil {
		s.t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		s.t.Fatalf("inngest.json: %v", err)
	}
	u, _ := url.Parse(s.appURL)
	cfg["sdk-url"] = []string{fmt.Sprintf("http://127.0.0.1:%s/api/inngest", u.Port())}
	if s.calls != nil {
		cfg["sdk-url"] = []string{s.calls.url + "/api/inngest"}
	}
	cfg["port"] = strconv.Itoa(s.devPort)
	out, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(s.dir, "inngest.json"), out, 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// startDevServer starts the dev server with the test's inngest.json and waits for the sync.
func (s *stack) startDevServer() {
	t := s.t
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(s.dir, "inngest-dev.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	retry := s.opts.retryInterval
	if retry == 0 {
		retry = 1
	}
	cmd := exec.Command(s.bin, "dev", "--config", filepath.Join(s.dir, "inngest.json"),
		"--retry-interval", strconv.Itoa(retry), "--connect-gateway-port", strconv.Itoa(freePort(t)))
	cmd.Dir = s.dir // no inngest.json of the repository's is picked up by accident
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", s.bin, err)
	}
	s.dev, s.devDone = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(s.devDone)
	}()
	t.Cleanup(s.stopDevServer)

	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		var fns []struct {
			Slug string `json:"slug"`
			ID   string `json:"id"`
		}
		if err := s.devGet("/v1/apps/clerk-user-sync/functions", &fns); err == nil && len(fns) > 0 && len(fns) == s.servedFunctions() {
			return
		}
		select {
		case <-s.devDone:
			t.Fatalf("the dev server exited during start-up; its log:\n%s", s.devLog())
		case <-time.After(250 * time.Millisecond):
		}
	}
	t.Fatalf("the dev server did not sync the app's %d functions within 90s; its log:\n%s", s.servedFunctions(), s.devLog())
}

// stopDevServer stops the dev server (and whatever it started) and waits for it to exit.
func (s *stack) stopDevServer() {
	if s.dev == nil {
		return
	}
	_ = syscall.Kill(-s.dev.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.devDone:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.dev.Process.Pid, syscall.SIGKILL)
		<-s.devDone
	}
	s.dev = nil
}

// devLog returns the end of the dev server's log, for failure messages.
func (s *stack) devLog() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "inngest-dev.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// devGet GETs path from the dev server's REST API and decodes its "data" (or whole body).
func (s *stack) devGet(path string, v any) error {
	resp, err := http.Get(s.devURL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s = %d", path, resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var wrapped struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(body, &wrapped) == nil && len(wrapped.Data) > 0 {
		body = wrapped.Data
	}
	return json.Unmarshal(body, v)
}

// post signs body as delivery msgID with the real Svix library, posts it to the service's
// webhook route and returns the status code.
func (s *stack) post(body []byte, msgID string) (int, error) {
	now := time.Now()
	sig, err := s.wh.Sign(msgID, now, body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodPost, s.appURL+"/api/webhooks/clerk", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("svix-id", msgID)
	req.Header.Set("svix-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("svix-signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// mustPost posts and fails the test unless the service answers want.
func (s *stack) mustPost(body []byte, msgID string, want int) {
	s.t.Helper()
	got, err := s.post(body, msgID)
	if err != nil || got != want {
		s.t.Fatalf("POST /api/webhooks/clerk (%s) = %d, %v; want %d", msgID, got, err, want)
	}
}

// waitUser polls the database until ok accepts the user with the given id, failing the test
// after timeout with the last state seen.
func (s *stack) waitUser(id string, timeout time.Duration, ok func(store.User, error) bool) store.User {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		u, err := s.users.Get(context.Background(), id)
		if ok(u, err) {
			return u
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("user %s: last state %+v, %v; not the expected state after %v", id, u, err, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// devEvent is an event as the dev server's REST API lists it.
type devEvent struct {
	InternalID string `json:"internal_id"`
	ID         string `json:"id"`
	Name       string `json:"name"`
}

// devRun is a function run as the dev server's REST API shows it.
type devRun struct {
	RunID  string `json:"run_id"`
	Status string `json:"status"`
	Output struct {
		Outcome string `json:"outcome"`
	} `json:"output"`
}

// runsFor returns the function runs the dev server started for every event received with
// the given event id (Inngest keeps duplicates as events but starts no run for them), and how
// many such events it received.
func (s *stack) runsFor(name, eventID string, since time.Time) (runs []devRun, events int, err error) {
	var evts []devEvent
	q := url.Values{"name": {name}, "received_after": {since.UTC().Format(time.RFC3339)}, "limit": {"51"}}
	if err := s.devGet("/v1/events?"+q.Encode(), &evts); err != nil {
		return nil, 0, err
	}
	for _, e := range evts {
		if e.ID != eventID {
			continue
		}
		events++
		var rs []devRun
		if err := s.devGet("/v1/events/"+e.InternalID+"/runs", &rs); err != nil {
			return nil, 0, err
		}
		// The event's run list shows a run's status late; the run itself is up to date.
		for _, r := range rs {
			var run devRun
			if err := s.devGet("/v1/runs/"+r.RunID, &run); err != nil {
				return nil, 0, err
			}
			runs = append(runs, run)
		}
	}
	return runs, events, nil
}

// waitRunsSettled waits until the event id has wantEvents events and all their runs ended.
func (s *stack) waitRunsSettled(name, eventID string, since time.Time, wantEvents int) []devRun {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		runs, events, err := s.runsFor(name, eventID, since)
		settled := err == nil && events >= wantEvents && len(runs) > 0
		for _, r := range runs {
			if r.Status != "Completed" && r.Status != "Failed" && r.Status != "Cancelled" {
				settled = false
			}
		}
		if settled {
			return runs
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("event %s: %d events, runs %+v, %v after 60s; want %d events and ended runs", eventID, events, runs, err, wantEvents)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// clerkUserEvent returns a user.created or user.updated envelope for a test user without a
// Clerk username.
func clerkUserEvent(typ, id, first, email string, updatedAt int64) []byte {
	return clerkUserEventNamed(typ, id, first, email, "", updatedAt)
}

// clerkUserEventNamed is clerkUserEvent with the Clerk username username ("" for null).
func clerkUserEventNamed(typ, id, first, email, username string, updatedAt int64) []byte {
	var name any
	if username != "" {
		name = username
	}
	data := map[string]any{
		"object": "user", "id": id, "first_name": first, "last_name": "Tester", "username": name,
		"image_url": "https://img.clerk.com/" + id, "created_at": 1700000000000, "updated_at": updatedAt,
		"primary_email_address_id": nil, "email_addresses": []any{},
	}
	if email != "" {
		data["primary_email_address_id"] = "idn_" + id
		data["email_addresses"] = []any{map[string]any{"id": "idn_" + id, "email_address": email, "object": "email_address"}}
	}
	b, _ := json.Marshal(map[string]any{"object": "event", "type": typ, "timestamp": updatedAt, "data": data})
	return b
}

// clerkDeleteEvent returns a user.deleted envelope.
func clerkDeleteEvent(id string, ts int64) []byte {
	b, _ := json.Marshal(map[string]any{"object": "event", "type": "user.deleted", "timestamp": ts,
		"data": map[string]any{"object": "user", "id": id, "deleted": true}})
	return b
}

func isTombstone(u store.User, err error) bool {
	return err == nil && u.Deleted && u.Email == nil && u.FullName == "" && u.Username == "" && u.ProfilePicture == ""
}

func TestEndToEnd(t *testing.T) {
	eachWriteMode(t, func(t *testing.T, mode string) {
		s := startStackWith(t, stackOptions{writeMode: mode})
		t.Run("ClerkExamplesInOrder", s.testExamples)
		t.Run("BurstOf200SignUps", s.testBurst)
		t.Run("SameDeliveryThreeTimes", s.testDuplicateDelivery)
		t.Run("OutOfOrder", s.testOutOfOrder)
		t.Run("PermanentFailureRecorded", s.testPermanentFailureRecorded)
		t.Run("UsernameSwapNewestFirst", s.testUsernameSwapNewestFirst)
		t.Run("DerivedUsernamesYield", s.testDerivedUsernamesYield)
		t.Run("RemovedUsernameReleased", s.testRemovedUsernameReleased)
		t.Run("ThirtyUsersClaimingAtOnce", s.testConcurrentClaims)
		t.Run("DevServerDown", s.testDevServerDown)
	})
}

func (s *stack) testExamples(t *testing.T) {
	s.t = t
	dir := filepath.Join("testdata", "clerk-examples")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("Clerk example %s: %v", name, err)
		}
		return b
	}
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	steps := []struct {
		file, user string
		want       func(store.User, error) bool
	}{
		{"docs-user.created.json", "user_29w83sxmDNGwOuEthce5gg56FcC", func(u store.User, err error) bool {
			return err == nil && str(u.Email) == "example@example.org" && u.FullName == "Example Example" && u.UpdatedAt == 1654012591835 && u.Username == "example"
		}},
		{"dashboard-user.updated.json", "user_29w83sxmDNGwOuEthce5gg56FcC", func(u store.User, err error) bool {
			return err == nil && str(u.Email) == "example@example.org" && u.FullName == "Example" && u.UpdatedAt == 1654012824306 && u.Username == "example"
		}},
		{"dashboard-user.deleted.json", "user_29wBMCtzATuFJut8jO2VNTVekS4", isTombstone},
		{"openapi-user.created.json", "user_2g7np7Hrk0SN6kj5EDMLDaKNL0S", func(u store.User, err error) bool {
			return err == nil && u.Email == nil && u.FullName == "John Doe" && u.UpdatedAt == 1716883200000 && strings.HasPrefix(u.Username, "user_")
		}},
		{"openapi-user.updated.json", "user_2g7np7Hrk0SN6kj5EDMLDaKNL0S", func(u store.User, err error) bool {
			return err == nil && u.FullName == "John Doe Updated" && u.Username == "johndoe" && u.ProfilePicture == "https://img.clerk.com/yyyyy" && u.UpdatedAt == 1716883500000
		}},
		{"openapi-user.deleted.json", "user_2g7np7Hrk0SN6kj5EDMLDaKNL0S", isTombstone},
	}
	for i, st := range steps {
		s.mustPost(read(st.file), fmt.Sprintf("msg_example_%d_%d", i, time.Now().UnixNano()), http.StatusOK)
		s.waitUser(st.user, 30*time.Second, st.want)
	}
}

func (s *stack) testBurst(t *testing.T) {
	s.t = t
	const n = 200
	var wg sync.WaitGroup
	codes := make([]int, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 50)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			id := fmt.Sprintf("user_burst%03d", i)
			codes[i], errs[i] = s.post(clerkUserEvent("user.created", id, "Burst", fmt.Sprintf("burst@host%d.example", i), 1700000000000), "msg_burst_"+id)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || codes[i] != http.StatusOK {
			t.Fatalf("POST sign-up %d = %d, %v; want 200", i, codes[i], errs[i])
		}
	}
	usernames := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("user_burst%03d", i)
		u := s.waitUser(id, 2*time.Minute, func(u store.User, err error) bool { return err == nil })
		if !strings.HasPrefix(u.Username, "burst") {
			t.Errorf("user %s username = %q; want it to start with burst", id, u.Username)
		}
		if other, dup := usernames[u.Username]; dup {
			t.Errorf("username %q given to both %s and %s", u.Username, other, id)
		}
		usernames[u.Username] = id
	}
	if len(usernames) != n {
		t.Errorf("%d distinct usernames; want %d", len(usernames), n)
	}
}

func (s *stack) testDuplicateDelivery(t *testing.T) {
	s.t = t
	since := time.Now().Add(-2 * time.Second)
	before, err := s.users.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	body := clerkUserEvent("user.created", "user_dup1", "Dup", "dup@example.org", 1700000000001)
	for range 3 {
		s.mustPost(body, "msg_dup_1", http.StatusOK)
	}
	s.waitUser("user_dup1", 30*time.Second, func(u store.User, err error) bool { return err == nil && u.FullName == "Dup Tester" })
	s.waitRunsSettled("clerk/user.created", "clerk-msg_dup_1", since, 3)
	time.Sleep(2 * time.Second) // a duplicate run, if any, would have started by now
	runs, events, err := s.runsFor("clerk/user.created", "clerk-msg_dup_1", since)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Errorf("dev server ran %d function runs for 3 posts of one delivery (%d events); want 1: %+v", len(runs), events, runs)
	}
	after, err := s.users.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after-before != 1 {
		t.Errorf("documents grew by %d; want 1", after-before)
	}
}

func (s *stack) testOutOfOrder(t *testing.T) {
	s.t = t
	since := time.Now().Add(-2 * time.Second)
	// The update arrives before its create: the update lands, the create changes nothing.
	s.mustPost(clerkUserEvent("user.updated", "user_ooo1", "Newer", "new@example.org", 1700000000200), "msg_ooo_upd", http.StatusOK)
	s.waitUser("user_ooo1", 30*time.Second, func(u store.User, err error) bool { return err == nil && u.FullName == "Newer Tester" })
	s.mustPost(clerkUserEvent("user.created", "user_ooo1", "Older", "old@example.org", 1700000000100), "msg_ooo_create", http.StatusOK)
	if runs := s.waitRunsSettled("clerk/user.created", "clerk-msg_ooo_create", since, 1); len(runs) != 1 || runs[0].Output.Outcome != "skipped" {
		t.Errorf("runs for the late create = %+v; want one, with outcome skipped", runs)
	}
	u := s.waitUser("user_ooo1", time.Second, func(u store.User, err error) bool { return err == nil })
	if u.FullName != "Newer Tester" || u.Email == nil || *u.Email != "new@example.org" || u.UpdatedAt != 1700000000200 {
		t.Errorf("after update then create: %+v; want the update's data (Newer Tester, new@example.org, 1700000000200)", u)
	}

	// A late update after the delete: the user stays deleted, without personal data.
	s.mustPost(clerkUserEvent("user.created", "user_ooo2", "Gone", "gone@example.org", 1700000000100), "msg_ooo2_create", http.StatusOK)
	s.waitUser("user_ooo2", 30*time.Second, func(u store.User, err error) bool { return err == nil && u.FullName == "Gone Tester" })
	s.mustPost(clerkDeleteEvent("user_ooo2", 1700000000300), "msg_ooo2_delete", http.StatusOK)
	s.waitUser("user_ooo2", 30*time.Second, isTombstone)
	s.mustPost(clerkUserEvent("user.updated", "user_ooo2", "Zombie", "zombie@example.org", 1700000000400), "msg_ooo2_late", http.StatusOK)
	if runs := s.waitRunsSettled("clerk/user.updated", "clerk-msg_ooo2_late", since, 1); len(runs) != 1 || runs[0].Output.Outcome != "skipped" {
		t.Errorf("runs for the update after the delete = %+v; want one, with outcome skipped", runs)
	}
	s.waitUser("user_ooo2", time.Second, isTombstone)
}

func (s *stack) testDevServerDown(t *testing.T) {
	s.t = t
	s.stopDevServer()
	body := clerkUserEvent("user.created", "user_down1", "Down", "down@example.org", 1700000000001)
	start := time.Now()
	got, err := s.post(body, "msg_down_1")
	if elapsed := time.Since(start); err != nil || got != http.StatusServiceUnavailable || elapsed > 10*time.Second {
		t.Fatalf("POST with the dev server down = %d, %v after %v; want 503 well within 15s", got, err, elapsed)
	}
	if _, err := s.users.Get(context.Background(), "user_down1"); err != store.ErrNotFound {
		t.Fatalf("user_down1 after a 503: %v; want ErrNotFound (nothing written)", err)
	}

	s.startDevServer()
	since := time.Now().Add(-2 * time.Second)
	s.mustPost(body, "msg_down_1", http.StatusOK) // what Svix does after a 503
	s.waitUser("user_down1", 30*time.Second, func(u store.User, err error) bool { return err == nil && u.FullName == "Down Tester" })
	runs := s.waitRunsSettled("clerk/user.created", "clerk-msg_down_1", since, 1)
	if len(runs) != 1 {
		t.Errorf("runs for the re-sent delivery = %+v; want exactly 1", runs)
	}
}

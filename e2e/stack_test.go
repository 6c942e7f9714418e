package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

// The end-to-end tests drive signed webhooks through the whole service and the real Inngest
// dev server into an embedded FerretDB, then poll the database.
//
// The dev server binary comes from INNGEST_BIN, else .bin/inngest at the repository root
// (tools/inngest/build.sh builds it). Without it the tests skip, except under CI, where they
// fail.

// devServerBinary returns the dev server's path, skipping the test under -short or without the
// binary, and failing it without the binary under CI.
func devServerBinary(t *testing.T) string {
	t.Helper()
	blackBox(t)
	bin := os.Getenv("INNGEST_BIN")
	if bin == "" {
		bin = filepath.Join("..", ".bin", "inngest")
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

// stack is one running copy of everything: a database, the service, the dev server.
type stack struct {
	secret  string
	wh      *svix.Webhook
	appURL  string
	devURL  string
	devPort int
	store   *store.Store

	bin, dir string
	opts     stackOptions
	env      map[string]string // the service's settings
	dbProxy  *proxy            // with opts.dbProxy
	calls    *callLog          // with opts.countCalls
	svc      *service
	posted   sync.Map // svix id → when it was first posted (time.Time): where runsOf looks

	mu      sync.Mutex // guards svc, dev and devDone, which the fault tests stop and start again
	dev     *exec.Cmd
	devDone chan struct{}
}

// stackOptions vary the stack for the fault tests.
type stackOptions struct {
	// dbProxy puts a TCP proxy between the service and FerretDB, so the test can cut it.
	dbProxy bool
	// fixedPort gives the service a port of its own choosing before it starts, so that the
	// test can kill it and start it again where the dev server calls it.
	fixedPort bool
	// retryInterval is the dev server's --retry-interval in seconds (default 1).
	retryInterval int
	// writeMode is the service's STORE_WRITE_MODE ("" for the default, auto).
	writeMode string
	// countCalls puts a proxy that records every call of a function (callLog) between the
	// dev server and /api/inngest, so the test can find the runs of an event and count their
	// attempts (runsOf, waitRunsSettled).
	countCalls bool
	// env adds to the service's settings (INNGEST_BATCH_SIZE, say).
	env map[string]string
	// otherApps are the serve URLs of more Inngest apps the dev server syncs beside the
	// service (inngest.json's sdk-url is a list): functions of the test's own, triggered by
	// the service's events.
	otherApps []string
	// beforeDev, when set, is called with the stack (its service, database and dev server URL
	// known) just before the dev server starts: to serve the otherApps.
	beforeDev func(s *stack)
	// connect runs the service in Connect mode (INNGEST_CONNECT, with an INNGEST_INSTANCE_ID
	// that its restarts keep): the dev server has no app URL, and the service dials it.
	connect bool
}

// writeModes are the store's write modes the guarantee tests run in: auto (on FerretDB, writes
// by _id under the per-process lock) and conditional (MongoDB's atomic conditional writes, run
// here on FerretDB, since no MongoDB server installs on these machines).
var writeModes = []string{"auto", "conditional"}

// eachWriteMode runs f as one subtest per write mode, the modes in parallel: each has a stack
// of its own.
func eachWriteMode(t *testing.T, f func(t *testing.T, mode string)) {
	for _, mode := range writeModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f(t, mode)
		})
	}
}

// startStack starts the service (against a database of its own on the shared FerretDB) and
// the dev server (configured by a copy of inngest.json with the test's ports), and waits until
// the dev server has synced every function the service serves. Everything stops when the test
// ends.
func startStack(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	s := &stack{bin: devServerBinary(t), dir: t.TempDir(), secret: newSecret(t), opts: opts}
	s.wh = mustWebhook(t, s.secret)

	db := newDatabase(t, "stack")
	s.store = db.store // directly, not through the proxy
	uri := db.uri
	if opts.dbProxy {
		s.dbProxy = startProxy(t, strings.TrimPrefix(db.base, "mongodb://"))
		uri = "mongodb://" + s.dbProxy.addr() + "/" + db.name
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
	if opts.fixedPort {
		s.env["PORT"] = strconv.Itoa(freePort(t))
	}
	if opts.countCalls {
		s.calls = startCallLog(t)
		s.env["INNGEST_SERVE_URL"] = s.calls.url + "/api/inngest" // the URL the sync registers
	}
	if opts.connect {
		s.env["INNGEST_CONNECT"] = "1"
		s.env["INNGEST_INSTANCE_ID"] = "e2e-" + db.name
	}
	for k, v := range opts.env {
		s.env[k] = v
	}
	if opts.connect { // the dev server first: the service dials it
		s.writeDevConfig(t)
		s.startDevServer(t)
		s.startService(t)
		s.waitSynced(t)
		return s
	}
	s.startService(t)
	if s.calls != nil {
		s.calls.setTarget(t, s.appURL)
	}
	s.writeDevConfig(t)
	if opts.beforeDev != nil {
		opts.beforeDev(s)
	}
	s.startDevServer(t)
	return s
}

// startService starts the service with the stack's settings.
func (s *stack) startService(t *testing.T) {
	t.Helper()
	svc := startService(t, s.env)
	s.mu.Lock()
	s.svc = svc
	s.mu.Unlock()
	s.appURL = svc.url
}

// killService kills the service with SIGKILL (no graceful shutdown) and waits for it.
func (s *stack) killService() {
	s.mu.Lock()
	svc := s.svc
	s.mu.Unlock()
	svc.kill()
}

// restartService starts the service again with the stack's settings, on the port it had
// (stackOptions.fixedPort). It may run on another goroutine than the test's: it reports a
// failure with t.Errorf. The service is killed when the test ends.
func (s *stack) restartService(t *testing.T) {
	svc, err := spawnService(s.env)
	if svc != nil {
		t.Cleanup(svc.kill)
	}
	if err != nil {
		t.Errorf("restart the service: %v", err)
		return
	}
	s.mu.Lock()
	s.svc = svc
	s.mu.Unlock()
}

// writeDevConfig copies the repository's inngest.json, changing only the app's URL and the
// port, so the dev server runs from the same configuration keys `make dev` uses.
func (s *stack) writeDevConfig(t *testing.T) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "inngest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("inngest.json: %v", err)
	}
	var urls []string
	switch {
	case s.opts.connect: // nothing to call: the service connects
	case s.calls != nil:
		urls = []string{s.calls.url + "/api/inngest"}
	default:
		u, _ := url.Parse(s.appURL)
		urls = []string{fmt.Sprintf("http://127.0.0.1:%s/api/inngest", u.Port())}
	}
	urls = append(urls, s.opts.otherApps...)
	delete(cfg, "sdk-url")
	if len(urls) > 0 {
		cfg["sdk-url"] = urls
	}
	cfg["port"] = strconv.Itoa(s.devPort)
	out, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(s.dir, "inngest.json"), out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startDevServer starts the dev server with the test's inngest.json and waits for the sync
// (in Connect mode, until it answers: the service, started next, syncs when it connects).
func (s *stack) startDevServer(t *testing.T) {
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
	cmd.Env = append(os.Environ(), grpcPorts(t)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, to stop whatever it starts; killed with the tests, even when a
	// timeout's panic skips the cleanups (a dev server left running takes a core).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	s.mu.Lock()
	s.dev, s.devDone = cmd, done
	s.mu.Unlock()
	t.Cleanup(s.stopDevServer)
	if s.opts.connect {
		s.waitDev(t, "answer", 90*time.Second, func() bool {
			resp, err := http.Get(s.devURL + "/")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode < 500
		})
		return
	}
	s.waitSynced(t)
}

// grpcPorts returns the settings that give a dev server gRPC ports of its own for its Connect
// gateway and executor (tools/inngest's command reads them; the server alone fixes them at
// 50052 and 50053). With shared ports, one server's gateway can hand its runs to another's
// executor, and they are lost: the Connect tests could not run beside the others.
func grpcPorts(t *testing.T) []string {
	return []string{
		"INNGEST_CONNECT_GATEWAY_GRPC_PORT=" + strconv.Itoa(freePort(t)),
		"INNGEST_CONNECT_EXECUTOR_GRPC_PORT=" + strconv.Itoa(freePort(t)),
	}
}

// waitSynced waits until the dev server lists the app's functions: as many as the service
// serves, or in Connect mode some, once the service is ready (connected). In Connect mode it
// waits up to connectSyncWait: the service's dial may time out and be retried (connectWorker).
func (s *stack) waitSynced(t *testing.T) {
	t.Helper()
	within := 90 * time.Second
	if s.opts.connect {
		within = connectSyncWait
	}
	s.waitDev(t, "sync the app's functions", within, func() bool {
		var fns []struct {
			Slug string `json:"slug"`
			ID   string `json:"id"`
		}
		if err := s.devGet("/v1/apps/clerk-user-sync/functions", &fns); err != nil || len(fns) == 0 {
			return false
		}
		if s.opts.connect {
			return s.ready()
		}
		return len(fns) == s.servedFunctions()
	})
}

// connectSyncWait is how long a Connect mode stack may take to connect: three of the
// service's dials (a dial gives up after 40s, the SDK's start-up after 30s), on 2 cores
// shared by the Connect tests' seven stacks.
const connectSyncWait = 150 * time.Second

// waitDev waits up to within for cond, failing the test if the dev server exits first. The
// failure shows the end of the dev server's log, and of the service's when it runs.
func (s *stack) waitDev(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	s.mu.Lock()
	done, svc := s.devDone, s.svc
	s.mu.Unlock()
	svcLog := func() string {
		if svc == nil {
			return ""
		}
		b := svc.stderr.String()
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return "\nthe service's log:\n" + b
	}
	for deadline := time.Now().Add(within); time.Now().Before(deadline); {
		if cond() {
			return
		}
		select {
		case <-done:
			t.Fatalf("the dev server exited during start-up; its log:\n%s%s", s.devLog(), svcLog())
		case <-time.After(250 * time.Millisecond):
		}
	}
	t.Fatalf("the dev server did not %s within %v; its log:\n%s%s", what, within, s.devLog(), svcLog())
}

// ready reports whether the service's GET /readyz answers 200.
func (s *stack) ready() bool {
	resp, err := http.Get(s.appURL + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stopDevServer stops the dev server (and whatever it started) and waits for it to exit.
func (s *stack) stopDevServer() {
	s.mu.Lock()
	dev, done := s.dev, s.devDone
	s.dev = nil
	s.mu.Unlock()
	if dev == nil {
		return
	}
	_ = syscall.Kill(-dev.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-dev.Process.Pid, syscall.SIGKILL)
		<-done
	}
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

// servedFunctions returns how many functions the service offers Inngest, from its serve
// handler's introspection (GET /api/inngest), or -1 when it does not answer.
func (s *stack) servedFunctions() int {
	resp, err := http.Get(s.appURL + "/api/inngest")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var in struct {
		FunctionCount *int `json:"function_count"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&in) != nil || in.FunctionCount == nil {
		return -1
	}
	return *in.FunctionCount
}

// poster signs webhooks with a Svix secret and posts them to a service.
type poster struct {
	wh     *svix.Webhook
	appURL string
}

// newPoster returns a poster that signs with secret and posts to the service at appURL.
func newPoster(t *testing.T, secret, appURL string) poster {
	t.Helper()
	return poster{wh: mustWebhook(t, secret), appURL: appURL}
}

// post signs body as delivery msgID with the real Svix library, posts it to the service's
// webhook route and returns the status code.
func (p poster) post(body []byte, msgID string) (int, error) {
	now := time.Now()
	sig, err := p.wh.Sign(msgID, now, body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodPost, p.appURL+"/api/webhooks/clerk", bytes.NewReader(body))
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

// post posts body as delivery msgID to the stack's service.
func (s *stack) post(body []byte, msgID string) (int, error) {
	s.posted.LoadOrStore(msgID, time.Now())
	return poster{wh: s.wh, appURL: s.appURL}.post(body, msgID)
}

// mustPost posts and fails the test unless the service answers want.
func (s *stack) mustPost(t *testing.T, body []byte, msgID string, want int) {
	t.Helper()
	got, err := s.post(body, msgID)
	if err != nil || got != want {
		t.Fatalf("POST /api/webhooks/clerk (%s) = %d, %v; want %d", msgID, got, err, want)
	}
}

// postAll posts the bodies concurrently (50 at a time), calling during(i) before the i-th post,
// and returns each post's status (0 when the connection failed).
func (s *stack) postAll(bodies [][]byte, ids []string, during func(i int)) []int {
	codes := make([]int, len(bodies))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for i := range bodies {
		if during != nil {
			during(i)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			codes[i], _ = s.post(bodies[i], ids[i])
		}()
	}
	wg.Wait()
	return codes
}

// waitUser polls the database until ok accepts the user with the given id, failing the test
// after timeout with the last state seen.
func (s *stack) waitUser(t *testing.T, id string, timeout time.Duration, ok func(store.User, error) bool) store.User {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		u, err := s.store.Get(context.Background(), id)
		if ok(u, err) {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("user %s: last state %+v, %v; not the expected state after %v", id, u, err, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor polls cond every 100 ms until it holds or timeout passes, then fails with what.
func (s *stack) waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; dev server log:\n%s", what, timeout, s.devLog())
		}
	}
}

// devRun is a function run as the dev server's REST API shows it.
type devRun struct {
	RunID  string    `json:"run_id"`
	Status string    `json:"status"`
	Output runOutput `json:"output"`
}

// runOutput is a run's output: an object, or a string (a failed run's error; in Connect mode
// the dev server also shows a run's result as the JSON text of it).
type runOutput struct {
	Outcome string `json:"outcome"`
	Text    string `json:"-"` // the output when it is a string
}

// UnmarshalJSON reads the output as an object, or as a string holding one or some other text.
func (o *runOutput) UnmarshalJSON(b []byte) error {
	var text string
	if json.Unmarshal(b, &text) == nil {
		o.Text = text
		b = []byte(text)
	}
	var obj struct {
		Outcome string `json:"outcome"`
	}
	if json.Unmarshal(b, &obj) == nil {
		o.Outcome = obj.Outcome
	}
	return nil
}

// ended reports whether the run has ended, whatever its outcome.
func (r devRun) ended() bool {
	return r.Status == "Completed" || r.Status == "Failed" || r.Status == "Cancelled"
}

// runsOf returns the runs of the event eventID, each as the dev server shows it now: those
// the dev server has called the service for with the event among their events (the call
// log's), or without a call log (Connect mode) those the dev server's event API lists for
// it. Inngest keeps a duplicate of an event id as an event, but starts no run for it.
func (s *stack) runsOf(eventID string) ([]devRun, error) {
	var ids []string
	if s.calls != nil {
		ids = s.calls.runsWith(eventID)
	} else {
		var err error
		if ids, err = s.eventRunIDs(eventID); err != nil {
			return nil, err
		}
	}
	var runs []devRun
	for _, id := range ids {
		var run devRun
		if err := s.devGet("/v1/runs/"+id, &run); err != nil {
			return nil, err
		}
		runs = append(runs, run)
	}
	return runs, nil
}

// callsOf returns the calls of the function run runID: the call log's, or without one (Connect
// mode: Inngest does not call the service) those the service logged, one line per call that
// ran the function's step or refused its event (LOG_FORMAT json, LOG_LEVEL info), NoRetry
// being a refusal ("not retrying").
func (s *stack) callsOf(runID string) []fnCall {
	if s.calls != nil {
		return s.calls.forRun(runID)
	}
	s.mu.Lock()
	svc := s.svc
	s.mu.Unlock()
	var calls []fnCall
	for line := range strings.Lines(svc.stderr.String()) {
		var l struct {
			Msg     string `json:"msg"`
			RunID   string `json:"run_id"`
			Attempt int    `json:"attempt"`
			EventID string `json:"event_id"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.RunID == runID {
			calls = append(calls, fnCall{RunID: l.RunID, Attempt: l.Attempt, EventIDs: []string{l.EventID}, NoRetry: strings.Contains(l.Msg, "not retrying")})
		}
	}
	return calls
}

// eventRunIDs returns the ids of the runs that the events with the id eventID started, from
// the dev server's event API: the events received since the webhook was first posted (newest
// first, 51 a page), and each one's runs.
func (s *stack) eventRunIDs(eventID string) ([]string, error) {
	since := time.Now().Add(-time.Hour) // the API's own default
	if at, ok := s.posted.Load(strings.TrimPrefix(eventID, "clerk-")); ok {
		since = at.(time.Time).Add(-5 * time.Second)
	}
	var ids []string
	for cursor := ""; ; {
		q := url.Values{"limit": {"51"}, "received_after": {since.UTC().Format(time.RFC3339Nano)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var events []struct {
			InternalID string `json:"internal_id"`
			ID         string `json:"id"`
		}
		if err := s.devGet("/v1/events?"+q.Encode(), &events); err != nil {
			return nil, err
		}
		for _, e := range events {
			if e.ID != eventID {
				continue
			}
			var runs []struct {
				RunID string `json:"run_id"`
			}
			if err := s.devGet("/v1/events/"+e.InternalID+"/runs", &runs); err != nil {
				return nil, err
			}
			for _, r := range runs {
				ids = append(ids, r.RunID)
			}
		}
		if len(events) < 51 {
			return ids, nil
		}
		cursor = events[len(events)-1].InternalID
	}
}

// waitRunsSettled waits until the dev server has a run of the event eventID, and every run of
// it has ended; it returns them.
func (s *stack) waitRunsSettled(t *testing.T, eventID string) []devRun {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		runs, err := s.runsOf(eventID)
		settled := err == nil && len(runs) > 0
		for _, r := range runs {
			settled = settled && r.ended()
		}
		if settled {
			return runs
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s: runs %+v, %v after 60s; want ended runs; dev server log:\n%s", eventID, runs, err, s.devLog())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// failuresFor returns the recorded failures of runs started by the event with the given id.
func (s *stack) failuresFor(eventID string) ([]store.Failure, error) {
	all, err := s.store.Failures(context.Background())
	var out []store.Failure
	for _, f := range all {
		if f.EventID == eventID {
			out = append(out, f)
		}
	}
	return out, err
}

// waitOneFailure waits until sync_failures has a failure for eventID, gives a duplicate time
// to land, and returns the one failure, failing the test unless there is exactly one.
func (s *stack) waitOneFailure(t *testing.T, eventID string) store.Failure {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := s.failuresFor(eventID)
		if err == nil && len(got) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failure recorded for %s after 60s (last error %v); dev server log:\n%s", eventID, err, s.devLog())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The dev server's REST API does not list the recorder's runs: give a duplicate, if any,
	// time to land.
	time.Sleep(2 * time.Second)
	got, err := s.failuresFor(eventID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d failures recorded for %s; want exactly 1: %+v", len(got), eventID, got)
	}
	return got[0]
}

// waitAllUsers waits until every id is stored, then checks that each is stored once, live,
// with a distinct username, and that the collection holds nothing else.
func (s *stack) waitAllUsers(t *testing.T, ids []string, timeout time.Duration) {
	t.Helper()
	s.waitUsersOnce(t, ids, timeout)
	n, err := s.store.Count(context.Background())
	if err != nil || n != int64(len(ids)) {
		t.Errorf("the collection holds %d documents, %v; want exactly %d (none twice)", n, err, len(ids))
	}
}

// waitUsersOnce waits until every id is stored, then checks that each is live, with a
// distinct username: waitAllUsers for a stack that other tests share.
func (s *stack) waitUsersOnce(t *testing.T, ids []string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	stored := func(id string) bool { _, err := s.store.Get(ctx, id); return err == nil }
	for missing, deadline := ids, time.Now().Add(timeout); ; time.Sleep(500 * time.Millisecond) {
		missing = missing[arrived(missing, stored):]
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var still []string
			for _, id := range missing {
				if !stored(id) {
					still = append(still, id)
				}
			}
			t.Fatalf("%d of %d users missing after %v, e.g. %v\n%s", len(still), len(ids), timeout, still[:min(5, len(still))], s.diagnosis())
		}
	}
	usernames := map[string]bool{}
	for _, id := range ids {
		u, _ := s.store.Get(context.Background(), id)
		if u.Deleted || usernames[u.Username] {
			t.Errorf("user %s: %+v: deleted or username not unique", id, u)
		}
		usernames[u.Username] = true
	}
}

// diagnosis returns what a failed wait should show: the function runs the service counted (by
// function and outcome), the end of its log and the end of the dev server's.
func (s *stack) diagnosis() string {
	s.mu.Lock()
	svc := s.svc
	s.mu.Unlock()
	var b strings.Builder
	if resp, err := http.Get(s.appURL + "/metrics"); err != nil {
		fmt.Fprintf(&b, "GET /metrics: %v\n", err)
	} else {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		b.WriteString("the service's function runs:\n")
		for line := range strings.Lines(string(raw)) {
			if strings.HasPrefix(line, "clerksync_function_runs_total{") {
				b.WriteString("  " + line)
			}
		}
	}
	if svc != nil {
		log := svc.stderr.String()
		fmt.Fprintf(&b, "the service's log ends:\n%s\n", log[max(0, len(log)-3000):])
	}
	fmt.Fprintf(&b, "the dev server's log ends:\n%s", s.devLog())
	return b.String()
}

// arrived returns how many of pending, from the first on, done accepts, reading them in order
// and stopping at the first it refuses. A wait that polls with it reads each item about once,
// and then one more per poll, where reading every pending item on each poll would read
// hundreds a second from the database the service under test is writing to.
func arrived[T any](pending []T, done func(T) bool) int {
	for i, p := range pending {
		if !done(p) {
			return i
		}
	}
	return len(pending)
}

// resend posts again, as Svix does, the deliveries whose indexes are in failed, with the same
// ids, retrying a post whose connection fails (one kept alive from before a kill can still be
// handed out) up to 5 times; it fails the test unless each is answered 200.
func (s *stack) resend(t *testing.T, bodies [][]byte, ids []string, failed []int) {
	t.Helper()
	for _, i := range failed {
		c, err := s.post(bodies[i], ids[i])
		for attempt := 1; err != nil && attempt < 5; attempt++ {
			time.Sleep(100 * time.Millisecond)
			c, err = s.post(bodies[i], ids[i])
		}
		if c != http.StatusOK {
			t.Fatalf("re-sent delivery %d (%s) = %d, %v; want 200", i, ids[i], c, err)
		}
	}
}

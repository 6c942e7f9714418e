package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"clerksync/metrics/metricstest"
	"clerksync/store"
)

// The Connect mode tests: the service dials the dev server's Connect gateway
// (INNGEST_CONNECT) and the dev server has no URL of the service's. They run beside the
// others: each dev server has gRPC ports of its own (grpcPorts).

// testConnectBurst: in Connect mode a burst of sign-ups is stored, each user once, with no
// /api/inngest on the service.
func (s *stack) testConnectBurst(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
		req, _ := http.NewRequest(method, s.appURL+"/api/inngest", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s /api/inngest in Connect mode = %d; want 404", method, resp.StatusCode)
		}
	}
	const n = 200
	ids, bodies := make([]string, n), make([][]byte, n)
	for i := range n {
		ids[i], bodies[i] = signUp("connect", i)
	}
	for i, c := range s.postAll(bodies, ids, nil) {
		if c != http.StatusOK {
			t.Fatalf("sign-up %d = %d; want 200", i, c)
		}
	}
	s.waitUsersOnce(t, ids, burstWait)
	t.Logf("counted: all %d users stored once, run over the Connect gateway", n)
}

// TestConnectWorkerKilledDuringBurst: the service in Connect mode is SIGKILLed a third of the
// way into a burst of sign-ups and started again 2s later with the same instance id; the
// webhooks that failed are re-sent, as Svix does. Every user is stored, and once.
func TestConnectWorkerKilledDuringBurst(t *testing.T) {
	stacks(t)
	connectBurstWithRestart(t, "connkill", "SIGKILL", func(t *testing.T, s *stack) { s.killService() })
}

// TestConnectWorkerStoppedDuringBurst: as TestConnectWorkerKilledDuringBurst, with SIGTERM, as a
// deploy stops a replica: the service drains and exits with status 0 within its
// SHUTDOWN_TIMEOUT, and nothing is lost or written twice.
func TestConnectWorkerStoppedDuringBurst(t *testing.T) {
	stacks(t)
	connectBurstWithRestart(t, "connterm", "SIGTERM", func(t *testing.T, s *stack) {
		s.mu.Lock()
		svc := s.svc
		s.mu.Unlock()
		start := time.Now()
		exited, err := svc.stop(15 * time.Second)
		if !exited || err != nil {
			t.Errorf("the service after SIGTERM mid-burst: exited %v, %v after %v; want status 0 within SHUTDOWN_TIMEOUT (10s); log:\n%s", exited, err, time.Since(start), svc.stderr)
		}
		t.Logf("measured: the service exited %v after SIGTERM mid-burst", time.Since(start).Round(time.Millisecond))
	})
}

// connectBurstWithRestart posts 300 sign-ups to a Connect mode stack, stops the service with
// stop a third of the way in and starts it again 2s later with the same instance id, re-sends
// the webhooks that failed as Svix does, and checks every user is stored, and once.
func connectBurstWithRestart(t *testing.T, prefix, how string, stop func(t *testing.T, s *stack)) {
	s := startStack(t, stackOptions{connect: true, fixedPort: true, retryInterval: 2, env: map[string]string{"SHUTDOWN_TIMEOUT": "10s"}})
	const n = 300
	ids, bodies := make([]string, n), make([][]byte, n)
	for i := range n {
		ids[i], bodies[i] = signUp(prefix, i)
	}
	var restarted sync.WaitGroup
	codes := s.postAll(bodies, ids, func(i int) {
		time.Sleep(15 * time.Millisecond) // spread the burst over the stop and the restart
		if i == n/3 {
			restarted.Add(1)
			go func() {
				defer restarted.Done()
				stop(t, s)
				time.Sleep(2 * time.Second)
				s.restartService(t)
			}()
		}
	})
	restarted.Wait()
	var failed []int
	for i, c := range codes {
		if c < 200 || c >= 300 {
			failed = append(failed, i)
		}
	}
	// Svix re-sends what failed (resend).
	s.resend(t, bodies, ids, failed)
	s.waitAllUsers(t, ids, burstWait)
	t.Logf("injected: %s of the Connect worker at sign-up %d of %d, restarted 2s later; %d webhooks re-sent; counted: all %d users stored once", how, n/3, n, len(failed), n)
}

// TestConnectReconnectsAfterTheServerRestarts: the dev server (its gateway with it) stops and
// starts again; the service reports not ready meanwhile, connects again on its own, and the
// next sign-up is stored. inngestgo v0.15.1 alone gives up on a connection dropped this way.
func TestConnectReconnectsAfterTheServerRestarts(t *testing.T) {
	stacks(t)
	s := startStack(t, stackOptions{connect: true})
	s.stopDevServer()
	s.waitFor(t, 30*time.Second, "GET /readyz to answer 503 with the dev server stopped", func() bool { return !s.ready() })
	s.startDevServer(t)
	start := time.Now()
	s.waitSynced(t)
	t.Logf("measured: connected and ready again %v after the dev server answered", time.Since(start).Round(time.Second))
	id, body := signUp("reconnect", 0)
	s.mustPost(t, body, id, http.StatusOK)
	s.waitUser(t, id, 30*time.Second, func(_ store.User, err error) bool { return err == nil })
}

// testConnectLargePayload: a sign-up of 300 KB (Clerk's metadata can be that large; the
// webhook takes up to 512 KiB) reaches the function over the Connect gateway: the worker reads
// messages as large as /api/inngest's bodies, not the 32 KB ConnectOpts' documentation gives
// as the default (with the limit set to 32 KB, the user is never stored).
func (s *stack) testConnectLargePayload(t *testing.T) {
	var envelope map[string]any
	if err := json.Unmarshal(clerkUserEvent("user.created", "user_connbig", "Big", "big@example.org", 1700000000000), &envelope); err != nil {
		t.Fatal(err)
	}
	envelope["data"].(map[string]any)["unsafe_metadata"] = map[string]any{"notes": strings.Repeat("n", 300<<10)}
	body, _ := json.Marshal(envelope)
	s.mustPost(t, body, "msg_connbig", http.StatusOK)
	s.waitUser(t, "user_connbig", 30*time.Second, func(u store.User, err error) bool { return err == nil && u.FullName == "Big Tester" })
	if !s.ready() {
		t.Errorf("GET /readyz after a %d-byte event = not ready; want the connection still up", len(body))
	}
}

// TestConnectEndToEnd runs the guarantee tests (endToEndCases) in Connect mode, as TestEndToEnd
// does in serve mode, in the default write mode: every one that is not a burst, finding an
// event's runs through the dev server's event API and a run's calls in the service's log, as
// Inngest does not call the service; and beside them, on the same stack, a sign-up of 300 KB
// and a burst of sign-ups with no /api/inngest. The other bursts test the store's rules under
// load, which serve mode's stacks do; in Connect mode, the kill, stop and two-worker tests
// below carry shuffled, duplicated and interrupted bursts (thousands more runs here would
// double the tier's time on 2 cores).
func TestConnectEndToEnd(t *testing.T) {
	stacks(t)
	// The service's log stands in for the call log (callsOf).
	s := startStack(t, stackOptions{connect: true, env: map[string]string{"LOG_LEVEL": "info", "LOG_FORMAT": "json"}})
	cases := append([]endToEndCase{
		{name: "LargePayload", run: (*stack).testConnectLargePayload},
		{name: "BurstOf200SignUpsWithoutTheRoute", burst: true, run: (*stack).testConnectBurst},
	}, endToEndCases...)
	for _, bursts := range []bool{false, true} {
		var wg sync.WaitGroup
		for _, c := range cases {
			if c.burst == bursts && (!c.burst || c.name == "BurstOf200SignUpsWithoutTheRoute") {
				wg.Go(func() { t.Run(c.name, func(t *testing.T) { c.run(s, t) }) })
			}
		}
		wg.Wait()
	}
}

// TestConnectTwoWorkersShareTheLoad: two workers of the app (two services with instance ids of
// their own, one database) connect to one dev server; 100 users' shuffled and duplicated
// versions, posted to either, end as the newest version of each, and both workers ran
// functions. (Per-user order is Inngest's concurrency key, the same in both modes; the store's
// guarded writes keep the end state right whichever worker runs a user's events.)
func TestConnectTwoWorkersShareTheLoad(t *testing.T) {
	stacks(t)
	s := startStack(t, stackOptions{connect: true})
	env := maps.Clone(s.env)
	env["PORT"] = "0"
	env["INNGEST_INSTANCE_ID"] = s.env["INNGEST_INSTANCE_ID"] + "-b"
	b := startService(t, env)
	other := &stack{appURL: b.url}
	s.waitFor(t, 60*time.Second, "the second worker connected (GET /readyz = 200)", other.ready)

	rng := rand.New(rand.NewSource(22))
	const users = 100
	newest := map[string]string{}
	var bodies [][]byte
	var ids []string
	for u := range users {
		id := fmt.Sprintf("user_two%03d", u)
		for k := range 3 {
			typ := "user.updated"
			if k == 0 {
				typ = "user.created"
			}
			name := fmt.Sprintf("Two%dv%d", u, k)
			bodies = append(bodies, clerkUserEvent(typ, id, name, fmt.Sprintf("two%d@example.org", u), int64(1700000000000+k*1000)))
			ids = append(ids, fmt.Sprintf("msg_two_%d_%d", u, k))
			newest[id] = name + " Tester"
		}
	}
	for range 60 { // Svix re-deliveries of the same messages
		i := rng.Intn(len(bodies))
		bodies, ids = append(bodies, bodies[i]), append(ids, ids[i])
	}
	rng.Shuffle(len(bodies), func(i, j int) {
		bodies[i], bodies[j] = bodies[j], bodies[i]
		ids[i], ids[j] = ids[j], ids[i]
	})
	posters := []poster{{wh: s.wh, appURL: s.appURL}, {wh: s.wh, appURL: b.url}}
	for i := range bodies {
		if c, err := posters[i%2].post(bodies[i], ids[i]); err != nil || c != http.StatusOK {
			t.Fatalf("POST delivery %d (%s) = %d, %v; want 200", i, ids[i], c, err)
		}
	}
	pending := slices.Sorted(maps.Keys(newest))
	s.waitFor(t, burstWait, "every user at its newest version", func() bool {
		pending = pending[arrived(pending, func(id string) bool {
			u, err := s.store.Get(context.Background(), id)
			return err == nil && u.FullName == newest[id]
		}):]
		return len(pending) == 0
	})
	runs := func(url string) float64 {
		var n float64
		for _, v := range metricstest.Scrape(t, url)["clerksync_function_runs_total"] {
			n += v
		}
		return n
	}
	a, bn := runs(s.appURL), runs(b.url)
	if a == 0 || bn == 0 {
		t.Errorf("function runs: worker A %v, worker B %v; want both to have run some", a, bn)
	}
	t.Logf("counted: %d deliveries (%d distinct) for %d users, all at their newest version; function runs: worker A %v, worker B %v", len(bodies), users*3, users, a, bn)
}

// TestConnectBesideAnotherDevServer: with another Inngest server on the machine holding the
// release's fixed Connect gRPC ports (50052, 50053: `make dev`, another suite), a Connect mode
// stack still runs its functions, its dev server having ports of its own (grpcPorts). On
// shared ports the worker connects and is ready, and nothing it is sent ever runs: the failure
// that kept these tests out of CI.
func TestConnectBesideAnotherDevServer(t *testing.T) {
	stacks(t)
	other := &stack{bin: devServerBinary(t), dir: t.TempDir()}
	other.devPort = freePort(t)
	other.devURL = fmt.Sprintf("http://127.0.0.1:%d", other.devPort)
	cmd := exec.Command(other.bin, "dev", "--no-discovery", "--no-poll", "--port", strconv.Itoa(other.devPort),
		"--connect-gateway-port", strconv.Itoa(freePort(t)))
	cmd.Dir = other.dir // its environment has no gRPC ports: it takes 50052 and 50053, or fails to
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	other.waitFor(t, 60*time.Second, "the other dev server to answer", func() bool {
		resp, err := http.Get(other.devURL + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})

	s := startStack(t, stackOptions{connect: true})
	id, body := signUp("beside", 0)
	s.mustPost(t, body, id, http.StatusOK)
	s.waitUser(t, id, 60*time.Second, func(_ store.User, err error) bool { return err == nil })
}

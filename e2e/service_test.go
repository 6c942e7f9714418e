package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is an io.Writer that a child process can write to while the test reads it.
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

// newSecret returns a fresh Svix signing secret.
func newSecret(t testing.TB) string {
	t.Helper()
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// freePort returns a TCP port that was free a moment ago, for a child process to listen on.
// It takes it from below the kernel's ephemeral range (ephemeralLow), never handing out one
// twice in this process: a port picked from that range (by listening on port 0) could be
// taken, between the pick and the child's bind, by any outgoing connection of the tests,
// which get their local ports from it ("address already in use" in CI, once).
func freePort(t *testing.T) int {
	t.Helper()
	ports.mu.Lock()
	defer ports.mu.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
		ports.next = mrand.N(portsTop - portsBase)
	}
	top := min(portsTop, ephemeralLow())
	for range top - portsBase {
		p := portsBase + ports.next%(top-portsBase)
		ports.next++
		if ports.given[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			continue
		}
		l.Close()
		ports.given[p] = true
		return p
	}
	t.Fatalf("no free TCP port in %d-%d", portsBase, top-1)
	return 0
}

// The ports freePort hands out: from portsBase up to portsTop or the ephemeral range's start.
const (
	portsBase = 20000
	portsTop  = 32768
)

// ports is what freePort handed out in this process, and where it looks next (a random
// start, so that two test processes at once seldom try the same ports first).
var ports struct {
	mu    sync.Mutex
	next  int
	given map[int]bool
}

// ephemeralLow returns the first port of the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range), or portsTop when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return portsTop
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo <= portsBase+1000 {
		return portsTop
	}
	return lo
}

// processEnv returns the environment of a child process: vars, and only the variables a Go
// program needs from the test's own environment, so that no setting of the developer's shell
// reaches the service.
func processEnv(vars map[string]string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// listenRE matches the line the service prints on stdout once it listens (serve.go).
var listenRE = regexp.MustCompile(`listening on (http://localhost:\d+)`)

// service is the built binary running as a child process: the whole service.
type service struct {
	url    string      // base URL, http://localhost:PORT
	stdout *syncBuffer // what it printed
	stderr *syncBuffer // its log
	cmd    *exec.Cmd
	exited chan struct{} // closed once it has exited; err is then its exit status
	err    error
}

// startService starts the service with vars as its whole configuration and waits until it
// listens (PORT=0 picks a free port). When the test ends it gets SIGTERM, and the test fails
// unless it then exits with status 0 within 20 s.
func startService(t *testing.T, vars map[string]string) *service {
	t.Helper()
	svc := launchService(t, vars)
	t.Cleanup(func() {
		if svc.done() {
			return // the test stopped or killed it
		}
		if ok, err := svc.stop(20 * time.Second); !ok {
			t.Errorf("the service did not exit within 20s of SIGTERM; stderr:\n%s", svc.stderr)
		} else if err != nil {
			t.Errorf("the service exited with %v after SIGTERM; stderr:\n%s", err, svc.stderr)
		}
	})
	return svc
}

// launchService starts the service as startService does, but leaves its exit to the test:
// what still runs when the test ends is killed.
func launchService(t *testing.T, vars map[string]string) *service {
	t.Helper()
	svc, err := spawnService(vars)
	if svc != nil {
		t.Cleanup(svc.kill)
	}
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// spawnService starts the service with vars as its whole configuration and waits until it
// listens. It returns the service, and an error (with the service's log) when it exits or
// does not listen within 30 s; the service is returned whenever it started, for the caller
// to kill.
func spawnService(vars map[string]string) (*service, error) {
	svc := &service{stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	svc.cmd = exec.Command(serviceBin)
	svc.cmd.Env = processEnv(vars)
	svc.cmd.Stdout, svc.cmd.Stderr = svc.stdout, svc.stderr
	svc.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with the tests, even after a timeout's panic
	if err := svc.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", serviceBin, err)
	}
	go func() {
		svc.err = svc.cmd.Wait()
		close(svc.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenRE.FindStringSubmatch(svc.stdout.String()); m != nil {
			svc.url = m[1]
			return svc, nil
		}
		select {
		case <-svc.exited:
			return svc, fmt.Errorf("the service exited during start-up: %v; stderr:\n%s", svc.err, svc.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return svc, fmt.Errorf("the service did not print its address within 30s; stdout:\n%s\nstderr:\n%s", svc.stdout, svc.stderr)
}

// log returns the service's log (stderr) once it has stopped growing for 300 ms, or after
// 10 s: the log reaches the test through a pipe, so a line the service writes before it
// answers a request may arrive after the answer.
func (s *service) log() string {
	last, quietSince := s.stderr.String(), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if s.done() {
			return s.stderr.String() // Wait has copied all of it
		}
		time.Sleep(50 * time.Millisecond)
		if cur := s.stderr.String(); cur != last {
			last, quietSince = cur, time.Now()
		} else if time.Since(quietSince) >= 300*time.Millisecond {
			break
		}
	}
	return last
}

// done reports whether the service has exited.
func (s *service) done() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// signal sends sig to the service.
func (s *service) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil && !s.done() {
		t.Fatalf("signal %v to the service: %v", sig, err)
	}
}

// wait waits up to timeout for the service to exit; it returns whether it exited and, if so,
// its exit status (nil for 0).
func (s *service) wait(timeout time.Duration) (bool, error) {
	select {
	case <-s.exited:
		return true, s.err
	case <-time.After(timeout):
		return false, nil
	}
}

// stop sends SIGTERM, as a deploy does, and waits up to timeout for the service to exit.
func (s *service) stop(timeout time.Duration) (bool, error) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	return s.wait(timeout)
}

// kill kills the service with SIGKILL (no graceful shutdown), if it still runs, and waits for
// it.
func (s *service) kill() {
	if s.done() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// cmdError is the failure of a command: its exit status and what it wrote to stderr, where
// the binary prints the command's error ("clerk-user-sync: ...").
type cmdError struct {
	status int
	stderr string
}

func (e *cmdError) Error() string { return fmt.Sprintf("exit status %d: %s", e.status, e.stderr) }

// command runs the binary with args (after its name) and vars as its whole configuration, and
// returns its stdout and stderr, and nil when it exited 0, else a *cmdError. ctx ending
// interrupts it as Ctrl-C does (SIGINT); it is killed 10 s later if it still runs.
func command(ctx context.Context, t *testing.T, vars map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, serviceBin, args...)
	cmd.Env = processEnv(vars)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		err = &cmdError{status: exit.ExitCode(), stderr: stderr.String()}
	case err != nil:
		t.Fatalf("run %s %q: %v", serviceBin, args, err)
	}
	return stdout.String(), stderr.String(), err
}

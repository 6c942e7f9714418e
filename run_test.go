package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is an io.Writer that run can write to while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRunServesOnPortZeroAndStops starts the whole service through run, as main does, on
// port 0 with the embedded database, checks that it answers, then ends run's context as
// SIGTERM does and expects run to return nil. The black-box suite (e2e/) runs the built binary.
func TestRunServesOnPortZeroAndStops(t *testing.T) {
	t.Parallel()
	r := startRun(t, map[string]string{"INNGEST_DEV": "http://127.0.0.1:1"})
	r.expect(t, []request{
		{"GET", "/healthz", 200, `"ok"`},
		{"GET", "/readyz", 200, `"ready"`},
		{"POST", "/api/webhooks/clerk", 401, "signature"},
		{"GET", "/api/inngest", 200, `"function_count"`},
	})
	r.stop(t)
}

// TestRunConnectMode starts the service in Connect mode against a dev server URL that does not
// answer: run listens at once, without /api/inngest, and is not ready while its worker cannot
// connect; ending its context ends the dialling, and run returns nil.
func TestRunConnectMode(t *testing.T) {
	t.Parallel()
	r := startRun(t, map[string]string{"INNGEST_DEV": "http://127.0.0.1:1", "INNGEST_CONNECT": "1", "INNGEST_INSTANCE_ID": "sync-test-0"})
	r.expect(t, []request{
		{"GET", "/healthz", 200, `"ok"`},
		{"GET", "/readyz", 503, `not connected to Inngest yet`},
		{"POST", "/api/webhooks/clerk", 401, "signature"},
		{"GET", "/api/inngest", 404, ""},
		{"POST", "/api/inngest", 404, ""},
		{"PUT", "/api/inngest", 404, ""},
	})
	if !strings.Contains(r.stdout.String(), "Connect worker sync-test-0") {
		t.Errorf("run's start line does not name the Connect worker: %q", r.stdout)
	}
	r.stop(t)
}

// running is run, started by startRun.
type running struct {
	base           string
	stdout, stderr *lockedBuffer
	cancel         context.CancelFunc
	done           chan error
}

// request is one request to a running service and the status and part of the body it wants.
type request struct {
	method, path string
	want         int
	wantBody     string
}

// startRun starts run on port 0 with the embedded database and a fresh webhook secret, plus
// vars, and returns once it prints its address.
func startRun(t *testing.T, vars map[string]string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := &running{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	all := map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"DATA_DIR":                     t.TempDir(),
	}
	for k, v := range vars {
		all[k] = v
	}
	go func() { r.done <- run(ctx, []string{"clerk-user-sync"}, env(all), r.stdout, r.stderr) }()

	listen := regexp.MustCompile(`listening on (http://localhost:\d+)`)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if m := listen.FindStringSubmatch(r.stdout.String()); m != nil {
			r.base = m[1]
			return r
		}
		select {
		case err := <-r.done:
			t.Fatalf("run returned before listening: %v; stderr:\n%s", err, r.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("run did not print its address within 30s; stderr:\n%s", r.stderr)
		}
	}
}

// expect sends each request and checks its answer.
func (r *running) expect(t *testing.T, reqs []request) {
	t.Helper()
	for _, tt := range reqs {
		req, _ := http.NewRequest(tt.method, r.base+tt.path, strings.NewReader(`{}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.wantBody) {
			t.Errorf("%s %s = %d %q; want %d with %q", tt.method, tt.path, resp.StatusCode, body, tt.want, tt.wantBody)
		}
	}
}

// stop ends run's context, as SIGTERM does, and expects run to return nil within 20s.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("run after its context ended = %v; want nil; stderr:\n%s", err, r.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return within 20s of its context ending")
	}
}

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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
	done := make(chan error, 1)
	vars := map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_DEV":                  "http://127.0.0.1:1",
		"DATA_DIR":                     t.TempDir(),
	}
	go func() { done <- run(ctx, []string{"clerk-user-sync"}, env(vars), stdout, stderr) }()

	listen := regexp.MustCompile(`listening on (http://localhost:\d+)`)
	var base string
	for deadline := time.Now().Add(30 * time.Second); base == ""; {
		if m := listen.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run returned before listening: %v; stderr:\n%s", err, stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("run did not print its address within 30s; stderr:\n%s", stderr)
		}
	}

	tests := []struct {
		method, path string
		want         int
		wantBody     string
	}{
		{"GET", "/healthz", 200, `"ok"`},
		{"GET", "/readyz", 200, `"ready"`},
		{"POST", "/api/webhooks/clerk", 401, "signature"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, base+tt.path, strings.NewReader(`{}`))
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

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after its context ended = %v; want nil; stderr:\n%s", err, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return within 20s of its context ending")
	}
}

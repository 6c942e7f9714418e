package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
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
	"clerksync/store/embedded"
)

// serviceEnv, when set in the environment, makes this test binary run the service itself
// (main) instead of the tests: the fault tests start it as a child process they can kill.
const serviceEnv = "CLERKSYNC_TEST_RUN_SERVICE"

func TestMain(m *testing.M) {
	if os.Getenv(serviceEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// startService starts the service as a child process with the stack's settings and waits
// until it answers /healthz.
func (s *stack) startService() {
	t := s.t
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(s.dir, "service.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serviceEnv+"=1")
	for k, v := range s.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.svc, s.svcDone = cmd, make(chan struct{})
	done := s.svcDone
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	t.Cleanup(func() { s.killService() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.appURL + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(s.dir, "service.log"))
			t.Fatalf("the service exited during start-up:\n%s", b)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("the service did not answer /healthz within 30s")
}

// killService kills the child service with SIGKILL (no graceful shutdown) and waits for it.
func (s *stack) killService() {
	if s.svc == nil {
		return
	}
	_ = s.svc.Process.Signal(syscall.SIGKILL)
	<-s.svcDone
	s.svc = nil
}

// proxy forwards TCP connections to a target until it is cut.
type proxy struct {
	t      *testing.T
	target string
	port   int

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

// startProxy starts a proxy on a free loopback port in front of target.
func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{t: t, target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go pipe(c, up)
			go pipe(up, c)
		}
	}()
}

func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// cut closes the listener and every connection: the database is gone; new connections are
// refused.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

// restore listens again on the same port.
func (p *proxy) restore() {
	ln, err := net.Listen("tcp", p.addr())
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.addr(), err)
	}
	p.serve(ln)
}

// startEmbeddedDB starts a FerretDB for one test and returns it and its URI without a
// trailing slash (append "/<database>").
func startEmbeddedDB(t *testing.T) (*embedded.Server, string) {
	t.Helper()
	emb, err := embedded.Start(context.Background(), t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Stop)
	return emb, strings.TrimSuffix(emb.URI(), "/")
}

// openTestStore opens the store at uri for the test to read, closing it when the test ends.
func openTestStore(t *testing.T, uri, database string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := store.Open(ctx, uri, database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

// mustWebhook returns the Svix signer for secret.
func mustWebhook(t *testing.T, secret string) *svix.Webhook {
	t.Helper()
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

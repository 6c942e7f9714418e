package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"clerksync/clerk/clerkfake"
	"clerksync/store"
)

// TestSelfHostedServerSyncsAndRuns runs the service in production mode (keys, no INNGEST_DEV)
// against the real self-hosted server, `inngest start` (SQLite and its in-memory Redis): the
// server's signed sync passes the guard and registers INNGEST_SERVE_URL (the reconciliations
// among the functions, with a cron and an event trigger each), a signed webhook then lands in
// the database through the server's signed invocations, and the reconcile command's event runs
// the reconciliation.
func TestSelfHostedServerSyncsAndRuns(t *testing.T) {
	stacks(t)
	bin := devServerBinary(t)
	dir := t.TempDir()
	db := newDatabase(t, "selfhosted")
	svcPort, innPort := freePort(t), freePort(t)
	hexKey := strings.Repeat("5e1f", 16)
	eventKey := "evtkey-selfhosted"
	secret := newSecret(t)
	serve := fmt.Sprintf("http://127.0.0.1:%d/api/inngest", svcPort)
	// Clerk lists the user the webhook brings, and one whose webhook was missed.
	fake := clerkfake.New(t, "sk_test_selfhosted", clerkfake.NewUser("user_selfhosted", "Selfhosted", 1700000000000), clerkfake.NewUser("user_from_clerk", "Reconciled", 1000))
	vars := map[string]string{
		"PORT":                         strconv.Itoa(svcPort),
		"HOST":                         "127.0.0.1",
		"CLERK_WEBHOOK_SIGNING_SECRET": secret,
		"INNGEST_EVENT_KEY":            eventKey,
		"INNGEST_SIGNING_KEY":          "signkey-prod-" + hexKey,
		"INNGEST_BASE_URL":             fmt.Sprintf("http://127.0.0.1:%d", innPort),
		"INNGEST_SERVE_URL":            serve,
		"MONGODB_URI":                  db.uri,
		"CLERK_SECRET_KEY":             "sk_test_selfhosted",
		"CLERK_API_URL":                fake.URL,
		"LOG_LEVEL":                    "info",
	}
	svc := startService(t, vars)
	users := db.store

	logf, err := os.Create(filepath.Join(dir, "inngest.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "start", "--host", "127.0.0.1", "--port", strconv.Itoa(innPort),
		"--connect-gateway-port", strconv.Itoa(freePort(t)), "--sqlite-dir", dir,
		"--signing-key", hexKey, "--event-key", eventKey, "-u", serve, "--retry-interval", "1")
	cmd.Dir = dir // no inngest.json of the repository's
	cmd.Env = append(os.Environ(), grpcPorts(t)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	serverLog := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "inngest.log"))
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return string(b)
	}

	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(svc.stderr.String(), `msg="Inngest sync" status=200`) {
		if time.Now().After(deadline) {
			t.Fatalf("inngest start did not sync the app within 90s; the service's log:\n%s\nthe server's log:\n%s", svc.stderr, serverLog())
		}
		select {
		case <-done:
			t.Fatalf("inngest start exited; its log:\n%s", serverLog())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if strings.Contains(svc.log(), "Inngest request refused") {
		t.Errorf("the service refused a request of the real server:\n%s", svc.stderr)
	}

	clerk := newPoster(t, secret, svc.url)
	if got, err := clerk.post(clerkUserEvent("user.created", "user_selfhosted", "Selfhosted", "self@example.com", 1700000000000), "msg_selfhosted_1"); err != nil || got != http.StatusOK {
		t.Fatalf("POST /api/webhooks/clerk = %d, %v; want 200", got, err)
	}
	waitUser := func(id, name string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			u, err := users.Get(t.Context(), id)
			if err == nil && strings.HasPrefix(u.FullName, name) {
				return
			}
			if err != nil && err != store.ErrNotFound {
				t.Fatal(err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not written within 60s (%v); the service's log:\n%s\nthe server's log:\n%s", id, err, svc.stderr, serverLog())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitUser("user_selfhosted", "Selfhosted")

	// The reconciliations, which the server accepted with both their cron and their event
	// trigger, run when the reconcile command asks.
	if _, stderr, err := command(t.Context(), t, vars, "reconcile"); err != nil {
		t.Fatalf("reconcile = %v; stderr:\n%s", err, stderr)
	}
	waitUser("user_from_clerk", "Reconciled")
}

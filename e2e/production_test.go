package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"clerksync/store/embedded"
)

// The rules that keep a production deployment safe by default (issue 11): dev mode stays on
// loopback, /metrics can leave the public port, the embedded database runs only when chosen,
// and a shutdown drains requests before it closes the database.

var (
	listenAddrRE  = regexp.MustCompile(`msg=listening addr=(\S+)`)
	metricsAddrRE = regexp.MustCompile(`msg="serving /metrics on its own listener" addr=(\S+)`)
)

// logValue waits up to 5 s for re to match the service's log and returns its first group.
func logValue(t *testing.T, svc *service, re *regexp.Regexp) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(svc.stderr.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no log line matches %s; log:\n%s", re, svc.stderr)
	return ""
}

// nonLoopbackIP returns an IPv4 address of this machine that is not loopback, or "" when it
// has none.
func nonLoopbackIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return ""
}

func TestListenAddressByMode(t *testing.T) {
	parallel(t)
	external := nonLoopbackIP()
	if external == "" {
		t.Log("this machine has no non-loopback IPv4 address: only the logged listen addresses are checked")
	}
	db := newDatabase(t, "listen")
	dev := map[string]string{"INNGEST_DEV": "http://127.0.0.1:1"}
	cloud := map[string]string{"INNGEST_EVENT_KEY": "evtkey-listen", "INNGEST_SIGNING_KEY": "signkey-prod-0123456789abcdef", "INNGEST_SERVE_URL": "https://sync.example.com/api/inngest", "INNGEST_BASE_URL": "http://127.0.0.1:1", "MONGODB_URI": db.uri}
	tests := []struct {
		name         string
		mode, change map[string]string
		wantAddr     string // the logged listen address's host: 127.0.0.1, or "all" (0.0.0.0 or [::])
		wantWarning  bool
		wantExternal bool // reachable on a non-loopback address
	}{
		{"dev mode: loopback only", dev, nil, "127.0.0.1", true, false},
		{"dev mode, HOST=0.0.0.0 on purpose", dev, map[string]string{"HOST": "0.0.0.0"}, "all", true, true},
		{"cloud mode: every interface", cloud, nil, "all", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // a service of its own
			vars := map[string]string{"PORT": "0", "CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t), "DATA_DIR": t.TempDir()}
			for _, m := range []map[string]string{tt.mode, tt.change} {
				for k, v := range m {
					vars[k] = v
				}
			}
			svc := startService(t, vars)
			addr := logValue(t, svc, listenAddrRE)
			host, port, _ := net.SplitHostPort(addr)
			if host == "0.0.0.0" || host == "::" {
				host = "all"
			}
			if host != tt.wantAddr {
				t.Errorf("listen address = %s; want host %s", addr, tt.wantAddr)
			}
			warned := strings.Contains(svc.log(), `level=WARN msg="dev mode (INNGEST_DEV): /api/inngest runs any unsigned request`)
			if warned != tt.wantWarning {
				t.Errorf("dev-mode warning logged = %v; want %v; log:\n%s", warned, tt.wantWarning, svc.stderr)
			}
			if external == "" {
				return
			}
			conn, err := net.DialTimeout("tcp", net.JoinHostPort(external, port), 2*time.Second)
			if err == nil {
				conn.Close()
			}
			if got := err == nil; got != tt.wantExternal {
				t.Errorf("reachable at %s:%s = %v (%v); want %v", external, port, got, err, tt.wantExternal)
			}
		})
	}
}

func TestEmbeddedDatabaseWhenChosenInCloudMode(t *testing.T) {
	parallel(t)
	dataDir := t.TempDir()
	svc := startService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_EVENT_KEY":            "evtkey-embedded",
		"INNGEST_SIGNING_KEY":          "signkey-prod-0123456789abcdef",
		"INNGEST_SERVE_URL":            "https://sync.example.com/api/inngest",
		"INNGEST_BASE_URL":             "http://127.0.0.1:1",
		"MONGODB_URI":                  "embedded",
		"DATA_DIR":                     dataDir,
	})
	resp, err := http.Get(svc.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz with MONGODB_URI=embedded = %d; want 200", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "app.sqlite")); err != nil {
		t.Errorf("MONGODB_URI=embedded: %v; want the embedded database's file in DATA_DIR", err)
	}
}

func TestMetricsOnTheirOwnListener(t *testing.T) {
	parallel(t)
	svc := startService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_DEV":                  "http://127.0.0.1:1",
		"DATA_DIR":                     t.TempDir(),
		"METRICS_ADDR":                 "127.0.0.1:0",
	})
	metricsURL := "http://" + logValue(t, svc, metricsAddrRE)
	tests := []struct {
		url      string
		want     int
		wantBody string
	}{
		{metricsURL + "/metrics", 200, "clerksync_webhooks_received_total"},
		{svc.url + "/metrics", 404, ""},
		{metricsURL + "/api/inngest", 404, ""},
		{svc.url + "/healthz", 200, "ok"},
	}
	for _, tt := range tests {
		resp, err := http.Get(tt.url)
		if err != nil {
			t.Fatalf("GET %s: %v", tt.url, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.wantBody) {
			t.Errorf("GET %s = %d (%d bytes); want %d containing %q", tt.url, resp.StatusCode, len(body), tt.want, tt.wantBody)
		}
	}
}

// startRequest opens a connection to base and sends a request's head and the first n bytes
// of body, leaving the rest unsent: a request in flight. It returns the connection.
func startRequest(t *testing.T, base, method, path string, body []byte, n int) net.Conn {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", method, path, u.Host, len(body))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(body[:n]); err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestShutdownDrainsBeforeClosingTheDatabase(t *testing.T) {
	parallel(t)
	dataDir := t.TempDir()
	svc := launchService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_DEV":                  "http://127.0.0.1:1", // dev mode: the test can call a step unsigned
		"DATA_DIR":                     dataDir,
		"SHUTDOWN_TIMEOUT":             "10s",
	})
	// Inngest is running a step when the deploy's SIGTERM arrives: the request is in flight.
	body := invokeBody("user_drained", "Drained")
	path := "/api/inngest?" + url.Values{"fnId": {"clerk-user-sync-sync-user-from-clerk"}, "stepId": {"step"}}.Encode()
	conn := startRequest(t, svc.url, http.MethodPost, path, body, 10)
	time.Sleep(200 * time.Millisecond)
	svc.signal(t, syscall.SIGTERM)
	// The shutdown is under way. An embedded FerretDB stopped now would close its listener at
	// once and its open connections 3 s later: the step below would find no database.
	time.Sleep(3500 * time.Millisecond)
	if _, err := conn.Write(body[10:]); err != nil {
		t.Fatalf("sending the rest of the step's request after the signal: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the step's response: %v", err)
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Errorf("step request in flight at shutdown = %d %s; want it run to completion (2xx)", resp.StatusCode, respBody)
	}
	if exited, err := svc.wait(20 * time.Second); !exited {
		t.Fatal("the service did not exit within 20s of the signal")
	} else if err != nil {
		t.Errorf("the service exited with %v after the drain; want status 0; log:\n%s", err, svc.stderr)
	}
	// The step's write reached the database, which closed only after it.
	emb, err := embedded.Start(context.Background(), dataDir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Stop)
	users := openTestStore(t, strings.TrimSuffix(emb.URI(), "/"), "app")
	if u, err := users.Get(context.Background(), "user_drained"); err != nil || u.FullName != "Drained" {
		t.Errorf("user written by the step in flight at shutdown = %+v, %v; want it stored", u, err)
	}
}

func TestShutdownCutsRequestsPastTheTimeout(t *testing.T) {
	parallel(t)
	svc := launchService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_DEV":                  "http://127.0.0.1:1",
		"DATA_DIR":                     t.TempDir(),
		"SHUTDOWN_TIMEOUT":             "1s",
	})
	// A webhook whose client stalls: it would hold the drain until the read timeout (15 s).
	startRequest(t, svc.url, http.MethodPost, "/api/webhooks/clerk", []byte(`{"type":"user.created","data":{}}`), 5)
	time.Sleep(200 * time.Millisecond)
	svc.signal(t, syscall.SIGTERM)
	if exited, err := svc.wait(10 * time.Second); !exited {
		t.Fatal("the service did not exit within 10s of the signal with SHUTDOWN_TIMEOUT=1s")
	} else if err != nil {
		t.Errorf("the service exited with %v after a drain that ran past SHUTDOWN_TIMEOUT; want status 0 (a deploy is not a failure)", err)
	}
	if !strings.Contains(svc.log(), "outlived the shutdown timeout") {
		t.Errorf("no warning about the requests cut at shutdown; log:\n%s", svc.stderr)
	}
}

func TestSecondSignalExitsAtOnce(t *testing.T) {
	parallel(t)
	svc := launchService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_DEV":                  "http://127.0.0.1:1",
		"DATA_DIR":                     t.TempDir(),
		"SHUTDOWN_TIMEOUT":             "15s",
	})
	// A stalled webhook keeps the drain going (up to the 15 s read timeout).
	startRequest(t, svc.url, http.MethodPost, "/api/webhooks/clerk", []byte(`{"type":"user.created","data":{}}`), 5)
	time.Sleep(200 * time.Millisecond)
	svc.signal(t, syscall.SIGTERM)
	if exited, _ := svc.wait(time.Second); exited {
		t.Fatalf("the service exited at the first signal with a request in flight; want it draining:\n%s", svc.stderr)
	}
	svc.signal(t, os.Interrupt)
	if exited, _ := svc.wait(5 * time.Second); !exited {
		t.Fatalf("the service still runs 5s after a second signal; want it to exit at once:\n%s", svc.stderr)
	}
}

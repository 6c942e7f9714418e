package proc

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStartStop: a started process logs to its file, is ready once its log says so, and Stop
// ends it (and its group) with the signal given; its peak RSS is known once it has ended.
func TestStartStop(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "sh.log")
	p, err := Start(Spec{Name: "sh", Args: []string{"/bin/sh", "-c", "echo started; exec sleep 60"}, Env: CleanEnv(nil), Dir: dir, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	err = WaitFor(t.Context(), "the log line", p, 10*time.Second, 10*time.Millisecond, func() bool {
		return strings.Contains(FileTail(log, 100), "started")
	})
	if err != nil {
		t.Fatalf("WaitFor = %v", err)
	}
	if p.Exited() || p.MaxRSS() != 0 {
		t.Errorf("running: Exited() = %t, MaxRSS() = %d; want false, 0", p.Exited(), p.MaxRSS())
	}
	p.Stop(syscall.SIGTERM, 10*time.Second)
	if !p.Exited() || p.MaxRSS() <= 0 {
		t.Errorf("stopped: Exited() = %t, MaxRSS() = %d; want true, above 0", p.Exited(), p.MaxRSS())
	}
	if ws, ok := p.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGTERM {
		t.Errorf("stopped: %v; want killed by SIGTERM", p.Cmd.ProcessState)
	}
	// An ended process makes WaitFor fail with the end of its log.
	err = WaitFor(t.Context(), "never", p, 10*time.Second, 10*time.Millisecond, func() bool { return false })
	if err == nil || !strings.Contains(err.Error(), "sh exited") || !strings.Contains(err.Error(), "started") {
		t.Errorf("WaitFor on an ended process = %v; want that it exited, with its log", err)
	}
}

// TestCleanEnv: the service's and Inngest's settings, and the prefixes asked for, are dropped.
func TestCleanEnv(t *testing.T) {
	t.Setenv("INNGEST_DEV", "1")
	t.Setenv("CLERK_RATE_LIMIT", "5")
	t.Setenv("PGDATA", "/x")
	t.Setenv("PROC_TEST_KEEP", "yes")
	env := strings.Join(CleanEnv([]string{"PG"}, "EXTRA=1"), "\n") + "\n"
	for _, v := range []string{"INNGEST_DEV=", "CLERK_RATE_LIMIT=", "PGDATA="} {
		if strings.Contains(env, "\n"+v) || strings.HasPrefix(env, v) {
			t.Errorf("CleanEnv keeps %s", v)
		}
	}
	for _, v := range []string{"PROC_TEST_KEEP=yes\n", "EXTRA=1\n"} {
		if !strings.Contains(env, v) {
			t.Errorf("CleanEnv lacks %s", v)
		}
	}
	if _, err := os.Stat("/proc/self/status"); err == nil {
		if rss, err := VmHWM(os.Getpid()); err != nil || rss <= 0 {
			t.Errorf("VmHWM(self) = %d, %v; want above 0", rss, err)
		}
	}
}

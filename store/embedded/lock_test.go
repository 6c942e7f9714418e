//go:build unix

package embedded_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"clerksync/store"
	"clerksync/store/embedded"
)

// startEmbedded starts an embedded FerretDB in dir, with its messages discarded.
func startEmbedded(dir string) (*embedded.Server, error) {
	return embedded.Start(context.Background(), dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// wantInUse fails the test unless err is the refusal of dir, held by the process pid, and came
// at once (within took).
func wantInUse(t *testing.T, err error, dir string, pid int, took time.Duration) {
	t.Helper()
	if !errors.Is(err, embedded.ErrDataDirInUse) {
		t.Fatalf("Start(%s) while another holds it = %v; want an error wrapping ErrDataDirInUse", dir, err)
	}
	for _, want := range []string{dir, fmt.Sprintf("process %d", pid), "stop that one first"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start(%s) error %q does not say %q", dir, err, want)
		}
	}
	if took > 2*time.Second {
		t.Errorf("Start(%s) took %v to refuse; want at once", dir, took)
	}
}

// TestLocksDataDir: while an embedded server runs on a data directory, a second one
// on the same directory is refused at once, naming the directory and the holder; once the
// first has stopped, the directory opens again, its data intact.
func TestLocksDataDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	first, err := startEmbedded(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.Stop)
	st, err := first.Open(ctx, "locked", store.WritesAuto)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpsertUser(ctx, store.User{ID: "user_1", Username: "a", UpdatedAt: 1}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	second, err := startEmbedded(dir)
	if second != nil {
		second.Stop()
	}
	wantInUse(t, err, dir, os.Getpid(), time.Since(start))

	_ = st.Close(ctx)
	first.Stop()
	again, err := startEmbedded(dir)
	if err != nil {
		t.Fatalf("Start(%s) after Stop = %v; want the directory free again", dir, err)
	}
	t.Cleanup(again.Stop)
	st, err = again.Open(ctx, "locked", store.WritesAuto)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	if u, err := st.Get(ctx, "user_1"); err != nil || u.Username != "a" {
		t.Errorf("Get(user_1) after reopening = %+v, %v; want the user written before", u, err)
	}
}

// holdDirEnv names the data directory the helper process of
// TestLockReleasedWhenHolderDies holds.
const holdDirEnv = "EMBEDDED_TEST_HOLD_DATA_DIR"

// TestLockReleasedWhenHolderDies: another process running the embedded database on a
// data directory keeps this one out; killed (SIGKILL: no Stop, no clean-up), it leaves the
// directory free, since the operating system drops its lock.
func TestLockReleasedWhenHolderDies(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$") // init makes it the helper

	cmd.Env = append(os.Environ(), holdDirEnv+"="+dir)
	stdin, err := cmd.StdinPipe() // closed when this process ends: the helper exits then
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	held := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		held <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-held:
		if !strings.HasPrefix(line, "holding") {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("helper process said %q; want it holding %s", line, dir)
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("helper process did not start its embedded database within a minute")
	}

	start := time.Now()
	emb, err := startEmbedded(dir)
	if emb != nil {
		emb.Stop()
	}
	wantInUse(t, err, dir, cmd.Process.Pid, time.Since(start))

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	emb, err = startEmbedded(dir)
	if err != nil {
		t.Fatalf("Start(%s) after its holder was killed = %v; want the directory free", dir, err)
	}
	emb.Stop()
}

// init turns the test binary into the helper process of
// TestLockReleasedWhenHolderDies when holdDirEnv is set, before any test runs.
func init() {
	if dir := os.Getenv(holdDirEnv); dir != "" {
		holdDataDir(dir)
	}
}

// holdDataDir is the helper process: it runs the embedded database on dir, says so on stdout,
// and holds it until its stdin closes (or it is killed); then it exits.
func holdDataDir(dir string) {
	emb, err := startEmbedded(dir)
	if err != nil {
		fmt.Println("failed:", err)
		os.Exit(1)
	}
	fmt.Println("holding", dir)
	_, _ = io.Copy(io.Discard, os.Stdin)
	emb.Stop()
	os.Exit(0)
}

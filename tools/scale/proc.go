package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cleanups is a stack of functions that undo what the program set up (processes, temporary
// directories), run in reverse order by close. It is safe for concurrent use, and each function
// runs once even when close is called twice (the main path and a second Ctrl-C).
type cleanups struct {
	mu  sync.Mutex
	fns []func()
}

// add pushes f; it runs before everything added earlier.
func (c *cleanups) add(f func()) {
	c.mu.Lock()
	c.fns = append(c.fns, f)
	c.mu.Unlock()
}

// close runs and forgets every function, the last added first.
func (c *cleanups) close() {
	for {
		c.mu.Lock()
		if len(c.fns) == 0 {
			c.mu.Unlock()
			return
		}
		f := c.fns[len(c.fns)-1]
		c.fns = c.fns[:len(c.fns)-1]
		c.mu.Unlock()
		f()
	}
}

// proc is a child process in its own process group, logging to a file.
type proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// procSpec says how to start a child process.
type procSpec struct {
	name string   // for messages
	args []string // the program and its arguments
	env  []string // the whole environment
	dir  string   // working directory
	log  string   // file receiving stdout and stderr (appended to)
	// uid/gid, when uid is non-zero, run the process as that user (PostgreSQL refuses root).
	uid, gid uint32
	// stdin and stdout, when set, replace /dev/null and the log file.
	stdin, stdout *os.File
}

// startProc starts the process of spec. It is killed with its process group by stop, and by
// the kernel (SIGKILL) if this program dies first.
func startProc(spec procSpec) (*proc, error) {
	logf, err := os.OpenFile(spec.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(spec.args[0], spec.args[1:]...)
	cmd.Env = spec.env
	cmd.Dir = spec.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if spec.stdout != nil {
		cmd.Stdout = spec.stdout
	}
	if spec.stdin != nil {
		cmd.Stdin = spec.stdin
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if spec.uid != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: spec.uid, Gid: spec.gid}
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", spec.name, spec.args[0], err)
	}
	p := &proc{name: spec.name, log: spec.log, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process's whole group.
func (p *proc) signal(sig syscall.Signal) {
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// kill sends SIGKILL to the process group and waits for the process.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
}

// stop sends sig to the process group, waits up to grace, then kills it.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	if p.exited() {
		p.signal(syscall.SIGKILL) // whatever it left in its group
		return
	}
	p.signal(sig)
	select {
	case <-p.done:
		p.signal(syscall.SIGKILL)
	case <-time.After(grace):
		p.kill()
	}
}

// logTail returns the end of the process's log, for error messages.
func (p *proc) logTail() string { return fileTail(p.log, 3000) }

func fileTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor calls ready every interval until it returns true, the process p (if any) exits, ctx
// ends, or timeout passes.
func waitFor(ctx context.Context, what string, p *proc, timeout, interval time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if ready() {
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s: %s exited; the end of its log (%s):\n%s", what, p.name, p.log, p.logTail())
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("%s: not ready after %v", what, timeout)
			if p != nil {
				msg += fmt.Sprintf("; the end of %s's log (%s):\n%s", p.name, p.log, p.logTail())
			}
			return errors.New(msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// httpOK reports whether GET url answers 200.
func httpOK(url string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// cleanEnv returns this process's environment without the settings of the service and of
// Inngest, so that nothing from the caller's shell (INNGEST_DEV, MONGODB_URI...) leaks into
// the processes started here; extra is appended.
func cleanEnv(extra ...string) []string {
	drop := []string{"INNGEST_", "CLERK_", "MONGODB_", "STORE_", "LOG_", "DATA_DIR=", "PORT=", "HOST=",
		"METRICS_ADDR=", "SHUTDOWN_TIMEOUT=", "WEBHOOK_", "RECONCILE_", "PG", "REDIS"}
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range drop {
			if strings.HasPrefix(kv, p) {
				keep = false
				break
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// lookPath finds name in PATH or in the extra directories.
func lookPath(name string, extra ...string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range extra {
		matches, _ := filepath.Glob(filepath.Join(d, name))
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return m
			}
		}
	}
	return ""
}

// Package proc starts the child processes of the measuring tools (tools/scale,
// tools/reconcile-scale) so that they die with the tool, waits for them to be ready, and reads
// what they cost: CPU time and resident memory, from /proc (Linux only).
package proc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Spec says how to start a child process.
type Spec struct {
	Name string   // for messages
	Args []string // the program and its arguments
	Env  []string // the whole environment
	Dir  string   // working directory
	Log  string   // file receiving stdout and stderr (appended to)
	// UID/GID, when UID is non-zero, run the process as that user (PostgreSQL refuses root).
	UID, GID uint32
	// Stdin and Stdout, when set, replace /dev/null and the log file.
	Stdin, Stdout *os.File
}

// Proc is a child process in its own process group, logging to a file.
type Proc struct {
	Name string    // Spec.Name
	Log  string    // Spec.Log
	Cmd  *exec.Cmd // its ProcessState is set once Done is closed
	done chan struct{}
}

// Start starts the process of spec. It is killed with its process group by Stop or Kill, and by
// the kernel (SIGKILL) if this program dies first. It returns an error when the log cannot be
// opened or the program cannot be started.
func Start(spec Spec) (*Proc, error) {
	logf, err := os.OpenFile(spec.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(spec.Args[0], spec.Args[1:]...)
	cmd.Env = spec.Env
	cmd.Dir = spec.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if spec.Stdout != nil {
		cmd.Stdout = spec.Stdout
	}
	if spec.Stdin != nil {
		cmd.Stdin = spec.Stdin
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if spec.UID != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: spec.UID, Gid: spec.GID}
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", spec.Name, spec.Args[0], err)
	}
	p := &Proc{Name: spec.Name, Log: spec.Log, Cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the process has ended and been waited for.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process's whole group.
func (p *Proc) Signal(sig syscall.Signal) {
	_ = syscall.Kill(-p.Cmd.Process.Pid, sig)
}

// Kill sends SIGKILL to the process group and waits for the process.
func (p *Proc) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends sig to the process group, waits up to grace for the process to end, then kills
// what is left of the group (the process itself too when it has not ended).
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) {
	if p.Exited() {
		p.Signal(syscall.SIGKILL) // whatever it left in its group
		return
	}
	p.Signal(sig)
	select {
	case <-p.done:
		p.Signal(syscall.SIGKILL)
	case <-time.After(grace):
		p.Kill()
	}
}

// LogTail returns the last n bytes of the process's log, for messages ("" when it cannot be
// read).
func (p *Proc) LogTail(n int) string { return FileTail(p.Log, n) }

// FileTail returns the last n bytes of the file at path ("" when it cannot be read).
func FileTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// MaxRSS returns the peak resident set of the process once it has ended (the kernel's
// ru_maxrss), in bytes, and 0 before.
func (p *Proc) MaxRSS() int64 {
	if !p.Exited() || p.Cmd.ProcessState == nil {
		return 0
	}
	if ru, ok := p.Cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024 // kilobytes on Linux
	}
	return 0
}

// VmHWM returns the peak resident set size of the running process pid (VmHWM in
// /proc/<pid>/status), in bytes. It returns an error when the process is gone or the line is
// missing.
func VmHWM(pid int) (int64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", v, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc/" + strconv.Itoa(pid) + "/status")
}

// CPU returns the CPU seconds the process's group has used so far (GroupCPU), 0 for a nil or
// ended process.
func (p *Proc) CPU() float64 {
	if p == nil || p.Exited() {
		return 0
	}
	return GroupCPU(p.Cmd.Process.Pid)
}

// GroupCPU returns the user+system CPU seconds used by the live processes of process group
// pgid and by the live children of its leader (PostgreSQL's backends leave its group), plus
// what they have reaped of their children (ended backends): where the machine's time went.
// Processes it cannot read count 0.
func GroupCPU(pgid int) float64 {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var total float64
	for _, path := range stats {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		s := string(raw)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 15 || (f[2] != strconv.Itoa(pgid) && f[1] != strconv.Itoa(pgid)) {
			continue
		}
		for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
			v, _ := strconv.ParseFloat(f[i], 64)
			total += v
		}
	}
	return total / 100 // clock ticks, 100 a second on Linux
}

// MachineCPU returns the machine's busy and total CPU time so far, in clock ticks (all cores);
// 0, 0 when /proc/stat cannot be read.
func MachineCPU() (busy, total float64) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// FreePort returns a loopback TCP port that was free a moment ago, or the error of listening.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitFor calls ready every interval until it returns true, the process p (if any) exits, ctx
// ends, or timeout passes. It returns nil once ready, and otherwise an error saying which, with
// the end of p's log.
func WaitFor(ctx context.Context, what string, p *Proc, timeout, interval time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if ready() {
			return nil
		}
		if p != nil && p.Exited() {
			return fmt.Errorf("%s: %s exited; the end of its log (%s):\n%s", what, p.Name, p.Log, p.LogTail(3000))
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("%s: not ready after %v", what, timeout)
			if p != nil {
				msg += fmt.Sprintf("; the end of %s's log (%s):\n%s", p.Name, p.Log, p.LogTail(3000))
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

// HTTPOK reports whether GET url answers 200 within 2 s.
func HTTPOK(url string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// CleanEnv returns this process's environment without the settings of the service and of
// Inngest (INNGEST_DEV, MONGODB_URI...), nor those starting with one of alsoDrop, so that
// nothing from the caller's shell leaks into the processes started; extra is appended.
func CleanEnv(alsoDrop []string, extra ...string) []string {
	drop := append([]string{"INNGEST_", "CLERK_", "MONGODB_", "STORE_", "LOG_", "DATA_DIR=", "PORT=", "HOST=",
		"METRICS_ADDR=", "SHUTDOWN_TIMEOUT=", "WEBHOOK_", "RECONCILE_"}, alsoDrop...)
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

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"clerksync/tools/internal/proc"
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

// cleanEnv returns this process's environment without the settings of the service, of Inngest,
// of PostgreSQL (PG...) and of Redis (proc.CleanEnv); extra is appended.
func cleanEnv(extra ...string) []string {
	return proc.CleanEnv([]string{"PG", "REDIS"}, extra...)
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

//go:build unix

package embedded

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockDir takes the exclusive lock of the data directory dir: an flock on LockFile in it,
// which the operating system releases when the process ends, however it ends. The lock file
// holds the process id of its holder, for the error of the next process that tries. It
// returns the function that releases the lock, or an error wrapping ErrDataDirInUse when
// another process (or another Start of this one) holds it, and the file system's
// error when the lock file cannot be opened.
func lockDir(dir string) (func(), error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("embedded database: open the lock file %s: %w (set DATA_DIR to a writable directory)", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, inUse(dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("embedded database: lock %s: %w", path, err)
	}
	// Who holds it, for the message of the next one: best effort, the lock is what counts.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

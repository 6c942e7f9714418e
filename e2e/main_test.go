package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var (
	// suiteDir is the temporary directory of the whole run: the binary, the shared FerretDB.
	suiteDir string
	// serviceBin is the clerk-user-sync binary TestMain built for the tests to run.
	serviceBin string
)

// TestMain builds the service's binary once, from the module root, and runs the tests against
// it. Under -short it builds nothing: every test skips.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(runSuite(m))
}

// runSuite builds the binary into a temporary directory, runs the tests, stops the shared
// FerretDB and removes the directory; it returns the exit code.
func runSuite(m *testing.M) int {
	var err error
	suiteDir, err = os.MkdirTemp("", "clerksync-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(suiteDir)
	defer stopSharedDB()
	serviceBin = filepath.Join(suiteDir, "clerk-user-sync")
	build := exec.Command("go", "build", "-o", serviceBin, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build -o %s ..: %v\n", serviceBin, err)
		return 1
	}
	return m.Run()
}

// blackBox skips the test under -short: every test here runs the built service.
func blackBox(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: runs without -short (make test runs it)")
	}
}

package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"testing"
)

var (
	// suiteDir is the temporary directory of the whole run: the binary, the shared FerretDB.
	suiteDir string
	// serviceBin is the clerk-user-sync binary TestMain built for the tests to run.
	serviceBin string
)

// defaultParallel is how many tests run at once unless -parallel says otherwise: they wait on
// processes and servers far more than they compute, and go test's default, GOMAXPROCS, would
// run two at a time on a 2-core machine.
const defaultParallel = 16

// TestMain builds the service's binary once, from the module root, and runs the tests against
// it. Under -short it builds nothing: every test skips.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		_ = flag.Set("test.parallel", strconv.Itoa(defaultParallel))
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
	// The shared FerretDB runs in this process, which spent a fifth of its CPU time collecting
	// garbage at the default GOGC of 100 (docs/performance.md#the-test-run).
	debug.SetGCPercent(400)
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

// parallel skips the test under -short, and runs it in parallel with the others: each test
// has a service and a database of its own, or asserts only about its own ids.
func parallel(t *testing.T) {
	t.Helper()
	blackBox(t)
	t.Parallel()
}

// stacks skips the test as devServerBinary does, and runs it in parallel with the others: the
// tests whose stacks only take posts share them, each asserting about its own ids; those that
// stop, cut or reorder a part have stacks of their own.
func stacks(t *testing.T) {
	t.Helper()
	devServerBinary(t)
	t.Parallel()
}

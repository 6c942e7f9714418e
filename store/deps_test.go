package store_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoEmbeddedDatabase: neither store nor webhook (which reaches store through clerk)
// links FerretDB or SQLite; only store/embedded, and what imports it, does. It asks the go tool
// for their dependencies.
func TestImportsNoEmbeddedDatabase(t *testing.T) {
	t.Parallel()
	pkgs := []string{"clerksync/store", "clerksync/webhook"}
	for _, pkg := range pkgs {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
		}
		deps := strings.Fields(string(out))
		if len(deps) == 0 || deps[len(deps)-1] != pkg {
			t.Fatalf("go list -deps %s listed %q; want its dependencies, ending with %s", pkg, deps, pkg)
		}
		var bad []string
		for _, dep := range deps {
			if strings.HasPrefix(dep, "github.com/FerretDB/") || strings.Contains(strings.ToLower(dep), "sqlite") {
				bad = append(bad, dep)
			}
		}
		if len(bad) > 0 {
			t.Errorf("go list -deps %s lists %d FerretDB or SQLite packages (%s among them); want none: the embedded database belongs in store/embedded", pkg, len(bad), bad[0])
		}
	}
}

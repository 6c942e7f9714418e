package syncevent_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsOnlyStandardLibrary: the contract links nothing of the service's or of a third
// party's, so that the bridge and the functions can share it without linking each other (or
// the SDKs and the database the clerk package brings). go test puts the go command on PATH.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	t.Parallel()
	const pkg = "clerksync/syncevent"
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	var got []string
	for _, p := range strings.Fields(string(out)) {
		if p != pkg {
			got = append(got, p)
		}
	}
	if len(got) != 0 {
		t.Errorf("go list -deps %s lists %q beside the standard library; want none", pkg, got)
	}
}

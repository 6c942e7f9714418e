package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWorkflowsDocExampleBuilds: the welcome-email function docs/workflows.md gives to copy
// compiles against the inngestgo and MongoDB driver versions this module pins. It is built as a
// package that exists only in a build overlay, so nothing is written into the repository.
func TestWorkflowsDocExampleBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a package: runs without -short")
	}
	doc, err := os.ReadFile(filepath.Join("docs", "workflows.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "\n```go\n")
	code, _, closed := strings.Cut(rest, "\n```\n")
	if !ok || !closed || !strings.Contains(code, `EventTrigger("clerk-sync/user.created"`) {
		t.Fatalf("docs/workflows.md has no Go block triggered by clerk-sync/user.created")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "welcome.go")
	if err := os.WriteFile(src, []byte(code+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(root, "docexample", "welcome.go"): src}})
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("go", "build", "-overlay", overlayFile, "./docexample/").CombinedOutput(); err != nil {
		t.Errorf("go build of docs/workflows.md's Go block: %v\n%s", err, out)
	}
}

package main

import (
	"bytes"
	"context"
	"io"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		var stdout bytes.Buffer
		// No settings at all: version needs none.
		if err := run(context.Background(), []string{"clerk-user-sync", arg}, env(nil), &stdout, io.Discard); err != nil {
			t.Fatalf("run %s = %v; want nil", arg, err)
		}
		// Test binaries carry no module version and, with -buildvcs=false, no revision.
		if got := stdout.String(); !strings.HasPrefix(got, "clerk-user-sync ") || !strings.Contains(got, "go1.") {
			t.Errorf("run %s printed %q; want a line starting with clerk-user-sync and naming the Go version", arg, got)
		}
	}
	var help bytes.Buffer
	if err := run(context.Background(), []string{"clerk-user-sync", "--help"}, env(nil), &help, io.Discard); err != nil {
		t.Fatalf("run --help = %v; want nil", err)
	}
	if !strings.Contains(help.String(), "clerk-user-sync version") {
		t.Errorf("--help does not list the version command:\n%s", help.String())
	}
}

func TestVersionString(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	tests := []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"no build information", nil, "clerk-user-sync (devel) revision unknown (built without VCS information) unknown Go version"},
		{"checkout built with -buildvcs=false", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "clerksync", Version: "(devel)"}},
			"clerk-user-sync (devel) revision unknown (built without VCS information) go1.26.8"},
		{"empty module version", &debug.BuildInfo{GoVersion: "go1.26.8"},
			"clerk-user-sync (devel) revision unknown (built without VCS information) go1.26.8"},
		{"checkout with VCS stamping", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs", "git", "vcs.revision", "22b3443f0c1d2e3f4a5b6c7d8e9f00112233aabb", "vcs.time", "2025-11-29T06:26:00Z", "vcs.modified", "true")},
			"clerk-user-sync (devel) revision 22b3443f0c1d (modified, 2025-11-29T06:26:00Z) go1.26.8"},
		{"installed at a tag", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"},
			Settings: vcs("vcs.revision", "abc123", "vcs.modified", "false")},
			"clerk-user-sync v1.2.3 revision abc123 go1.26.8"},
	}
	for _, tt := range tests {
		if got := versionString(tt.info); got != tt.want {
			t.Errorf("%s: versionString = %q; want %q", tt.name, got, tt.want)
		}
	}
}

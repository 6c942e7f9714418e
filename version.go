package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// runVersion prints the version of the binary: the module version ("(devel)" when built from
// a checkout), the VCS revision when the build recorded one, and the Go version.
func runVersion(w io.Writer) error {
	info, _ := debug.ReadBuildInfo()
	_, err := fmt.Fprintln(w, versionString(info))
	return err
}

// versionString formats info (nil when the binary carries no build information) as one line,
// for example "clerk-user-sync (devel) revision 1a2b3c4d5e6f (modified, 2025-01-02T03:04:05Z) go1.26.8".
func versionString(info *debug.BuildInfo) string {
	version, goVersion := "(devel)", "unknown Go version"
	var revision, vcsTime string
	modified := false
	if info != nil {
		if v := info.Main.Version; v != "" {
			version = v
		}
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				vcsTime = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	var b strings.Builder
	b.WriteString("clerk-user-sync " + version)
	if revision == "" {
		b.WriteString(" revision unknown (built without VCS information)")
	} else {
		if len(revision) > 12 {
			revision = revision[:12]
		}
		b.WriteString(" revision " + revision)
		var notes []string
		if modified {
			notes = append(notes, "modified")
		}
		if vcsTime != "" {
			notes = append(notes, vcsTime)
		}
		if len(notes) > 0 {
			b.WriteString(" (" + strings.Join(notes, ", ") + ")")
		}
	}
	b.WriteString(" " + goVersion)
	return b.String()
}

package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

// The commands themselves run from the outside, as the built binary, in e2e/.

// TestBackfillHelp: `backfill --help` (and -h, -help) prints the usage and succeeds, as does
// `send --help`: asking for the usage is not a failure (no "flag: help requested", exit 0).
func TestBackfillHelp(t *testing.T) {
	tests := []struct {
		args      []string
		wantUsage string
	}{
		{[]string{"backfill", "--help"}, "Usage: clerk-user-sync backfill"},
		{[]string{"backfill", "-h"}, "Usage: clerk-user-sync backfill"},
		{[]string{"backfill", "-help"}, "Usage: clerk-user-sync backfill"},
		{[]string{"backfill", "-page-size", "2", "--help"}, "Usage: clerk-user-sync backfill"},
		{[]string{"reconcile", "--help"}, "Usage: clerk-user-sync reconcile"},
		{[]string{"reconcile", "--allow-mass-delete", "-h"}, "Usage: clerk-user-sync reconcile"},
		{[]string{"send", "--help"}, "Usage: clerk-user-sync send"},
		{[]string{"send", "-h"}, "Usage: clerk-user-sync send"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			// No settings at all: the usage needs none.
			err := run(t.Context(), append([]string{"clerk-user-sync"}, tt.args...), env(nil), &stdout, &stderr)
			if err != nil {
				t.Fatalf("%s = %v; want nil (exit 0)", strings.Join(tt.args, " "), err)
			}
			if !strings.Contains(stderr.String(), tt.wantUsage) {
				t.Errorf("stderr does not show the usage (%q):\n%s", tt.wantUsage, &stderr)
			}
			if strings.Contains(stderr.String(), "help requested") {
				t.Errorf("stderr says %q:\n%s", flag.ErrHelp, &stderr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q; want nothing", &stdout)
			}
		})
	}
}

package e2e

import (
	"context"
	"net/url"
	"strings"
	"testing"
)

// The small commands read their settings through the same reader as the service: send signs
// with a secret of the list the service verifies with, and send and healthcheck find the
// service at HOST and PORT.

func TestSendAndHealthcheckShareTheServiceSettings(t *testing.T) {
	parallel(t)
	eventAPI, accepted := startEventAPI(t)
	// Two secrets, one per line, as a rotation pastes them: the service accepts both.
	secrets := newSecret(t) + "\n" + newSecret(t)
	vars := map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": secrets,
		"INNGEST_DEV":                  eventAPI,
		"DATA_DIR":                     t.TempDir(),
	}
	svc := startService(t, vars)
	u, _ := url.Parse(svc.url)
	vars["PORT"] = u.Port()

	tests := []struct {
		name    string
		args    []string
		change  map[string]string
		wantErr string // "" for success
		wantOut string
	}{
		{"send with the service's secret list", []string{"send", "user.created"}, nil, "", "200 OK"},
		{"send to PORT=0", []string{"send", "user.created"}, map[string]string{"PORT": "0"}, "PORT=0", ""},
		{"send to PORT=0 with -url", []string{"send", "-url", svc.url + "/api/webhooks/clerk", "user.updated"}, map[string]string{"PORT": "0"}, "", "200 OK"},
		{"send without a secret", []string{"send", "user.created"}, map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": ""}, "CLERK_WEBHOOK_SIGNING_SECRET is not set", ""},
		{"send --help", []string{"send", "--help"}, nil, "", ""},
		{"healthcheck", []string{"healthcheck"}, nil, "", "ready"},
		{"healthcheck with HOST=0.0.0.0", []string{"healthcheck"}, map[string]string{"HOST": "0.0.0.0"}, "", "ready"},
		{"healthcheck on PORT=0", []string{"healthcheck"}, map[string]string{"PORT": "0"}, "PORT=0", ""},
		{"healthcheck with a bad PORT", []string{"healthcheck"}, map[string]string{"PORT": "http"}, "PORT", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := map[string]string{}
			for k, val := range vars {
				v[k] = val
			}
			for k, val := range tt.change {
				v[k] = val
			}
			stdout, _, err := command(context.Background(), t, v, tt.args...)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("%s = %v; want error containing %q", strings.Join(tt.args, " "), err, tt.wantErr)
			}
			if !strings.Contains(stdout, tt.wantOut) {
				t.Errorf("%s printed %q; want it to contain %q", strings.Join(tt.args, " "), stdout, tt.wantOut)
			}
		})
	}
	if got := accepted.Load(); got != 2 {
		t.Errorf("events forwarded from send = %d; want 2", got)
	}
}

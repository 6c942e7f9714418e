package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// The service itself, started, is tested from the outside in e2e/; these are the tests of
// run's own behaviour: the settings it refuses, --help, the configuration it reads.

// newSecret returns a fresh Svix signing secret.
func newSecret(t testing.TB) string {
	t.Helper()
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestRunRefusesToStart(t *testing.T) {
	secret := newSecret(t)
	base := map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": secret,
		"INNGEST_DEV":                  "1",
	}
	tests := []struct {
		name    string
		change  map[string]string
		wantErr string
	}{
		{"no signing secret", map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": ""}, "Clerk Dashboard -> Webhooks"},
		{"secret without whsec_", map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": "sk_test_abc"}, "whsec_"},
		{"secret not base64", map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": "whsec_not*base64!"}, "base64"},
		{"second secret malformed", map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": secret + ",whsec_%%%"}, "secret 2 of 2"},
		{"no Inngest mode", map[string]string{"INNGEST_DEV": ""}, "INNGEST_DEV=1"},
		{"cloud without signing key", map[string]string{"INNGEST_DEV": "", "INNGEST_EVENT_KEY": "k"}, "INNGEST_SIGNING_KEY missing"},
		{"cloud without event key", map[string]string{"INNGEST_DEV": "", "INNGEST_SIGNING_KEY": "signkey-prod-0a1b"}, "INNGEST_EVENT_KEY missing"},
		{"dev URL malformed", map[string]string{"INNGEST_DEV": "localhost:8288"}, "neither 1 nor a URL"},
		{"bad port", map[string]string{"PORT": "http"}, "PORT"},
		{"bad MongoDB URI", map[string]string{"MONGODB_URI": "postgres://x"}, "mongodb://"},
		{"database in the URI and another in MONGODB_DATABASE", map[string]string{"MONGODB_URI": "mongodb://localhost:1/prod", "MONGODB_DATABASE": "app"}, "unset MONGODB_DATABASE"},
		{"dev mode with an event key", map[string]string{"INNGEST_EVENT_KEY": "evtkey"}, "INNGEST_DEV is set together with INNGEST_EVENT_KEY"},
		{"dev mode with a signing key", map[string]string{"INNGEST_SIGNING_KEY": "signkey-prod-0123"}, "INNGEST_DEV is set together with INNGEST_SIGNING_KEY"},
		{"dev mode with the fallback key", map[string]string{"INNGEST_SIGNING_KEY_FALLBACK": "signkey-prod-0123"}, "unset the keys"},
		{"cloud mode without MONGODB_URI", map[string]string{"INNGEST_DEV": "", "INNGEST_EVENT_KEY": "k", "INNGEST_SIGNING_KEY": "signkey-prod-0a1b", "INNGEST_SERVE_URL": "https://sync.example.com/api/inngest"}, "MONGODB_URI is not set"},
		{"cloud mode with DATA_DIR only", map[string]string{"INNGEST_DEV": "", "INNGEST_EVENT_KEY": "k", "INNGEST_SIGNING_KEY": "signkey-prod-0a1b", "INNGEST_SERVE_URL": "https://sync.example.com/api/inngest", "DATA_DIR": "/tmp/x"}, "`embedded`"},
		{"cloud mode without a serve URL", map[string]string{"INNGEST_DEV": "", "INNGEST_EVENT_KEY": "k", "INNGEST_SIGNING_KEY": "signkey-prod-0a1b", "MONGODB_URI": "mongodb://127.0.0.1:1/app"}, "INNGEST_SERVE_URL is not set"},
		{"serve URL not a URL", map[string]string{"INNGEST_SERVE_URL": "sync.example.com/api/inngest"}, "INNGEST_SERVE_URL=\"sync.example.com/api/inngest\" is not a URL"},
		{"serve URL with a query", map[string]string{"INNGEST_SERVE_URL": "https://sync.example.com/api/inngest?x=1"}, "no user, query or fragment"},
		{"signing key not hex", map[string]string{"INNGEST_DEV": "", "INNGEST_EVENT_KEY": "k", "INNGEST_SIGNING_KEY": "signkey-prod-not-hex", "INNGEST_SERVE_URL": "https://sync.example.com/api/inngest", "MONGODB_URI": "mongodb://127.0.0.1:1/app"}, "INNGEST_SIGNING_KEY is not an Inngest signing key"},
		{"signing key of odd length", map[string]string{"INNGEST_DEV": "", "INNGEST_EVENT_KEY": "k", "INNGEST_SIGNING_KEY": "signkey-prod-abc", "INNGEST_SERVE_URL": "https://sync.example.com/api/inngest", "MONGODB_URI": "mongodb://127.0.0.1:1/app"}, "INNGEST_SIGNING_KEY is not an Inngest signing key"},
		{"fallback key malformed", map[string]string{"INNGEST_DEV": "", "INNGEST_EVENT_KEY": "k", "INNGEST_SIGNING_KEY": "signkey-prod-0a1b", "INNGEST_SIGNING_KEY_FALLBACK": "whsec_abc", "INNGEST_SERVE_URL": "https://sync.example.com/api/inngest", "MONGODB_URI": "mongodb://127.0.0.1:1/app"}, "INNGEST_SIGNING_KEY_FALLBACK is not an Inngest signing key"},
		{"schedule with seconds", map[string]string{"RECONCILE_SCHEDULE": "0 0 3 * * *"}, "RECONCILE_SCHEDULE=\"0 0 3 * * *\" is not a schedule Inngest accepts"},
		{"schedule minute out of range", map[string]string{"RECONCILE_SCHEDULE": "61 * * * *"}, "is not a schedule Inngest accepts"},
		{"schedule descriptor", map[string]string{"RECONCILE_SCHEDULE": "@daily"}, "is not a schedule Inngest accepts"},
		{"schedule unknown time zone", map[string]string{"RECONCILE_SCHEDULE": "TZ=Mars/Olympus 0 3 * * *"}, "is not a schedule Inngest accepts"},
		{"bad event size", map[string]string{"INNGEST_MAX_EVENT_BYTES": "lots"}, "INNGEST_MAX_EVENT_BYTES"},
		{"event size too small", map[string]string{"INNGEST_MAX_EVENT_BYTES": "10"}, "INNGEST_MAX_EVENT_BYTES"},
		{"bad metrics address", map[string]string{"METRICS_ADDR": "9090"}, "METRICS_ADDR"},
		{"forwarded event type malformed", map[string]string{"CLERK_FORWARD_EVENTS": "session.created,sessions"}, `CLERK_FORWARD_EVENTS: "sessions" is not a Clerk event type`},
		{"forwarded event named as in Inngest", map[string]string{"CLERK_FORWARD_EVENTS": "clerk/email.created"}, "without clerk/"},
		{"sync token without Clerk key", map[string]string{"SYNC_API_TOKEN": strings.Repeat("x", 32)}, "SYNC_API_TOKEN needs CLERK_SECRET_KEY"},
		{"sync token too short", map[string]string{"SYNC_API_TOKEN": "short", "CLERK_SECRET_KEY": "sk_test_x"}, "at least 32 characters"},
		{"bad log level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"mass-delete override still set", map[string]string{"RECONCILE_ALLOW_MASS_DELETE": "1"}, "Unset it, and let one run through with `clerk-user-sync reconcile --allow-mass-delete`"},
		{"Connect with a serve URL", map[string]string{"INNGEST_CONNECT": "1", "INNGEST_SERVE_URL": "https://sync.example.com/api/inngest"}, "INNGEST_SERVE_URL is set together with INNGEST_CONNECT"},
		{"Connect not yes or no", map[string]string{"INNGEST_CONNECT": "gateway"}, `INNGEST_CONNECT="gateway" must be 1 or unset`},
		{"instance id without Connect", map[string]string{"INNGEST_INSTANCE_ID": "sync-0"}, "INNGEST_INSTANCE_ID is set without INNGEST_CONNECT"},
		{"unknown command", map[string]string{"_args": "serve-forever"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range base {
				vars[k] = v
			}
			for k, v := range tt.change {
				vars[k] = v
			}
			args := []string{"clerk-user-sync"}
			if a := vars["_args"]; a != "" {
				args = append(args, a)
			}
			if vars["DATA_DIR"] == "" {
				vars["DATA_DIR"] = t.TempDir()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := run(ctx, args, env(vars), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run = %v; want an error containing %q", err, tt.wantErr)
			}
			if strings.Contains(stdout.String(), "listening") {
				t.Errorf("run started listening despite %s", tt.name)
			}
		})
	}
}

func TestHelpListsSettings(t *testing.T) {
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"clerk-user-sync", "--help"}, env(nil), &stdout, io.Discard); err != nil {
		t.Fatalf("run --help = %v; want nil", err)
	}
	for _, s := range settingsHelp() {
		if !strings.Contains(stdout.String(), s.name) {
			t.Errorf("--help does not list %s", s.name)
		}
	}
}

func TestReadConfigDatabase(t *testing.T) {
	tests := []struct {
		uri, dbEnv, want string
		wantHosts        string
		wantErr          string // "" for success
	}{
		{"", "", "app", "", ""},
		{"", "mine", "mine", "", ""},
		{"embedded", "mine", "mine", "", ""},
		{"mongodb://localhost:27017", "", "app", "localhost:27017", ""},
		{"mongodb://localhost:27017/", "mine", "mine", "localhost:27017", ""},
		{"mongodb://u:p@h1,h2/prod?replicaSet=rs0", "", "prod", "h1,h2", ""},
		{"mongodb://u:p@h1,h2/prod?replicaSet=rs0", "prod", "prod", "h1,h2", ""},
		{"mongodb://u:p@h1,h2/prod?replicaSet=rs0", "mine", "", "", `unset MONGODB_DATABASE to use "prod", or take /prod out of MONGODB_URI to use "mine"`},
		{"mongodb+srv://u:p@cluster0.example.net/prod", "staging", "", "", "MONGODB_URI names the database \"prod\""},
	}
	for _, tt := range tests {
		cfg, err := readConfig(env(map[string]string{
			"CLERK_WEBHOOK_SIGNING_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			"INNGEST_DEV":                  "1",
			"MONGODB_URI":                  tt.uri,
			"MONGODB_DATABASE":             tt.dbEnv,
		}))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("readConfig(MONGODB_URI=%q MONGODB_DATABASE=%q) = %v; want an error containing %q", tt.uri, tt.dbEnv, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("readConfig(MONGODB_URI=%q) = %v", tt.uri, err)
		}
		if got := cfg.db.database; got != tt.want {
			t.Errorf("database for MONGODB_URI=%q MONGODB_DATABASE=%q = %q; want %q", tt.uri, tt.dbEnv, got, tt.want)
		}
		if got := cfg.db.mongoHosts; got != tt.wantHosts {
			t.Errorf("hosts logged for MONGODB_URI=%q = %q; want %q", tt.uri, got, tt.wantHosts)
		}
	}
}

// TestReadConfigConnect: Connect mode needs no INNGEST_SERVE_URL, in dev mode or with the keys,
// and takes the worker's id from INNGEST_INSTANCE_ID.
func TestReadConfigConnect(t *testing.T) {
	cloud := map[string]string{
		"CLERK_WEBHOOK_SIGNING_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"INNGEST_EVENT_KEY":            "k",
		"INNGEST_SIGNING_KEY":          "signkey-prod-0a1b",
		"MONGODB_URI":                  "mongodb://127.0.0.1:1/app",
		"INNGEST_CONNECT":              "1",
	}
	tests := []struct {
		name   string
		change map[string]string
		wantID string
	}{
		{"cloud", nil, ""},
		{"cloud with an instance id", map[string]string{"INNGEST_INSTANCE_ID": "sync-0"}, "sync-0"},
		{"dev", map[string]string{"INNGEST_EVENT_KEY": "", "INNGEST_SIGNING_KEY": "", "INNGEST_DEV": "1", "MONGODB_URI": ""}, ""},
	}
	for _, tt := range tests {
		vars := map[string]string{}
		for k, v := range cloud {
			vars[k] = v
		}
		for k, v := range tt.change {
			vars[k] = v
		}
		cfg, err := readConfig(env(vars))
		if err != nil {
			t.Errorf("%s: readConfig = %v; want nil", tt.name, err)
			continue
		}
		if !cfg.inngest.connect || cfg.inngest.serveURL != nil || cfg.inngest.instanceID != tt.wantID {
			t.Errorf("%s: connect, serve URL, instance id = %v, %v, %q; want true, <nil>, %q", tt.name, cfg.inngest.connect, cfg.inngest.serveURL, cfg.inngest.instanceID, tt.wantID)
		}
	}
}

func TestConnectInstanceID(t *testing.T) {
	host := func(name string, err error) func() (string, error) {
		return func() (string, error) { return name, err }
	}
	tests := []struct {
		name     string
		set      string
		hostname func() (string, error)
		want     string
		wantErr  string
	}{
		{"set", "sync-0", host("vm", nil), "sync-0", ""},
		{"the hostname", "", host("clerk-user-sync-7d9f-x2x4", nil), "clerk-user-sync-7d9f-x2x4", ""},
		{"no hostname", "", host("", errors.New("uname failed")), "", "set INNGEST_INSTANCE_ID"},
		{"empty hostname", "", host("", nil), "", "set INNGEST_INSTANCE_ID"},
	}
	for _, tt := range tests {
		got, err := connectInstanceID(inngestConfig{connect: true, instanceID: tt.set}, tt.hostname)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: connectInstanceID = %q, %v; want an error containing %q", tt.name, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: connectInstanceID = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

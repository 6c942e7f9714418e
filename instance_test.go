package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/store/embedded"
)

// TestForgetClerkInstance: a backfill refused for another instance than the recorded one goes
// through once `forget-clerk-instance` has deleted the record, on the database the settings
// name; forgetting twice says there is nothing left to forget.
func TestForgetClerkInstance(t *testing.T) {
	_, uri := startEmbeddedDB(t)
	st := openTestStore(t, uri, "forget")
	if _, err := st.RecordClerkInstance(context.Background(), "ins_previous", time.Now()); err != nil {
		t.Fatal(err)
	}
	fake := clerkfake.New(t, backfillKey, clerkUsers(3)...)
	vars := map[string]string{"MONGODB_URI": uri + "/forget", "CLERK_SECRET_KEY": backfillKey, "CLERK_API_URL": fake.URL}
	if _, _, err := runBackfillCmd(t.Context(), vars); !errors.Is(err, reconcile.ErrWrongInstance) || !strings.Contains(err.Error(), "forget-clerk-instance") {
		t.Fatalf("backfill with another instance recorded = %v; want ErrWrongInstance naming forget-clerk-instance", err)
	}

	forget := func() string {
		t.Helper()
		var stdout bytes.Buffer
		if err := run(t.Context(), []string{"clerk-user-sync", "forget-clerk-instance"}, env(vars), &stdout, &bytes.Buffer{}); err != nil {
			t.Fatalf("forget-clerk-instance = %v", err)
		}
		return stdout.String()
	}
	if out := forget(); !strings.Contains(out, "forgot Clerk instance ins_previous") {
		t.Errorf("forget-clerk-instance said %q; want it to name the forgotten instance ins_previous", out)
	}
	if out := forget(); !strings.Contains(out, "nothing to forget") {
		t.Errorf("second forget-clerk-instance said %q; want nothing to forget", out)
	}
	if _, stderr, err := runBackfillCmd(t.Context(), vars); err != nil {
		t.Fatalf("backfill after forgetting = %v; stderr:\n%s", err, stderr)
	}
	if got, err := st.ClerkInstance(context.Background()); got != clerkfake.DefaultInstance || err != nil {
		t.Errorf("recorded instance after the backfill = %q, %v; want the key's, %s", got, err, clerkfake.DefaultInstance)
	}
	if err := run(t.Context(), []string{"clerk-user-sync", "forget-clerk-instance", "now"}, env(vars), &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("forget-clerk-instance with an argument = nil; want an error")
	}
}

// TestForgetClerkInstanceRefusesARunningServicesDataDir: forget-clerk-instance (or backfill)
// on the embedded database of a running service is refused at once, naming DATA_DIR and saying
// to stop the service first, and the service goes on serving; once the service has stopped,
// the same command goes through.
func TestForgetClerkInstanceRefusesARunningServicesDataDir(t *testing.T) {
	dataDir := t.TempDir()
	vars := map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_DEV":                  "http://127.0.0.1:1",
		"DATA_DIR":                     dataDir,
	}
	svc, stop, done := startRunControlled(t, vars)
	defer stop()
	forget := func() (string, error) {
		var stdout bytes.Buffer
		err := run(t.Context(), []string{"clerk-user-sync", "forget-clerk-instance"}, env(vars), &stdout, &bytes.Buffer{})
		return stdout.String(), err
	}
	for _, cmd := range []string{"forget-clerk-instance", "backfill"} {
		start := time.Now()
		var err error
		if cmd == "backfill" {
			_, _, err = runBackfillCmd(t.Context(), map[string]string{"INNGEST_DEV": "1", "DATA_DIR": dataDir, "CLERK_SECRET_KEY": backfillKey, "CLERK_API_URL": "http://127.0.0.1:1"})
		} else {
			_, err = forget()
		}
		if !errors.Is(err, embedded.ErrDataDirInUse) {
			t.Fatalf("%s on a running service's DATA_DIR = %v; want an error wrapping embedded.ErrDataDirInUse", cmd, err)
		}
		for _, want := range []string{"DATA_DIR=" + dataDir, "stop the service"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s error %q does not say %q", cmd, err, want)
			}
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s took %v to refuse; want at once", cmd, took)
		}
	}
	resp, err := http.Get(svc.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz after the refused commands = %d; want 200", resp.StatusCode)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v after shutdown", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return within 20s of its context ending")
	}
	if out, err := forget(); err != nil || !strings.Contains(out, "nothing to forget") {
		t.Errorf("forget-clerk-instance after the service stopped = %q, %v; want nothing to forget", out, err)
	}
}

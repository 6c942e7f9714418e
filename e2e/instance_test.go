package e2e

import (
	"context"
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
	parallel(t)
	db := newDatabase(t, "forget")
	st := db.store
	if _, err := st.RecordClerkInstance(context.Background(), "ins_previous", time.Now()); err != nil {
		t.Fatal(err)
	}
	fake := clerkfake.New(t, backfillKey, clerkUsers(3)...)
	vars := map[string]string{"MONGODB_URI": db.uri, "CLERK_SECRET_KEY": backfillKey, "CLERK_API_URL": fake.URL}
	if _, _, err := runBackfillCmd(t.Context(), t, vars); !failedWith(err, reconcile.ErrWrongInstance) || !strings.Contains(err.Error(), "forget-clerk-instance") {
		t.Fatalf("backfill with another instance recorded = %v; want ErrWrongInstance naming forget-clerk-instance", err)
	}

	forget := func() string {
		t.Helper()
		stdout, _, err := command(t.Context(), t, vars, "forget-clerk-instance")
		if err != nil {
			t.Fatalf("forget-clerk-instance = %v", err)
		}
		return stdout
	}
	if out := forget(); !strings.Contains(out, "forgot Clerk instance ins_previous") {
		t.Errorf("forget-clerk-instance said %q; want it to name the forgotten instance ins_previous", out)
	}
	if out := forget(); !strings.Contains(out, "nothing to forget") {
		t.Errorf("second forget-clerk-instance said %q; want nothing to forget", out)
	}
	if _, stderr, err := runBackfillCmd(t.Context(), t, vars); err != nil {
		t.Fatalf("backfill after forgetting = %v; stderr:\n%s", err, stderr)
	}
	if got, err := st.ClerkInstance(context.Background()); got != clerkfake.DefaultInstance || err != nil {
		t.Errorf("recorded instance after the backfill = %q, %v; want the key's, %s", got, err, clerkfake.DefaultInstance)
	}
	if _, _, err := command(t.Context(), t, vars, "forget-clerk-instance", "now"); err == nil {
		t.Error("forget-clerk-instance with an argument = nil; want an error")
	}
}

// TestForgetClerkInstanceRefusesARunningServicesDataDir: forget-clerk-instance (or backfill)
// on the embedded database of a running service is refused at once, naming DATA_DIR and saying
// to stop the service first, and the service goes on serving; once the service has stopped,
// the same command goes through.
func TestForgetClerkInstanceRefusesARunningServicesDataDir(t *testing.T) {
	parallel(t)
	dataDir := t.TempDir()
	vars := map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_DEV":                  "http://127.0.0.1:1",
		"DATA_DIR":                     dataDir,
	}
	svc := launchService(t, vars)
	forget := func() (string, error) {
		stdout, _, err := command(t.Context(), t, vars, "forget-clerk-instance")
		return stdout, err
	}
	for _, cmd := range []string{"forget-clerk-instance", "backfill"} {
		start := time.Now()
		var err error
		if cmd == "backfill" {
			_, _, err = runBackfillCmd(t.Context(), t, map[string]string{"INNGEST_DEV": "1", "DATA_DIR": dataDir, "CLERK_SECRET_KEY": backfillKey, "CLERK_API_URL": "http://127.0.0.1:1"})
		} else {
			_, err = forget()
		}
		if !failedWith(err, embedded.ErrDataDirInUse) {
			t.Fatalf("%s on a running service's DATA_DIR = %v; want the error of embedded.ErrDataDirInUse", cmd, err)
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

	if exited, err := svc.stop(20 * time.Second); !exited || err != nil {
		t.Fatalf("the service after SIGTERM: exited %v, %v; want exit status 0 within 20s", exited, err)
	}
	if out, err := forget(); err != nil || !strings.Contains(out, "nothing to forget") {
		t.Errorf("forget-clerk-instance after the service stopped = %q, %v; want nothing to forget", out, err)
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
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

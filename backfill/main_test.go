package backfill_test

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"clerksync/backfill"
	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
	"clerksync/store"
	"clerksync/store/storetest"
)

// What the root wires in satisfies what the package declares it needs.
var (
	_ backfill.Store  = (*store.Store)(nil)
	_ backfill.Lister = (*clerk.API)(nil)
)

// srv is the embedded FerretDB of this package's tests.
var srv *storetest.Server

func TestMain(m *testing.M) { os.Exit(storetest.Main(m, &srv)) }

// openStore opens a fresh database for one test.
func openStore(t testing.TB) *store.Store { return srv.Open(t, store.WritesAuto) }

// testLogger writes to the test's output (shown with -v or when the test fails).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// seed writes users to st as the webhook functions would.
func seed(t *testing.T, st *store.Store, users ...clerkfake.User) {
	t.Helper()
	if err := clerkfake.Seed(context.Background(), st, users...); err != nil {
		t.Fatal(err)
	}
}

// get reads a stored user, failing the test when it cannot.
func get(t *testing.T, st *store.Store, id string) store.User {
	t.Helper()
	u, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s) = %v", id, err)
	}
	return u
}

func ptr[T any](v T) *T { return &v }

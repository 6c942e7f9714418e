package reconcile_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
	"clerksync/store"
	"clerksync/store/storetest"
)

// srv is the embedded FerretDB of this package's tests.
var srv *storetest.Server

// testKey is the secret key the Clerk stand-in expects.
const testKey = "sk_test_reconcile"

func TestMain(m *testing.M) { os.Exit(storetest.Main(m, &srv)) }

// openStore opens a fresh database for one test.
func openStore(t testing.TB) *store.Store { return srv.Open(t, store.WritesAuto) }

// testLogger writes to the test's output (shown with -v or when the test fails).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// newAPI returns the real Clerk client, pointed at the stand-in.
func newAPI(t *testing.T, fake *clerkfake.Server, cfg clerk.APIConfig) *clerk.API {
	cfg.SecretKey, cfg.APIURL = fake.Key, fake.URL
	return clerk.NewAPI(cfg, testLogger(t))
}

// fakeUsers returns n Clerk users user_01, user_02, ... created in that order, all updated at
// updatedAt.
func fakeUsers(n int, updatedAt int64) []clerkfake.User {
	users := make([]clerkfake.User, n)
	for i := range users {
		users[i] = clerkfake.NewUser(fmt.Sprintf("user_%02d", i+1), "First", updatedAt)
	}
	return users
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

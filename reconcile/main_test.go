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
		users[i] = fakeUser(fmt.Sprintf("user_%02d", i+1), "First", updatedAt)
	}
	return users
}

// fakeUser returns a Clerk user with the given id, first name and updated_at.
func fakeUser(id, first string, updatedAt int64) clerkfake.User {
	return clerkfake.User{
		ID:        id,
		FirstName: first,
		LastName:  "Doe",
		Email:     id + "@example.com",
		ImageURL:  "https://img.clerk.com/" + id,
		CreatedAt: 500,
		UpdatedAt: updatedAt,
	}
}

// asClerk is the Clerk user data a webhook would carry for u.
func asClerk(u clerkfake.User) clerk.User {
	c := clerk.User{ID: u.ID, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
	for _, p := range []struct {
		dst **string
		v   string
	}{{&c.FirstName, u.FirstName}, {&c.LastName, u.LastName}, {&c.Username, u.Username}, {&c.ImageURL, u.ImageURL}} {
		if p.v != "" {
			v := p.v
			*p.dst = &v
		}
	}
	if u.Email != "" {
		id := "idn_" + u.ID
		c.PrimaryEmailAddressID = &id
		c.EmailAddresses = []clerk.EmailAddress{{ID: id, EmailAddress: u.Email}}
	}
	return c
}

// seed writes users to st as the webhook functions would.
func seed(t *testing.T, st *store.Store, users ...clerkfake.User) {
	t.Helper()
	for _, u := range users {
		su, err := asClerk(u).StoreUser(0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.UpsertUser(context.Background(), su); err != nil {
			t.Fatalf("seed %s: %v", u.ID, err)
		}
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

package backfill_test

import (
	"bytes"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"clerksync/backfill"
	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
	"clerksync/store"
)

// The Clerk users of the repair tests, at their current versions: user_a's Clerk username is x,
// user_b renamed from x to y.
var (
	repairA = clerkfake.User{ID: "user_a", FirstName: "Ada", LastName: "Doe", Username: "x", Email: "user_a@example.com",
		ImageURL: "https://img.clerk.com/user_a", CreatedAt: 1_600_000_000_000, UpdatedAt: 1_700_000_000_000}
	repairB = clerkfake.User{ID: "user_b", FirstName: "Bob", LastName: "Doe", Username: "y", Email: "user_b@example.com",
		ImageURL: "https://img.clerk.com/user_b", CreatedAt: 1_600_000_000_000, UpdatedAt: 1_650_000_000_060}
)

// storeEarlierVersion returns a store, in the given write mode, holding repairA as an earlier
// version of the service stored it (its Clerk username as username, no clerk_username), and
// displaced from x by user_b's stale claim of x, which user_b's rename to y then freed.
func storeEarlierVersion(t *testing.T, mode store.WriteMode) *store.Store {
	t.Helper()
	st := srv.Open(t, mode)
	old, err := repairA.Clerk().StoreUser(0)
	if err != nil {
		t.Fatal(err)
	}
	old.Username, old.ClerkUsername = "x", ""
	if _, err := st.UpsertUser(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	stale := repairB
	stale.Username, stale.UpdatedAt = "x", 1_650_000_000_050
	seed(t, st, stale, repairB)
	if u := get(t, st, "user_a"); u.Username == "x" {
		t.Fatalf("user_a = %+v before the backfill; want it displaced by the stale claim", u)
	}
	return st
}

// checkRepaired fails unless user_a holds x again, as its Clerk username, at Clerk's
// updated_at, with the picture repairA has.
func checkRepaired(t *testing.T, st *store.Store) {
	t.Helper()
	u := get(t, st, "user_a")
	if u.Username != "x" || u.ClerkUsername != "x" || u.UpdatedAt != repairA.UpdatedAt || u.ProfilePicture != repairA.ImageURL {
		t.Errorf("user_a after the backfill = %+v; want username and clerk_username x, updated_at %d, picture kept", u, repairA.UpdatedAt)
	}
	if u := get(t, st, "user_b"); u.Username != "y" {
		t.Errorf("user_b after the backfill = %+v; want username y", u)
	}
}

// TestBackfillRepairsEarlierVersionUser: a backfill, from the API or from an export, reads
// the same version of user_a as the one stored (the same updated_at) and gives it back the
// Clerk username it lost to a stale claim; run again, it changes nothing. In both write modes.
func TestBackfillRepairsEarlierVersionUser(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode store.WriteMode
	}{{"conditional", store.WritesConditional}, {"by-id", store.WritesByID}} {
		t.Run(mode.name+"/api", func(t *testing.T) {
			st := storeEarlierVersion(t, mode.mode)
			api := fakeAPI(t, clerkfake.New(t, "sk_test_repair", repairA, repairB))
			got, err := backfill.FromAPI(t.Context(), st, api, 500, backfill.NewProgress(&bytes.Buffer{}, 500))
			if want := (backfill.Tally{Updated: 1, Unchanged: 1, Organizations: &backfill.Tally{}, Memberships: &backfill.Tally{}}); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("FromAPI = %+v, %v; want %+v", got, err, want)
			}
			checkRepaired(t, st)
			again, err := backfill.FromAPI(t.Context(), st, api, 500, backfill.NewProgress(&bytes.Buffer{}, 500))
			if want := (backfill.Tally{Unchanged: 2, Organizations: &backfill.Tally{}, Memberships: &backfill.Tally{}}); err != nil || !reflect.DeepEqual(again, want) {
				t.Errorf("FromAPI again = %+v, %v; want %+v", again, err, want)
			}
		})
		t.Run(mode.name+"/export", func(t *testing.T) {
			st := storeEarlierVersion(t, mode.mode)
			const csv = "id,first_name,last_name,username,primary_email_address,created_at,updated_at\n" +
				"user_a,Ada,Doe,x,user_a@example.com,1600000000000,1700000000000\n"
			rows, err := clerk.ReadExport(strings.NewReader(csv))
			if err != nil {
				t.Fatal(err)
			}
			logger := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
			got, err := backfill.FromExport(t.Context(), st, rows, backfill.NewProgress(&bytes.Buffer{}, 500), logger)
			if want := (backfill.Tally{Updated: 1}); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("FromExport = %+v, %v; want %+v", got, err, want)
			}
			checkRepaired(t, st)
			again, err := backfill.FromExport(t.Context(), st, rows, backfill.NewProgress(&bytes.Buffer{}, 500), logger)
			if want := (backfill.Tally{Unchanged: 1}); err != nil || !reflect.DeepEqual(again, want) {
				t.Errorf("FromExport again = %+v, %v; want %+v", again, err, want)
			}
		})
	}
}

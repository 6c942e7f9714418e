package reconcile_test

import (
	"testing"

	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/store"
)

// TestReconcileRepairsEarlierVersionUser: a user stored by an earlier version of the service
// (its Clerk username stored as username, no clerk_username) lost the username to a stale
// claim that was renamed since; reconciliation, reading the same version of the user from
// Clerk (the same updated_at), gives it its username back. A second run changes nothing. In
// both write modes.
func TestReconcileRepairsEarlierVersionUser(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name string
		mode store.WriteMode
	}{{"conditional", store.WritesConditional}, {"by-id", store.WritesByID}} {
		t.Run(mode.name, func(t *testing.T) {
			st := srv.Open(t, mode.mode)
			a := clerkfake.NewUser("user_a", "Ada", 100)
			a.Username, a.CreatedAt = "x", 10
			b := clerkfake.NewUser("user_b", "Bob", 50)
			b.Username = "x"

			// As an earlier version stored user_a: the username, no clerk_username.
			old, err := a.Clerk().StoreUser(0)
			if err != nil {
				t.Fatal(err)
			}
			old.Username, old.ClerkUsername = "x", ""
			if _, err := st.UpsertUser(t.Context(), old); err != nil {
				t.Fatal(err)
			}
			// user_b's stale claim of x (50), then its rename to y (60), as webhooks write them.
			seed(t, st, b)
			b.Username, b.UpdatedAt = "y", 60
			seed(t, st, b)
			if u := get(t, st, "user_a"); u.Username == "x" {
				t.Fatalf("user_a = %+v before the run; want it displaced by the stale claim", u)
			}

			fake := clerkfake.New(t, testKey, a, b)
			r := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 0.1})
			got, err := r.Run(t.Context())
			if want := (reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 2, Updated: 1, Skipped: 1}}); err != nil || got != want {
				t.Errorf("Run = %+v, %v; want %+v", got, err, want)
			}
			if u := get(t, st, "user_a"); u.Username != "x" || u.ClerkUsername != "x" || u.UpdatedAt != 100 {
				t.Errorf("user_a after the run = %+v; want username and clerk_username x, updated_at 100", u)
			}
			if u := get(t, st, "user_b"); u.Username != "y" {
				t.Errorf("user_b after the run = %+v; want username y", u)
			}
			got, err = r.Run(t.Context())
			if want := (reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 2, Skipped: 2}}); err != nil || got != want {
				t.Errorf("second Run = %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

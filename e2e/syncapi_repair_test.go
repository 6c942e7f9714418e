package e2e

import (
	"encoding/json"
	"testing"

	"clerksync/clerk/clerkfake"
	"clerksync/store"
)

// TestSyncRepairsEarlierVersionUser: the on-demand sync writes Clerk's record as a repair, as
// reconciliation does: a user stored by an earlier version of the service (no clerk_username),
// displaced from its Clerk username by a stale claim that was renamed since, gets the username
// back at the same updated_at; asked again, nothing changes.
func TestSyncRepairsEarlierVersionUser(t *testing.T) {
	parallel(t)
	a := clerkfake.NewUser("user_a", "Ada", 100)
	a.Username = "x"
	fake := clerkfake.New(t, "sk_test_repair", a)
	svc, token, users := syncService(t, fake, nil)
	ctx := t.Context()
	old, err := a.Clerk().StoreUser(0)
	if err != nil {
		t.Fatal(err)
	}
	old.Username, old.ClerkUsername = "x", "" // as an earlier version stored it
	if _, err := users.UpsertUser(ctx, old); err != nil {
		t.Fatal(err)
	}
	stale := clerkfake.NewUser("user_b", "Bob", 50)
	stale.Username = "x"
	renamed := stale
	renamed.Username, renamed.UpdatedAt = "y", 60
	if err := clerkfake.Seed(ctx, users, stale, renamed); err != nil {
		t.Fatal(err)
	}

	for _, want := range []store.Outcome{store.Updated, store.Skipped} {
		ans := postSync(t, svc.url, token, "user_a")
		var got syncedUser
		if err := json.Unmarshal([]byte(ans.body), &got); err != nil || ans.status != 200 || got.Outcome != want || got.Username != "x" {
			t.Errorf("POST /api/sync/users/user_a = %d %s; want 200, outcome %q, username x", ans.status, ans.body, want)
		}
	}
	if u, err := users.Get(ctx, "user_a"); err != nil || u.Username != "x" || u.ClerkUsername != "x" {
		t.Errorf("stored user_a = %+v, %v; want username and clerk_username x", u, err)
	}
}

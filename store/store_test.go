package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"clerksync/store"
)

func ptr(s string) *string { return &s }

func TestUpsertGuards(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testUpsertGuards(t, openStoreMode(t, m.mode)) })
	}
}

func testUpsertGuards(t *testing.T, s *store.Store) {
	ctx := context.Background()
	v1 := store.User{ID: "user_1", Email: ptr("a@x.org"), FullName: "A One", Username: "a", CreatedAt: 100, UpdatedAt: 100}
	v2 := v1
	v2.FullName, v2.UpdatedAt = "A Two", 200

	steps := []struct {
		name  string
		u     store.User
		want  store.Outcome
		name2 string
	}{
		{"first create", v1, store.Inserted, "A One"},
		{"replay", v1, store.Skipped, "A One"},
		{"newer", v2, store.Updated, "A Two"},
		{"older after newer", v1, store.Skipped, "A Two"},
		{"newer replay", v2, store.Skipped, "A Two"},
	}
	for _, st := range steps {
		got, err := s.UpsertUser(ctx, st.u)
		if err != nil || got != st.want {
			t.Fatalf("%s: UpsertUser = %q, %v; want %q", st.name, got, err, st.want)
		}
		u, err := s.Get(ctx, "user_1")
		if err != nil || u.FullName != st.name2 {
			t.Fatalf("%s: Get = %+v, %v; want full_name %q", st.name, u, err, st.name2)
		}
	}
	if got, err := s.DeleteUser(ctx, "user_1", 300); err != nil || got != store.Deleted {
		t.Fatalf("DeleteUser = %q, %v; want deleted", got, err)
	}
	if got, err := s.DeleteUser(ctx, "user_1", 400); err != nil || got != store.AlreadyDeleted {
		t.Fatalf("DeleteUser again = %q, %v; want already_deleted", got, err)
	}
	v3 := v1
	v3.UpdatedAt = 999
	if got, err := s.UpsertUser(ctx, v3); err != nil || got != store.Skipped {
		t.Fatalf("UpsertUser after delete = %q, %v; want skipped", got, err)
	}
	u, err := s.Get(ctx, "user_1")
	want := store.User{ID: "user_1", UpdatedAt: 300, Deleted: true, DeletedAt: 300}
	if err != nil || u != want {
		t.Fatalf("Get after delete = %+v, %v; want %+v", u, err, want)
	}
}

func TestConcurrentUsernames(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testConcurrentUsernames(t, openStoreMode(t, m.mode)) })
	}
}

func testConcurrentUsernames(t *testing.T, s *store.Store) {
	ctx := context.Background()
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.UpsertUser(ctx, store.User{ID: fmt.Sprintf("user_%02d", i), Username: "jane", CreatedAt: 1, UpdatedAt: 1})
		}()
	}
	wg.Wait()
	seen := map[string]string{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("UpsertUser(user_%02d) = %v", i, errs[i])
		}
		u, err := s.Get(ctx, fmt.Sprintf("user_%02d", i))
		if err != nil {
			t.Fatal(err)
		}
		if other, ok := seen[u.Username]; ok {
			t.Fatalf("username %q given to %s and %s", u.Username, other, u.ID)
		}
		seen[u.Username] = u.ID
	}
	if _, err := s.Get(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(nobody) = %v; want ErrNotFound", err)
	}
	t.Log(seen)
}

// TestConcurrentWritesForOneUser: an update and a delete, or two updates, of one existing user
// at the same moment end as if applied in updated_at order, in both write modes.
func TestConcurrentWritesForOneUser(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStoreMode(t, m.mode)
			for r := range 30 {
				id := fmt.Sprintf("user_cc%02d", r)
				old := store.User{ID: id, FullName: "Old", Username: id, UpdatedAt: 100}
				if _, err := s.UpsertUser(ctx, old); err != nil {
					t.Fatal(err)
				}
				newer, newest := old, old
				newer.FullName, newer.UpdatedAt = "Newer", 200
				newest.FullName, newest.UpdatedAt = "Newest", 300
				var wg sync.WaitGroup
				errs := make([]error, 3)
				wg.Go(func() { _, errs[0] = s.UpsertUser(ctx, newest) })
				wg.Go(func() { _, errs[1] = s.UpsertUser(ctx, newer) })
				if r%2 == 0 {
					wg.Go(func() { _, errs[2] = s.DeleteUser(ctx, id, 400) })
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Errorf("%s: concurrent write %d = %v", id, i, err)
					}
				}
				got, err := s.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if r%2 == 0 && (!got.Deleted || got.FullName != "" || got.Username != "") {
					t.Errorf("%s after concurrent updates and a delete = %+v; want a tombstone", id, got)
				}
				if r%2 == 1 && (got.Deleted || got.FullName != "Newest" || got.UpdatedAt != 300) {
					t.Errorf("%s after concurrent updates = %+v; want the newest (300)", id, got)
				}
			}
		})
	}
}

// TestSignUpReplays: a sign-up (updated_at close to created_at) that finds its user stored
// already, live, newer or deleted, changes nothing, and one whose derived username is taken
// gets the next; in both write modes (on FerretDB a sign-up inserts before it reads).
func TestSignUpReplays(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStoreMode(t, m.mode)
			// The email's local part is the username's base, as clerk.User.StoreUser derives it.
			signUp := func(id, email string, at int64) store.User {
				return store.User{ID: id, Email: ptr(email), FullName: id, Username: "alice", CreatedAt: 1_000_000, UpdatedAt: at}
			}
			alice1 := store.UsernameCandidate("alice", "user_b", 1)
			steps := []struct {
				name     string
				u        store.User
				want     store.Outcome
				username string
			}{
				{"first sign-up", signUp("user_a", "alice@x.org", 1_000_000), store.Inserted, "alice"},
				{"second alice", signUp("user_b", "alice@y.org", 1_000_000), store.Inserted, alice1},
				{"replay of the second", signUp("user_b", "alice@y.org", 1_000_000), store.Skipped, alice1},
				{"older than stored", signUp("user_b", "bob@y.org", 999_999), store.Skipped, alice1},
				{"update 5 s after sign-up", signUp("user_b", "bob@y.org", 1_005_000), store.Updated, alice1},
			}
			for _, st := range steps {
				got, err := s.UpsertUser(ctx, st.u)
				if err != nil || got != st.want {
					t.Fatalf("%s: UpsertUser = %q, %v; want %q", st.name, got, err, st.want)
				}
				u, err := s.Get(ctx, st.u.ID)
				if err != nil || u.Username != st.username {
					t.Fatalf("%s: Get = %+v, %v; want username %q", st.name, u, err, st.username)
				}
			}
			if got, err := s.DeleteUser(ctx, "user_b", 1_006_000); err != nil || got != store.Deleted {
				t.Fatalf("DeleteUser = %q, %v; want deleted", got, err)
			}
			if got, err := s.UpsertUser(ctx, signUp("user_b", "alice@y.org", 1_000_000)); err != nil || got != store.Skipped {
				t.Fatalf("sign-up after delete: UpsertUser = %q, %v; want skipped", got, err)
			}
			if u, err := s.Get(ctx, "user_b"); err != nil || !u.Deleted || u.Email != nil {
				t.Fatalf("Get after a late sign-up = %+v, %v; want the tombstone", u, err)
			}
		})
	}
}

// TestEmbeddedWriteMode: on the embedded FerretDB (whose databases storetest opens as the
// service does, with embedded.Server.Open), WritesAuto picks the by-id writes, and an explicit
// mode is kept.
func TestEmbeddedWriteMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode store.WriteMode
		want string
	}{{store.WritesAuto, "by-id"}, {store.WritesConditional, "conditional"}, {store.WritesByID, "by-id"}} {
		if got := store.WriteStrategy(openStoreMode(t, tc.mode)); got != tc.want {
			t.Errorf("open in mode %d: writes %q; want %q", tc.mode, got, tc.want)
		}
	}
}

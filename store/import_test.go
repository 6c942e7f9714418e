package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"clerksync/store"
)

// TestInsertNewUsers: InsertNewUsers stores each new user as UpsertUser would (the same
// document, as Get reads it), and leaves every stored document alone: a newer live user, a
// tombstone, a username another user holds, an id given twice. Those come back as not
// inserted, in the order given.
func TestInsertNewUsers(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, ref := openStoreMode(t, m.mode), openStoreMode(t, m.mode)
			user := func(i int, clerkName string, at int64) store.User {
				return store.User{ID: fmt.Sprintf("user_imp%02d", i), Email: ptr(fmt.Sprintf("imp%d@example.org", i)),
					FullName: fmt.Sprintf("Imp %d", i), Username: fmt.Sprintf("imp%d", i), ClerkUsername: clerkName,
					ProfilePicture: "https://img.example.org/p.png", CreatedAt: at, UpdatedAt: at}
			}
			newer := user(1, "one", 500)
			if _, err := s.UpsertUser(ctx, newer); err != nil {
				t.Fatal(err)
			}
			if _, err := s.UpsertUser(ctx, user(2, "", 100)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.DeleteUser(ctx, "user_imp02", 200); err != nil {
				t.Fatal(err)
			}
			holder := user(3, "taken", 100)
			if _, err := s.UpsertUser(ctx, holder); err != nil {
				t.Fatal(err)
			}
			batch := []store.User{
				user(1, "one", 100),  // older than the stored user
				user(4, "four", 100), // new, with a Clerk username
				user(2, "", 300),     // deleted
				user(5, "taken", 100),
				user(6, "", 100), // new, a derived username
				user(4, "four", 100),
			}
			got, err := s.InsertNewUsers(ctx, batch)
			if want := []string{"user_imp01", "user_imp02", "user_imp05", "user_imp04"}; err != nil || !slices.Equal(got, want) {
				t.Fatalf("InsertNewUsers = %q, %v; want %q", got, err, want)
			}
			for _, u := range []store.User{user(4, "four", 100), user(6, "", 100)} {
				if _, err := ref.UpsertUser(ctx, u); err != nil {
					t.Fatal(err)
				}
				got, err := s.Get(ctx, u.ID)
				want, _ := ref.Get(ctx, u.ID)
				if err == nil && got.Email != nil && want.Email != nil && *got.Email == *want.Email {
					got.Email, want.Email = nil, nil
				}
				if err != nil || got != want {
					t.Errorf("Get(%s) after InsertNewUsers = %+v, %v; want %+v (as UpsertUser stores it)", u.ID, got, err, want)
				}
			}
			for _, u := range []store.User{newer, holder} {
				if got, err := s.Get(ctx, u.ID); err != nil || got.FullName != u.FullName || got.UpdatedAt != u.UpdatedAt || got.Username != u.ClerkUsername {
					t.Errorf("Get(%s) after InsertNewUsers = %+v, %v; want it unchanged", u.ID, got, err)
				}
			}
			if got, err := s.Get(ctx, "user_imp02"); err != nil || !got.Deleted {
				t.Errorf("Get(user_imp02) after InsertNewUsers = %+v, %v; want the tombstone", got, err)
			}
			if _, err := s.Get(ctx, "user_imp05"); err == nil {
				t.Errorf("Get(user_imp05) found a user; want none (its username is another's)")
			}
			if _, err := s.InsertNewUsers(ctx, []store.User{{FullName: "no id"}}); err == nil {
				t.Errorf("InsertNewUsers(a user without id) = nil error; want ErrInvalidUser")
			}
		})
	}
}

package store_test

import (
	"reflect"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"clerksync/store"
)

// Repair (User.Repair, set by reconciliation and backfill): a write of Clerk's record also
// applies at an updated_at equal to the stored one when a field the service takes from Clerk
// differs, so that users stored by earlier versions of the service (no clerk_username) get
// their Clerk usernames back. Every test runs in both write modes.

// earlierA is user_a as an earlier version of the service stored it for Clerk's user_a, whose
// Clerk username is "x": the username, and no clerk_username.
func earlierA() bson.D {
	return bson.D{
		{Key: "_id", Value: "user_a"}, {Key: "email", Value: "a@example.org"}, {Key: "full_name", Value: "Ada A"},
		{Key: "profile_picture", Value: "https://img.example/user_a"}, {Key: "username", Value: "x"},
		{Key: "created_at", Value: int64(10)}, {Key: "updated_at", Value: int64(100)},
	}
}

// clerkA is Clerk's record of user_a at updated_at 100, as reconciliation writes it.
func clerkA() store.User {
	email := "a@example.org"
	return store.User{
		ID: "user_a", Email: &email, FullName: "Ada A", ProfilePicture: "https://img.example/user_a",
		Username: "a", ClerkUsername: "x", CreatedAt: 10, UpdatedAt: 100, Repair: true,
	}
}

// TestRepairEarlierVersionUser: the scenario of a user stored before clerk_username existed. A
// stale claim of its username by user_b (updated_at 50) displaces it, as a derived username;
// user_b's rename (60) frees the username; reconciliation's write of Clerk's record of user_a,
// at the same updated_at, gives it its username back. Writing it again changes nothing, and
// an event at the same updated_at repairs nothing.
func TestRepairEarlierVersionUser(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, s *store.Store) {
		if err := store.InsertRaw(t.Context(), s, earlierA()); err != nil {
			t.Fatal(err)
		}
		mustUpsert(t, s, clerkVersion("user_b", "x", "b", 50), store.Inserted)
		checkSuffixed(t, s, "user_a", "x")
		mustUpsert(t, s, clerkVersion("user_b", "y", "b", 60), store.Updated)
		checkHolds(t, s, "user_b", "y")

		event := clerkA()
		event.Repair = false
		mustUpsert(t, s, event, store.Skipped)
		checkSuffixed(t, s, "user_a", "x")

		mustUpsert(t, s, clerkA(), store.Updated)
		a := checkHolds(t, s, "user_a", "x")
		if a.ClerkUsername != "x" || a.UpdatedAt != 100 || a.FullName != "Ada A" || a.CreatedAt != 10 || a.Email == nil || *a.Email != "a@example.org" {
			t.Errorf("repaired user_a = %+v; want Clerk's record, clerk_username x, updated_at 100", a)
		}
		mustUpsert(t, s, clerkA(), store.Skipped)
	})
}

// TestRepairReclaimsFromStaleClaim: repaired while the stale claim still holds the username,
// the user takes it back (its record is the newer), and the stale claimant gets a suffix.
func TestRepairReclaimsFromStaleClaim(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, s *store.Store) {
		if err := store.InsertRaw(t.Context(), s, earlierA()); err != nil {
			t.Fatal(err)
		}
		mustUpsert(t, s, clerkVersion("user_b", "x", "b", 50), store.Inserted)
		mustUpsert(t, s, clerkA(), store.Updated)
		checkHolds(t, s, "user_a", "x")
		if b := checkSuffixed(t, s, "user_b", "x"); b.ClerkUsername != "x" {
			t.Errorf("user_b = %+v; want its stale claim of x kept, with a suffix", b)
		}
	})
}

// TestRepairFields: at an equal updated_at, a repair applies when any field the service takes
// from Clerk differs (or is missing), and not for a field its source lacks (User.Unknown); it
// never touches a newer user or a tombstone.
func TestRepairFields(t *testing.T) {
	t.Parallel()
	other := "b@example.org"
	tests := []struct {
		name   string
		stored func(d bson.D) bson.D // the stored document, from earlierA with clerk_username x
		write  func(u *store.User)   // the repair, from clerkA
		want   store.Outcome
	}{
		{"nothing differs", nil, nil, store.Skipped},
		{"clerk_username missing", func(d bson.D) bson.D { return without(d, "clerk_username") }, nil, store.Updated},
		{"clerk_username differs", func(d bson.D) bson.D { return with(d, "clerk_username", "z") }, nil, store.Updated},
		{"Clerk has no username any more", nil, func(u *store.User) { u.ClerkUsername = "" }, store.Updated},
		{"email differs", nil, func(u *store.User) { u.Email = &other }, store.Updated},
		{"email removed", nil, func(u *store.User) { u.Email = nil }, store.Updated},
		{"email missing", func(d bson.D) bson.D { return without(d, "email") }, nil, store.Updated},
		{"full_name differs", nil, func(u *store.User) { u.FullName = "Ada B" }, store.Updated},
		{"profile_picture differs", nil, func(u *store.User) { u.ProfilePicture = "https://img.example/new" }, store.Updated},
		{"profile_picture differs but the source lacks it", nil, func(u *store.User) {
			u.ProfilePicture, u.Unknown = "", store.FieldProfilePicture
		}, store.Skipped},
		{"created_at differs", nil, func(u *store.User) { u.CreatedAt = 11 }, store.Updated},
		{"created_at a Date", func(d bson.D) bson.D { return with(d, "created_at", bson.DateTime(10)) }, nil, store.Updated},
		{"created_at unknown", nil, func(u *store.User) { u.CreatedAt, u.Unknown = 0, store.FieldCreatedAt }, store.Skipped},
		{"stored updated_at newer", func(d bson.D) bson.D { return with(without(d, "clerk_username"), "updated_at", int64(101)) }, nil, store.Skipped},
		{"stored updated_at a double, equal", func(d bson.D) bson.D { return with(without(d, "clerk_username"), "updated_at", 100.0) }, nil, store.Updated},
		{"stored updated_at newer by a fraction", func(d bson.D) bson.D { return with(without(d, "clerk_username"), "updated_at", 100.5) }, nil, store.Skipped},
		{"a tombstone", func(bson.D) bson.D {
			return bson.D{{Key: "_id", Value: "user_a"}, {Key: "deleted", Value: true}, {Key: "deleted_at", Value: int64(100)}, {Key: "updated_at", Value: int64(100)}}
		}, nil, store.Skipped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eachMode(t, func(t *testing.T, s *store.Store) {
				doc := with(earlierA(), "clerk_username", "x")
				if tc.stored != nil {
					doc = tc.stored(doc)
				}
				if err := store.InsertRaw(t.Context(), s, doc); err != nil {
					t.Fatal(err)
				}
				u := clerkA()
				if tc.write != nil {
					tc.write(&u)
				}
				before, _ := store.RawUser(t.Context(), s, "user_a")
				mustUpsert(t, s, u, tc.want)
				got, err := s.Get(t.Context(), "user_a")
				if err != nil {
					t.Fatal(err)
				}
				after, _ := store.RawUser(t.Context(), s, "user_a")
				if tc.want == store.Skipped {
					if !equalDocs(before, after) {
						t.Errorf("user_a = %v after a skipped write; want it unchanged (%v)", after, before)
					}
					return
				}
				if got.ClerkUsername != u.ClerkUsername || got.FullName != u.FullName || (got.Email == nil) != (u.Email == nil) ||
					(u.Email != nil && *got.Email != *u.Email) || got.ProfilePicture != u.ProfilePicture || got.CreatedAt != u.CreatedAt || got.UpdatedAt != 100 {
					t.Errorf("repaired user_a = %+v; want %+v", got, u)
				}
			})
		})
	}
}

// with returns d with key set to v (replaced in place, or appended).
func with(d bson.D, key string, v any) bson.D {
	out := without(d, key)
	return append(out, bson.E{Key: key, Value: v})
}

// without returns d without key.
func without(d bson.D, key string) bson.D {
	var out bson.D
	for _, e := range d {
		if e.Key != key {
			out = append(out, e)
		}
	}
	return out
}

// equalDocs reports whether two documents as RawUser returns them are equal.
func equalDocs(a, b bson.M) bool { return reflect.DeepEqual(a, b) }

// TestRepairConditionalFilter: in WritesConditional a repair's write carries its own guard, so
// that it stays one atomic write whatever other processes write between UpsertUser's read and
// it: the filter lets it write over a user as new as it, and never over a newer user or a
// tombstone, even when the read that decided it saw neither.
func TestRepairConditionalFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		stored  bson.D
		applied bool
	}{
		{"as new", earlierA(), true},
		{"older", with(earlierA(), "updated_at", int64(99)), true},
		{"newer", with(earlierA(), "updated_at", int64(101)), false},
		{"a tombstone as new", bson.D{{Key: "_id", Value: "user_a"}, {Key: "deleted", Value: true}, {Key: "deleted_at", Value: int64(100)}, {Key: "updated_at", Value: int64(100)}}, false},
		{"none stored", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStoreMode(t, store.WritesConditional)
			ctx := t.Context()
			want := store.Inserted
			if tc.stored != nil {
				if err := store.InsertRaw(ctx, s, tc.stored); err != nil {
					t.Fatal(err)
				}
				want = store.Updated
			}
			before, _ := store.RawUser(ctx, s, "user_a")
			out, err := store.WriteUserUnread(ctx, s, clerkA(), "x")
			after, _ := store.RawUser(ctx, s, "user_a")
			if tc.applied {
				if err != nil || out != want || after["clerk_username"] != "x" || after["updated_at"] != int64(100) {
					t.Errorf("repair over %v = %q, %v, leaving %v; want %q, with clerk_username x and updated_at 100", before, out, err, after, want)
				}
				return
			}
			if err == nil || !equalDocs(before, after) {
				t.Errorf("repair over %v = %q, %v, leaving %v; want refused (the _id index) and the user unchanged", before, out, err, after)
			}
		})
	}
}

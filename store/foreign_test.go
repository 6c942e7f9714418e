package store_test

import (
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"clerksync/store"
)

// Documents this service did not write, in a users collection it shares with an application
// or inherited from an earlier version of the service, never block a write and never keep
// personal data past a Clerk deletion (docs/users-collection.md, "Documents this service did
// not write"). Every test runs in both write modes.

// insertRaw inserts doc as the application would, failing the test when it cannot.
func insertRaw(t *testing.T, s *store.Store, doc bson.D) {
	t.Helper()
	if err := store.InsertRaw(t.Context(), s, doc); err != nil {
		t.Fatalf("InsertRaw(%v) = %v", doc, err)
	}
}

// checkWritten fails unless the stored user u.ID has u's email, name, picture, updated_at and
// Clerk username, and returns it.
func checkWritten(t *testing.T, s *store.Store, u store.User) store.User {
	t.Helper()
	got, err := s.Get(t.Context(), u.ID)
	if err != nil || got.Deleted || got.Email == nil || *got.Email != *u.Email || got.FullName != u.FullName ||
		got.ProfilePicture != u.ProfilePicture || got.UpdatedAt != u.UpdatedAt || got.ClerkUsername != u.ClerkUsername {
		t.Errorf("Get(%s) = %+v, %v; want the event's data (%+v)", u.ID, got, err, u)
	}
	return got
}

// TestUsernameHeldByNonStringID: a username held by a document whose _id is not a string (an
// application's own, never a Clerk user) is never taken from it: the user claiming it is
// written with the claim and a suffix, on a sign-up and on an update, and the holder stays as
// it is.
func TestUsernameHeldByNonStringID(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		oid := bson.NewObjectID()
		insertRaw(t, s, bson.D{{Key: "_id", Value: oid}, {Key: "username", Value: "alice"}})

		signUp := clerkVersion("user_alice", "alice", "alice", 100)
		mustUpsert(t, s, signUp, store.Inserted)
		checkWritten(t, s, signUp)
		checkSuffixed(t, s, "user_alice", "alice")

		// An existing user renaming itself to the held name: the update lands too.
		mustUpsert(t, s, clerkVersion("user_bob", "bob", "bob", 100), store.Inserted)
		rename := clerkVersion("user_bob", "alice", "bob.new", 200)
		mustUpsert(t, s, rename, store.Updated)
		checkWritten(t, s, rename)
		checkSuffixed(t, s, "user_bob", "alice")

		raw, err := store.RawUserWhere(ctx, s, bson.D{{Key: "_id", Value: oid}})
		if want := (bson.M{"_id": oid, "username": "alice"}); err != nil || !reflect.DeepEqual(raw, want) {
			t.Errorf("the application's document = %v, %v; want it unchanged, %v", raw, err, want)
		}
	})
}

// TestUsernameHeldByDeletedDocument: a username held by a document marked deleted (the
// application's soft delete, or an earlier version's tombstone that kept it) counts as held:
// the claimant gets the claim with a suffix and the rest of its event, the deleted document is
// left as it is, and the name is the claimant's once Clerk deletes that user.
func TestUsernameHeldByDeletedDocument(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		holder bson.D
	}{
		{"an application's soft delete", bson.D{
			{Key: "_id", Value: "user_gone"}, {Key: "username", Value: "alice"}, {Key: "deleted", Value: true}, {Key: "updated_at", Value: int64(10)},
		}},
		{"a deleted Clerk claim, older", bson.D{
			{Key: "_id", Value: "user_gone"}, {Key: "username", Value: "alice"}, {Key: "clerk_username", Value: "alice"},
			{Key: "deleted", Value: true}, {Key: "deleted_at", Value: int64(20)}, {Key: "updated_at", Value: int64(10)},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eachMode(t, func(t *testing.T, s *store.Store) {
				ctx := t.Context()
				insertRaw(t, s, tc.holder)
				v1 := clerkVersion("user_alice", "alice", "alice", 100)
				mustUpsert(t, s, v1, store.Inserted)
				checkWritten(t, s, v1)
				checkSuffixed(t, s, "user_alice", "alice")
				if raw, err := store.RawUser(ctx, s, "user_gone"); err != nil || raw["username"] != "alice" || raw["deleted"] != true {
					t.Errorf("the deleted holder = %v, %v; want it unchanged", raw, err)
				}

				// Clerk deletes user_gone: its tombstone frees the name for the claimant's next
				// event.
				if out, err := s.DeleteUser(ctx, "user_gone", 1000); err != nil || out != store.Deleted {
					t.Fatalf("DeleteUser(user_gone) = %q, %v; want deleted", out, err)
				}
				v2 := clerkVersion("user_alice", "alice", "alice", 2000)
				mustUpsert(t, s, v2, store.Updated)
				checkWritten(t, s, v2)
				checkHolds(t, s, "user_alice", "alice")
			})
		})
	}
}

// TestDeleteScrubsDeletedDocument: a Clerk deletion of a user whose document is marked deleted
// but still holds other fields (the application's soft delete, or an earlier version's
// tombstone) leaves the four-field tombstone that document's own deletion would have left: its
// deleted_at is kept when it is a number (Clerk's deletion time otherwise), and updated_at is
// the later of deleted_at and the stored updated_at. A replay then changes nothing.
func TestDeleteScrubsDeletedDocument(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stored bson.D
		want   bson.M // the tombstone, besides _id and deleted
	}{
		{"an application's soft delete", bson.D{
			{Key: "_id", Value: "user_soft"}, {Key: "email", Value: "me@private.org"}, {Key: "full_name", Value: "Private Person"},
			{Key: "deleted", Value: true}, {Key: "updated_at", Value: int64(10)},
		}, bson.M{"deleted_at": int64(1000), "updated_at": int64(1000)}},
		{"an earlier version's tombstone", bson.D{
			{Key: "_id", Value: "user_soft"}, {Key: "created_at", Value: int64(5)}, {Key: "updated_at", Value: int64(10)},
			{Key: "deleted", Value: true}, {Key: "deleted_at", Value: int64(300)}, {Key: "stripe_customer", Value: "cus_1"},
		}, bson.M{"deleted_at": int64(300), "updated_at": int64(300)}},
		{"a soft delete updated after Clerk's deletion", bson.D{
			{Key: "_id", Value: "user_soft"}, {Key: "email", Value: "me@private.org"}, {Key: "username", Value: "private"},
			{Key: "deleted", Value: true}, {Key: "deleted_at", Value: bson.NewDateTimeFromTime(time.UnixMilli(4000))}, {Key: "updated_at", Value: int64(5000)},
		}, bson.M{"deleted_at": int64(1000), "updated_at": int64(5000)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eachMode(t, func(t *testing.T, s *store.Store) {
				ctx := t.Context()
				insertRaw(t, s, tc.stored)
				want := maps.Clone(tc.want)
				want["_id"], want["deleted"] = "user_soft", true
				for _, step := range []struct {
					at   int64
					want store.Outcome
				}{{1000, store.Deleted}, {1500, store.AlreadyDeleted}} {
					out, err := s.DeleteUser(ctx, "user_soft", step.at)
					if err != nil || out != step.want {
						t.Fatalf("DeleteUser(user_soft, %d) = %q, %v; want %q", step.at, out, err, step.want)
					}
					raw, err := store.RawUser(ctx, s, "user_soft")
					if err != nil || !reflect.DeepEqual(raw, want) {
						t.Errorf("after DeleteUser(user_soft, %d): stored %v (fields %q), %v; want %v", step.at, raw, slices.Sorted(maps.Keys(raw)), err, want)
					}
				}
			})
		})
	}
}

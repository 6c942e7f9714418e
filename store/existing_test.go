package store_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"clerksync/store"
)

// TestExistingDocuments: pointed at an application's existing users collection, documents
// whose updated_at is missing or not a number count as older than any event, in both write
// modes alike: the event updates them (keeping their username) and an older event after it
// changes nothing.
func TestExistingDocuments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		updatedAt any // nil: no updated_at field
	}{
		{"no updated_at", nil},
		{"updated_at a Date", bson.NewDateTimeFromTime(time.UnixMilli(1_900_000_000_000))},
		{"updated_at a string", "2024-05-01T10:00:00Z"},
		{"updated_at null", bson.Null{}},
		{"updated_at an int32 (older)", int32(5)},
		{"updated_at a double (older)", float64(1_600_000_000_000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eachMode(t, func(t *testing.T, s *store.Store) {
				ctx := t.Context()
				doc := bson.D{
					{Key: "_id", Value: "user_old"},
					{Key: "email", Value: "old@example.org"},
					{Key: "username", Value: "oldtimer"},
					{Key: "created_at", Value: bson.NewDateTimeFromTime(time.UnixMilli(1_500_000_000_000))},
					{Key: "plan", Value: "pro"},
				}
				if tc.updatedAt != nil {
					doc = append(doc, bson.E{Key: "updated_at", Value: tc.updatedAt})
				}
				if err := store.InsertRaw(ctx, s, doc); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Get(ctx, "user_old"); err != nil {
					t.Fatalf("Get(existing document) = %v; want it read", err)
				}
				v := clerkVersion("user_old", "", "old", 1_700_000_000_000)
				mustUpsert(t, s, v, store.Updated)
				got := checkHolds(t, s, "user_old", "oldtimer")
				if got.FullName != v.FullName || got.UpdatedAt != v.UpdatedAt {
					t.Errorf("Get(user_old) = %+v; want the event's data (updated_at %d)", got, v.UpdatedAt)
				}
				older := clerkVersion("user_old", "", "old", 1_650_000_000_000)
				mustUpsert(t, s, older, store.Skipped)
				raw, err := store.RawUser(ctx, s, "user_old")
				if err != nil || raw["plan"] != "pro" {
					t.Errorf("stored document = %v, %v; want the application's own field plan kept", raw, err)
				}
			})
		})
	}
}

// TestTombstoneKeepsOnlyItsFields: a deleted user's document keeps _id, deleted, deleted_at
// and updated_at, and nothing else: no personal data, and no field the application added.
func TestTombstoneKeepsOnlyItsFields(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		mustUpsert(t, s, clerkVersion("user_t", "neo", "t", 100), store.Inserted)
		if err := store.InsertRaw(ctx, s, bson.D{{Key: "_id", Value: "user_app"}, {Key: "email", Value: "a@b.c"}, {Key: "stripe_customer", Value: "cus_1"}, {Key: "updated_at", Value: int64(50)}}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"user_t", "user_app", "user_never_seen"} {
			if out, err := s.DeleteUser(ctx, id, 200); err != nil || out != store.Deleted {
				t.Fatalf("DeleteUser(%s) = %q, %v; want deleted", id, out, err)
			}
			raw, err := store.RawUser(ctx, s, id)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := slices.Sorted(maps.Keys(raw)), []string{"_id", "deleted", "deleted_at", "updated_at"}; !slices.Equal(got, want) {
				t.Errorf("tombstone of %s has fields %q (%v); want only %q", id, got, raw, want)
			}
		}
		// The username is free again.
		mustUpsert(t, s, clerkVersion("user_n", "neo", "n", 50), store.Inserted)
		checkHolds(t, s, "user_n", "neo")
	})
}

// TestUnknownFieldsKept: a write whose source lacks the picture and created_at (a Clerk user
// export) leaves the stored ones as they are.
func TestUnknownFieldsKept(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		v1 := clerkVersion("user_k", "", "k", 100)
		v1.CreatedAt = 42
		mustUpsert(t, s, v1, store.Inserted)
		v2 := clerkVersion("user_k", "", "k", 200)
		v2.ProfilePicture, v2.CreatedAt, v2.Unknown = "", 0, store.FieldProfilePicture|store.FieldCreatedAt
		mustUpsert(t, s, v2, store.Updated)
		got, err := s.Get(ctx, "user_k")
		if err != nil || got.ProfilePicture != v1.ProfilePicture || got.CreatedAt != 42 || got.FullName != v2.FullName {
			t.Errorf("Get(user_k) = %+v, %v; want picture %q and created_at 42 kept, the rest updated", got, err, v1.ProfilePicture)
		}
		v3 := clerkVersion("user_k", "", "k", 300)
		v3.ProfilePicture, v3.CreatedAt = "", 77
		mustUpsert(t, s, v3, store.Updated)
		if got, _ := s.Get(ctx, "user_k"); got.ProfilePicture != "" || got.CreatedAt != 77 {
			t.Errorf("Get(user_k) = %+v; want a known empty picture and created_at 77 written", got)
		}
	})
}

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

// TestDeleteScrubsDeletedDocument: a Clerk deletion of a user whose document is marked deleted
// but still holds other fields (the application's soft delete, or an earlier version's
// tombstone) leaves the four-field tombstone that document's own deletion would have left: its
// deleted_at is kept when it is a number (Clerk's deletion time otherwise), and updated_at is
// the later of deleted_at and the stored updated_at. A replay then changes nothing.
func TestDeleteScrubsDeletedDocument(t *testing.T) {
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

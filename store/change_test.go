package store_test

import (
	"reflect"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"clerksync/store"
)

// The Change the upserts and deletes report, for the events the functions emit: which stored
// fields an applied write changed, and the same record again when a retry finds its version
// already stored. Every test runs in both write modes.

// TestUserChange walks one user through a create, a retry of it, an update, a stale update,
// a retry of the update and a delete (and its replay), checking the Change of each.
func TestUserChange(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			s := openStoreMode(t, m.mode)
			ctx := t.Context()
			v1 := store.User{ID: "user_1", Email: ptr("ada@example.com"), FullName: "Ada Lovelace", ProfilePicture: "https://img/1",
				Username: "ada", CreatedAt: 1_000, UpdatedAt: 1_000}
			v2 := v1
			v2.FullName, v2.UpdatedAt = "Ada King", 2_000
			stale := v1
			stale.FullName, stale.UpdatedAt = "Ada Byron", 1_500
			created := []string{"email", "full_name", "profile_picture", "created_at", "username"}
			for _, c := range []struct {
				name string
				call func() (store.Change, error)
				want store.Change
			}{
				{"create", func() (store.Change, error) { return s.UpsertUserChange(ctx, v1) },
					store.Change{Outcome: store.Inserted, Created: true, Fields: created, At: 1_000}},
				{"create again", func() (store.Change, error) { return s.UpsertUserChange(ctx, v1) },
					store.Change{Outcome: store.AlreadyStored, Created: true, Fields: created, At: 1_000}},
				{"update", func() (store.Change, error) { return s.UpsertUserChange(ctx, v2) },
					store.Change{Outcome: store.Updated, Fields: []string{"full_name"}, At: 2_000}},
				{"stale update", func() (store.Change, error) { return s.UpsertUserChange(ctx, stale) },
					store.Change{Outcome: store.Skipped}},
				{"create after update", func() (store.Change, error) { return s.UpsertUserChange(ctx, v1) },
					store.Change{Outcome: store.Skipped}},
				{"update again", func() (store.Change, error) { return s.UpsertUserChange(ctx, v2) },
					store.Change{Outcome: store.AlreadyStored, Fields: []string{"full_name"}, At: 2_000}},
				{"delete", func() (store.Change, error) { return s.DeleteUserChange(ctx, "user_1", 3_000) },
					store.Change{Outcome: store.Deleted, Fields: []string{}, At: 3_000}},
				{"delete again, later", func() (store.Change, error) { return s.DeleteUserChange(ctx, "user_1", 4_000) },
					store.Change{Outcome: store.AlreadyDeleted, Fields: []string{}, At: 3_000}},
				{"update after delete", func() (store.Change, error) { v := v2; v.UpdatedAt = 5_000; return s.UpsertUserChange(ctx, v) },
					store.Change{Outcome: store.Skipped}},
			} {
				got, err := c.call()
				if err != nil || !reflect.DeepEqual(got, c.want) {
					t.Errorf("%s = %+v, %v; want %+v", c.name, got, err, c.want)
				}
			}
			// The older outcomes stay as they were: a retry of the stored version is Skipped.
			if got, err := s.UpsertUser(ctx, store.User{ID: "user_2", FullName: "B", UpdatedAt: 7}); err != nil || got != store.Inserted {
				t.Errorf("UpsertUser(user_2) = %q, %v; want inserted", got, err)
			}
			if got, err := s.UpsertUser(ctx, store.User{ID: "user_2", FullName: "B", UpdatedAt: 7}); err != nil || got != store.Skipped {
				t.Errorf("UpsertUser(user_2) again = %q, %v; want skipped", got, err)
			}
		})
	}
}

// TestUserChangeUnsetAndUnchanged: a field removed counts as changed, a field written with the
// value it had does not, and an update that changes nothing but updated_at changes no field.
func TestUserChangeUnsetAndUnchanged(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			s := openStoreMode(t, m.mode)
			ctx := t.Context()
			u := store.User{ID: "user_1", Email: ptr("a@example.com"), FullName: "A", Username: "a", ClerkUsername: "alpha", CreatedAt: 1, UpdatedAt: 10}
			if _, err := s.UpsertUserChange(ctx, u); err != nil {
				t.Fatal(err)
			}
			u.UpdatedAt = 20
			if got, err := s.UpsertUserChange(ctx, u); err != nil || got.Outcome != store.Updated || len(got.Fields) != 0 {
				t.Errorf("UpsertUserChange(same fields, newer) = %+v, %v; want updated, no field", got, err)
			}
			// Without its Clerk username, the user gives up "alpha" for the derived "a".
			u.Email, u.ClerkUsername, u.UpdatedAt = nil, "", 30
			got, err := s.UpsertUserChange(ctx, u)
			if want := []string{"email", "username", "clerk_username"}; err != nil || got.Outcome != store.Updated || !reflect.DeepEqual(got.Fields, want) {
				t.Errorf("UpsertUserChange(no email, no clerk username) = %+v, %v; want updated, fields %q (username alpha -> a)", got, err, want)
			}
			// A null email written again is no change either.
			u.UpdatedAt = 35
			if got, err := s.UpsertUserChange(ctx, u); err != nil || got.Outcome != store.Updated || len(got.Fields) != 0 {
				t.Errorf("UpsertUserChange(same fields, email null, newer) = %+v, %v; want updated, no field", got, err)
			}
			// A user stored before the record existed (no _sync_change): already stored, no field.
			if err := store.InsertRaw(ctx, s, bson.D{{Key: "_id", Value: "user_old"}, {Key: "full_name", Value: "Old"}, {Key: "updated_at", Value: int64(40)}}); err != nil {
				t.Fatal(err)
			}
			old := store.User{ID: "user_old", FullName: "Old", UpdatedAt: 40}
			if got, err := s.UpsertUserChange(ctx, old); err != nil || !reflect.DeepEqual(got, store.Change{Outcome: store.AlreadyStored, Fields: []string{}, At: 40}) {
				t.Errorf("UpsertUserChange(user_old, stored without a record) = %+v, %v; want already stored, no field", got, err)
			}
		})
	}
}

// TestOrganizationAndMembershipChange: the organizations' and memberships' upserts report
// their changes and the already-stored version as the users' do.
func TestOrganizationAndMembershipChange(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			s := openStoreMode(t, m.mode)
			ctx := t.Context()
			o := store.Organization{ID: "org_1", Name: "Acme", Slug: "acme", CreatedBy: "user_1", CreatedAt: 1, UpdatedAt: 10}
			o2 := o
			o2.Slug, o2.UpdatedAt = "", 20
			mb := store.Membership{ID: "orgmem_1", OrgID: "org_1", UserID: "user_1", Role: "org:member", CreatedAt: 1, UpdatedAt: 10}
			mb2 := mb
			mb2.Role, mb2.UpdatedAt = "org:admin", 20
			for _, c := range []struct {
				name string
				call func() (store.Change, error)
				want store.Change
			}{
				{"org create", func() (store.Change, error) { return s.UpsertOrganizationChange(ctx, o) },
					store.Change{Outcome: store.Inserted, Created: true, Fields: []string{"name", "slug", "image_url", "created_by", "created_at"}, At: 10}},
				{"org update", func() (store.Change, error) { return s.UpsertOrganizationChange(ctx, o2) },
					store.Change{Outcome: store.Updated, Fields: []string{"slug"}, At: 20}},
				{"org update again", func() (store.Change, error) { return s.UpsertOrganizationChange(ctx, o2) },
					store.Change{Outcome: store.AlreadyStored, Fields: []string{"slug"}, At: 20}},
				{"org stale", func() (store.Change, error) { return s.UpsertOrganizationChange(ctx, o) },
					store.Change{Outcome: store.Skipped}},
				{"membership create", func() (store.Change, error) { return s.UpsertMembershipChange(ctx, mb) },
					store.Change{Outcome: store.Inserted, Created: true, Fields: []string{"org_id", "user_id", "role", "created_at"}, At: 10}},
				{"membership create again", func() (store.Change, error) { return s.UpsertMembershipChange(ctx, mb) },
					store.Change{Outcome: store.AlreadyStored, Created: true, Fields: []string{"org_id", "user_id", "role", "created_at"}, At: 10}},
				{"membership update", func() (store.Change, error) { return s.UpsertMembershipChange(ctx, mb2) },
					store.Change{Outcome: store.Updated, Fields: []string{"role"}, At: 20}},
				{"membership stale", func() (store.Change, error) { return s.UpsertMembershipChange(ctx, mb) },
					store.Change{Outcome: store.Skipped}},
				{"membership delete", func() (store.Change, error) { return s.DeleteMembershipChange(ctx, "orgmem_1", 30) },
					store.Change{Outcome: store.Deleted, Fields: []string{}, At: 30}},
				{"membership delete again", func() (store.Change, error) { return s.DeleteMembershipChange(ctx, "orgmem_1", 31) },
					store.Change{Outcome: store.AlreadyDeleted, Fields: []string{}, At: 30}},
				{"membership refused", func() (store.Change, error) { v := mb2; v.UpdatedAt = 40; return s.UpsertMembershipChange(ctx, v) },
					store.Change{Outcome: store.Skipped}},
				{"org delete", func() (store.Change, error) { return s.DeleteOrganizationChange(ctx, "org_1", 50) },
					store.Change{Outcome: store.Deleted, Fields: []string{}, At: 50}},
				{"org delete again", func() (store.Change, error) { return s.DeleteOrganizationChange(ctx, "org_1", 51) },
					store.Change{Outcome: store.AlreadyDeleted, Fields: []string{}, At: 50}},
				{"org refused", func() (store.Change, error) { v := o2; v.UpdatedAt = 60; return s.UpsertOrganizationChange(ctx, v) },
					store.Change{Outcome: store.Skipped}},
			} {
				got, err := c.call()
				if err != nil || !reflect.DeepEqual(got, c.want) {
					t.Errorf("%s = %+v, %v; want %+v", c.name, got, err, c.want)
				}
			}
		})
	}
}

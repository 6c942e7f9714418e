package reconcile_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"clerksync/clerk"
	"clerksync/reconcile"
	"clerksync/store"
)

func TestImport(t *testing.T) {
	tests := []struct {
		name      string
		stored    *clerk.User // written before, as a webhook would
		tombstone bool        // then deleted
		user      clerk.User  // imported
		want      reconcile.Tally
	}{
		{"new user created", nil, false, asClerk(fakeUser("user_1", "Ada", 2000)), reconcile.Tally{Created: 1}},
		{"older stored user updated", ptr(asClerk(fakeUser("user_1", "Old", 1000))), false, asClerk(fakeUser("user_1", "Ada", 2000)), reconcile.Tally{Updated: 1}},
		{"same version unchanged", ptr(asClerk(fakeUser("user_1", "Ada", 2000))), false, asClerk(fakeUser("user_1", "Ada", 2000)), reconcile.Tally{Unchanged: 1}},
		{"newer stored user unchanged", ptr(asClerk(fakeUser("user_1", "New", 3000))), false, asClerk(fakeUser("user_1", "Ada", 2000)), reconcile.Tally{Unchanged: 1}},
		{"tombstone skipped", ptr(asClerk(fakeUser("user_1", "Old", 1000))), true, asClerk(fakeUser("user_1", "Ada", 2000)),
			reconcile.Tally{Skipped: map[string]int{reconcile.SkipDeleted: 1}}},
		{"no id skipped", nil, false, clerk.User{UpdatedAt: 1}, reconcile.Tally{Skipped: map[string]int{reconcile.SkipInvalid: 1}}},
		{"no timestamp skipped", nil, false, clerk.User{ID: "user_1"}, reconcile.Tally{Skipped: map[string]int{reconcile.SkipInvalid: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			if tt.stored != nil {
				u, err := tt.stored.StoreUser(0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := st.UpsertUser(t.Context(), u); err != nil {
					t.Fatal(err)
				}
			}
			if tt.tombstone {
				if _, err := st.DeleteUser(t.Context(), tt.stored.ID, 1500); err != nil {
					t.Fatal(err)
				}
			}
			var got reconcile.Tally
			if err := reconcile.Import(t.Context(), st, tt.user, &got); err != nil {
				t.Fatalf("Import = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("tally = %+v; want %+v", got, tt.want)
			}
			if got.Total() != 1 {
				t.Errorf("tally total = %d; want 1", got.Total())
			}
		})
	}
}

func TestImportDatabaseError(t *testing.T) {
	st := openStore(t)
	if err := st.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	var tally reconcile.Tally
	err := reconcile.Import(t.Context(), st, asClerk(fakeUser("user_1", "Ada", 2000)), &tally)
	if !errors.Is(err, store.ErrDatabase) {
		t.Fatalf("Import against a closed store = %v; want an error wrapping store.ErrDatabase", err)
	}
	if tally.Total() != 0 {
		t.Errorf("tally = %+v; want nothing counted", tally)
	}
}

func TestTallyReasons(t *testing.T) {
	var tally reconcile.Tally
	for i, r := range []string{reconcile.SkipInvalid, reconcile.SkipDeleted, reconcile.SkipInvalid} {
		tally.Skip(r)
		if got := tally.SkippedTotal(); got != i+1 {
			t.Errorf("SkippedTotal after %d skips = %d", i+1, got)
		}
	}
	want := []string{reconcile.SkipDeleted, reconcile.SkipInvalid}
	if got := tally.Reasons(); !reflect.DeepEqual(got, want) {
		t.Errorf("Reasons = %q; want %q", got, want)
	}
	if got := fmt.Sprint(tally.Skipped[reconcile.SkipInvalid]); got != "2" {
		t.Errorf("Skipped[%q] = %s; want 2", reconcile.SkipInvalid, got)
	}
}

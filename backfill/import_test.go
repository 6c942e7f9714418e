package backfill_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"clerksync/backfill"
	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
	"clerksync/store"
)

func TestImport(t *testing.T) {
	tests := []struct {
		name      string
		stored    *clerk.User // written before, as a webhook would
		tombstone bool        // then deleted
		user      clerk.User  // imported
		want      backfill.Tally
	}{
		{"new user created", nil, false, clerkfake.NewUser("user_1", "Ada", 2000).Clerk(), backfill.Tally{Created: 1}},
		{"older stored user updated", ptr(clerkfake.NewUser("user_1", "Old", 1000).Clerk()), false, clerkfake.NewUser("user_1", "Ada", 2000).Clerk(), backfill.Tally{Updated: 1}},
		{"same version unchanged", ptr(clerkfake.NewUser("user_1", "Ada", 2000).Clerk()), false, clerkfake.NewUser("user_1", "Ada", 2000).Clerk(), backfill.Tally{Unchanged: 1}},
		{"newer stored user unchanged", ptr(clerkfake.NewUser("user_1", "New", 3000).Clerk()), false, clerkfake.NewUser("user_1", "Ada", 2000).Clerk(), backfill.Tally{Unchanged: 1}},
		{"tombstone skipped", ptr(clerkfake.NewUser("user_1", "Old", 1000).Clerk()), true, clerkfake.NewUser("user_1", "Ada", 2000).Clerk(),
			backfill.Tally{Skipped: map[string]int{backfill.SkipDeleted: 1}}},
		{"no id skipped", nil, false, clerk.User{UpdatedAt: 1}, backfill.Tally{Skipped: map[string]int{backfill.SkipInvalid: 1}}},
		{"no timestamp skipped", nil, false, clerk.User{ID: "user_1"}, backfill.Tally{Skipped: map[string]int{backfill.SkipInvalid: 1}}},
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
			var got backfill.Tally
			if err := backfill.Import(t.Context(), st, tt.user, &got); err != nil {
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
	var tally backfill.Tally
	err := backfill.Import(t.Context(), st, clerkfake.NewUser("user_1", "Ada", 2000).Clerk(), &tally)
	if !errors.Is(err, store.ErrDatabase) {
		t.Fatalf("Import against a closed store = %v; want an error wrapping store.ErrDatabase", err)
	}
	if tally.Total() != 0 {
		t.Errorf("tally = %+v; want nothing counted", tally)
	}
}

func TestTallyReasons(t *testing.T) {
	var tally backfill.Tally
	for i, r := range []string{backfill.SkipInvalid, backfill.SkipDeleted, backfill.SkipInvalid} {
		tally.Skip(r)
		if got := tally.SkippedTotal(); got != i+1 {
			t.Errorf("SkippedTotal after %d skips = %d", i+1, got)
		}
	}
	want := []string{backfill.SkipDeleted, backfill.SkipInvalid}
	if got := tally.Reasons(); !reflect.DeepEqual(got, want) {
		t.Errorf("Reasons = %q; want %q", got, want)
	}
	if got := fmt.Sprint(tally.Skipped[backfill.SkipInvalid]); got != "2" {
		t.Errorf("Skipped[%q] = %s; want 2", backfill.SkipInvalid, got)
	}
}

// TestExportRowImportKeepsWhatTheExportLacks: an export row newer than the stored user updates
// it, but the export has no picture (and this one no created_at): the stored ones stay.
func TestExportRowImportKeepsWhatTheExportLacks(t *testing.T) {
	tests := []struct {
		name        string
		csv         string
		want        backfill.Tally
		wantName    string
		wantCreated int64
	}{
		{"row without created_at", "id,first_name,updated_at\nuser_01,Renamed,2000\n",
			backfill.Tally{Updated: 1}, "Renamed", 500},
		{"row with created_at", "id,first_name,created_at,updated_at\nuser_01,Renamed,1700000000,2000\n",
			backfill.Tally{Updated: 1}, "Renamed", 1_700_000_000_000},
		{"row without a timestamp (older than anything stored)", "id,first_name\nuser_01,Renamed\n",
			backfill.Tally{Unchanged: 1}, "First Doe", 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			stored := clerkfake.NewUser("user_01", "First", 1000)
			seed(t, st, stored)
			rows, err := clerk.ReadExport(strings.NewReader(tt.csv))
			if err != nil || len(rows) != 1 || rows[0].Err != nil {
				t.Fatalf("ReadExport = %+v, %v; want one good row", rows, err)
			}
			var got backfill.Tally
			if err := backfill.ImportRow(t.Context(), st, rows[0], &got); err != nil {
				t.Fatalf("ImportRow = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("tally = %+v; want %+v", got, tt.want)
			}
			u := get(t, st, "user_01")
			if u.FullName != tt.wantName || u.ProfilePicture != stored.ImageURL || u.CreatedAt != tt.wantCreated {
				t.Errorf("user_01 after ImportRow = full_name %q, profile_picture %q, created_at %d; want %q, %q (kept), %d",
					u.FullName, u.ProfilePicture, u.CreatedAt, tt.wantName, stored.ImageURL, tt.wantCreated)
			}
		})
	}
}

package reconcile_test

import (
	"reflect"
	"strings"
	"testing"

	"clerksync/clerk"
	"clerksync/reconcile"
)

// TestExportRowImportKeepsWhatTheExportLacks: an export row newer than the stored user updates
// it, but the export has no picture (and this one no created_at): the stored ones stay.
func TestExportRowImportKeepsWhatTheExportLacks(t *testing.T) {
	tests := []struct {
		name        string
		csv         string
		want        reconcile.Tally
		wantName    string
		wantCreated int64
	}{
		{"row without created_at", "id,first_name,updated_at\nuser_01,Renamed,2000\n",
			reconcile.Tally{Updated: 1}, "Renamed", 500},
		{"row with created_at", "id,first_name,created_at,updated_at\nuser_01,Renamed,1700000000,2000\n",
			reconcile.Tally{Updated: 1}, "Renamed", 1_700_000_000_000},
		{"row without a timestamp (older than anything stored)", "id,first_name\nuser_01,Renamed\n",
			reconcile.Tally{Unchanged: 1}, "First Doe", 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			stored := fakeUser("user_01", "First", 1000)
			seed(t, st, stored)
			rows, err := clerk.ReadExport(strings.NewReader(tt.csv))
			if err != nil || len(rows) != 1 || rows[0].Err != nil {
				t.Fatalf("ReadExport = %+v, %v; want one good row", rows, err)
			}
			var got reconcile.Tally
			if err := reconcile.ImportRow(t.Context(), st, rows[0], &got); err != nil {
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

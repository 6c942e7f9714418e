package reconcile_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"clerksync/functions"
	"clerksync/reconcile"
)

// exportHeader is the header of the Clerk Dashboard's user export.
const exportHeader = "id,first_name,last_name,username,primary_email_address,primary_phone_number,verified_email_addresses,unverified_email_addresses,verified_phone_numbers,unverified_phone_numbers,totp_secret,password_digest,password_hasher"

func sp(s string) *string { return &s }

func TestReadExport(t *testing.T) {
	email := func(addr string) ([]functions.ClerkEmailAddress, *string) {
		return []functions.ClerkEmailAddress{{ID: "export_primary_email", EmailAddress: addr}}, sp("export_primary_email")
	}
	adaEmails, adaPrimary := email("ada@example.com")
	tests := []struct {
		name    string
		csv     string
		want    []reconcile.ExportRow
		wantErr string // rows' errors, joined with |
	}{
		{
			name: "dashboard export",
			csv: exportHeader + "\n" +
				`user_1,Ada,Lovelace,ada,ada@example.com,,"ada@example.com,old@example.com",,,,SECRET,$2a$10$x,bcrypt` + "\n" +
				"user_2,,,,,+15551234567,,,,,,,\n",
			want: []reconcile.ExportRow{
				{Line: 2, User: functions.ClerkUser{ID: "user_1", FirstName: sp("Ada"), LastName: sp("Lovelace"), Username: sp("ada"), EmailAddresses: adaEmails, PrimaryEmailAddressID: adaPrimary, UpdatedAt: 1}},
				{Line: 3, User: functions.ClerkUser{ID: "user_2", UpdatedAt: 1}},
			},
		},
		{
			name: "timestamps, reordered columns, BOM, CRLF",
			csv: "\uFEFFprimary_email_address,id,created_at,updated_at\r\n" +
				"ada@example.com,user_1,2024-06-01T05:34:22Z,\r\n" +
				"ada@example.com,user_2,1716883200,1716883300000\r\n",
			want: []reconcile.ExportRow{
				{Line: 2, User: functions.ClerkUser{ID: "user_1", EmailAddresses: adaEmails, PrimaryEmailAddressID: adaPrimary, CreatedAt: 1717220062000, UpdatedAt: 1717220062000}},
				{Line: 3, User: functions.ClerkUser{ID: "user_2", EmailAddresses: adaEmails, PrimaryEmailAddressID: adaPrimary, CreatedAt: 1716883200000, UpdatedAt: 1716883300000}},
			},
		},
		{
			name: "bad rows kept with their error",
			csv:  "id,first_name,created_at\n,Nobody,\nuser_3,Bad,yesterday\nuser_4\n",
			want: []reconcile.ExportRow{
				{Line: 2, User: functions.ClerkUser{FirstName: sp("Nobody"), UpdatedAt: 1}},
				{Line: 3, User: functions.ClerkUser{ID: "user_3", FirstName: sp("Bad"), UpdatedAt: 1}},
				{Line: 4, User: functions.ClerkUser{ID: "user_4", UpdatedAt: 1}},
			},
			wantErr: `no id|created_at: "yesterday" is neither RFC 3339 nor a Unix time|`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := reconcile.ReadExport(strings.NewReader(tt.csv))
			if err != nil {
				t.Fatalf("ReadExport = %v", err)
			}
			var errs []string
			for i := range got {
				e := ""
				if got[i].Err != nil {
					e = got[i].Err.Error()
				}
				errs = append(errs, e)
				got[i].Err = nil
			}
			if tt.wantErr != "" && strings.Join(errs, "|") != tt.wantErr {
				t.Errorf("row errors = %q; want %q", strings.Join(errs, "|"), tt.wantErr)
			}
			if tt.wantErr == "" && strings.Join(errs, "") != "" {
				t.Errorf("row errors = %q; want none", errs)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ReadExport =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestReadExportRejects(t *testing.T) {
	tests := []struct {
		name, csv string
		notExport bool
	}{
		{"empty file", "", true},
		{"no id column", "user_id,first_name\nuser_1,Ada\n", true},
		{"JSON, not CSV", `[{"id":"user_1"}]`, true},
		{"broken quotes", "id,first_name\nuser_1,\"Ada\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := reconcile.ReadExport(strings.NewReader(tt.csv))
			if err == nil {
				t.Fatalf("ReadExport = %d rows, nil; want an error", len(rows))
			}
			if got := errors.Is(err, reconcile.ErrNotAnExport); got != tt.notExport {
				t.Errorf("ReadExport error %v: errors.Is(ErrNotAnExport) = %t; want %t", err, got, tt.notExport)
			}
		})
	}
}

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
			rows, err := reconcile.ReadExport(strings.NewReader(tt.csv))
			if err != nil || len(rows) != 1 || rows[0].Err != nil {
				t.Fatalf("ReadExport = %+v, %v; want one good row", rows, err)
			}
			var got reconcile.Tally
			if err := rows[0].Import(t.Context(), st, &got); err != nil {
				t.Fatalf("Import = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("tally = %+v; want %+v", got, tt.want)
			}
			u := get(t, st, "user_01")
			if u.FullName != tt.wantName || u.ProfilePicture != stored.ImageURL || u.CreatedAt != tt.wantCreated {
				t.Errorf("user_01 after Import = full_name %q, profile_picture %q, created_at %d; want %q, %q (kept), %d",
					u.FullName, u.ProfilePicture, u.CreatedAt, tt.wantName, stored.ImageURL, tt.wantCreated)
			}
		})
	}
}

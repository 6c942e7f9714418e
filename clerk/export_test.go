package clerk_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"clerksync/clerk"
	"clerksync/store"
)

// exportHeader is the header of the Clerk Dashboard's user export.
const exportHeader = "id,first_name,last_name,username,primary_email_address,primary_phone_number,verified_email_addresses,unverified_email_addresses,verified_phone_numbers,unverified_phone_numbers,totp_secret,password_digest,password_hasher"

func TestReadExport(t *testing.T) {
	t.Parallel()
	email := func(addr string) ([]clerk.EmailAddress, *string) {
		return []clerk.EmailAddress{{ID: "export_primary_email", EmailAddress: addr}}, ptr("export_primary_email")
	}
	adaEmails, adaPrimary := email("ada@example.com")
	tests := []struct {
		name    string
		csv     string
		want    []clerk.ExportRow
		wantErr string // rows' errors, joined with |
	}{
		{
			name: "dashboard export",
			csv: exportHeader + "\n" +
				`user_1,Ada,Lovelace,ada,ada@example.com,,"ada@example.com,old@example.com",,,,SECRET,$2a$10$x,bcrypt` + "\n" +
				"user_2,,,,,+15551234567,,,,,,,\n",
			want: []clerk.ExportRow{
				{Line: 2, User: clerk.User{ID: "user_1", FirstName: ptr("Ada"), LastName: ptr("Lovelace"), Username: ptr("ada"), EmailAddresses: adaEmails, PrimaryEmailAddressID: adaPrimary, UpdatedAt: 1}},
				{Line: 3, User: clerk.User{ID: "user_2", UpdatedAt: 1}},
			},
		},
		{
			name: "timestamps, reordered columns, BOM, CRLF",
			csv: "\uFEFFprimary_email_address,id,created_at,updated_at\r\n" +
				"ada@example.com,user_1,2024-06-01T05:34:22Z,\r\n" +
				"ada@example.com,user_2,1716883200,1716883300000\r\n",
			want: []clerk.ExportRow{
				{Line: 2, User: clerk.User{ID: "user_1", EmailAddresses: adaEmails, PrimaryEmailAddressID: adaPrimary, CreatedAt: 1717220062000, UpdatedAt: 1717220062000}},
				{Line: 3, User: clerk.User{ID: "user_2", EmailAddresses: adaEmails, PrimaryEmailAddressID: adaPrimary, CreatedAt: 1716883200000, UpdatedAt: 1716883300000}},
			},
		},
		{
			name: "bad rows kept with their error",
			csv:  "id,first_name,created_at\n,Nobody,\nuser_3,Bad,yesterday\nuser_4\n",
			want: []clerk.ExportRow{
				{Line: 2, User: clerk.User{FirstName: ptr("Nobody"), UpdatedAt: 1}},
				{Line: 3, User: clerk.User{ID: "user_3", FirstName: ptr("Bad"), UpdatedAt: 1}},
				{Line: 4, User: clerk.User{ID: "user_4", UpdatedAt: 1}},
			},
			wantErr: `no id|created_at: "yesterday" is neither RFC 3339 nor a Unix time|`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := clerk.ReadExport(strings.NewReader(tt.csv))
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
	t.Parallel()
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
			rows, err := clerk.ReadExport(strings.NewReader(tt.csv))
			if err == nil {
				t.Fatalf("ReadExport = %d rows, nil; want an error", len(rows))
			}
			if got := errors.Is(err, clerk.ErrNotAnExport); got != tt.notExport {
				t.Errorf("ReadExport error %v: errors.Is(ErrNotAnExport) = %t; want %t", err, got, tt.notExport)
			}
		})
	}
}

// TestExportRowMissing: an import keeps the stored picture of every row (the export has none),
// and the stored created_at of a row without one.
func TestExportRowMissing(t *testing.T) {
	t.Parallel()
	rows, err := clerk.ReadExport(strings.NewReader("id,created_at\nuser_1,1700000000\nuser_2,\n"))
	if err != nil || len(rows) != 2 {
		t.Fatalf("ReadExport = %+v, %v; want two rows", rows, err)
	}
	if got, want := rows[0].Missing(), store.FieldProfilePicture; got != want {
		t.Errorf("Missing() of a row with created_at = %v; want %v", got, want)
	}
	if got, want := rows[1].Missing(), store.FieldProfilePicture|store.FieldCreatedAt; got != want {
		t.Errorf("Missing() of a row without created_at = %v; want %v", got, want)
	}
}

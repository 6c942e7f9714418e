package clerk

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"clerksync/store"
)

// ErrNotAnExport means the file is not a Clerk user export: no header, or no id column.
var ErrNotAnExport = errors.New("not a Clerk user export (CSV with an id column)")

// exportEmailID is the email id given to an export row's primary address, which the export
// lists by address only.
const exportEmailID = "export_primary_email"

// ExportRow is one user of a Clerk user export.
type ExportRow struct {
	// Line is the row's line number in the file (the header is line 1).
	Line int
	// User is the row as Clerk's user data. The export has no image_url, so ImageURL stays
	// nil, and CreatedAt is 0 when the row has no created_at (see Missing). UpdatedAt is the
	// row's updated_at, else its created_at, else 1 (older than anything stored): an export
	// row without a timestamp only adds users the database lacks, and never replaces data the
	// webhooks or the API wrote.
	User User
	// Err says why the row cannot be imported (nil when it can).
	Err error
}

// Missing returns the stored fields the row does not carry, whose stored values an import of
// it keeps (store.User.Unknown): the profile picture always (the export has none), and
// created_at when the row has none. It cannot fail.
func (row ExportRow) Missing() store.Fields {
	missing := store.FieldProfilePicture
	if row.User.CreatedAt == 0 {
		missing |= store.FieldCreatedAt
	}
	return missing
}

// ReadExport reads a user export CSV as the Clerk Dashboard writes it (Settings -> User
// exports): a header row naming the columns, then one row per user. It uses id, first_name,
// last_name, username, primary_email_address, and created_at or updated_at when present
// (RFC 3339, or Unix seconds or milliseconds); other columns (phone numbers, password digests,
// TOTP secrets) are ignored and never kept. A row that cannot be imported is returned with Err
// set. It returns an error wrapping ErrNotAnExport when the header has no id column, and the
// CSV reader's error when the file is not valid CSV.
func ReadExport(r io.Reader) ([]ExportRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: the file is empty", ErrNotAnExport)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrNotAnExport, err)
	}
	col := map[string]int{}
	for i, name := range header {
		name = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\uFEFF")))
		if _, dup := col[name]; !dup {
			col[name] = i
		}
	}
	if _, ok := col["id"]; !ok {
		return nil, fmt.Errorf("%w: the header %q has no id column", ErrNotAnExport, strings.Join(header, ","))
	}
	field := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var rows []ExportRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, fmt.Errorf("read export: %w", err)
		}
		line, _ := cr.FieldPos(0)
		row := ExportRow{Line: line}
		u := User{
			ID:        field(rec, "id"),
			FirstName: nonEmpty(field(rec, "first_name")),
			LastName:  nonEmpty(field(rec, "last_name")),
			Username:  nonEmpty(field(rec, "username")),
		}
		if email := field(rec, "primary_email_address"); email != "" {
			u.EmailAddresses = []EmailAddress{{ID: exportEmailID, EmailAddress: email}}
			u.PrimaryEmailAddressID = nonEmpty(exportEmailID)
		}
		created, cerr := exportTime(field(rec, "created_at"))
		updated, uerr := exportTime(field(rec, "updated_at"))
		u.CreatedAt = created
		switch {
		case updated > 0:
			u.UpdatedAt = updated
		case created > 0:
			u.UpdatedAt = created
		default:
			u.UpdatedAt = 1
		}
		switch {
		case u.ID == "":
			row.Err = errors.New("no id")
		case cerr != nil:
			row.Err = fmt.Errorf("created_at: %w", cerr)
		case uerr != nil:
			row.Err = fmt.Errorf("updated_at: %w", uerr)
		}
		row.User = u
		rows = append(rows, row)
	}
}

// exportTime reads a timestamp cell as Unix milliseconds: RFC 3339, or a Unix time in seconds
// or milliseconds. It returns 0 for an empty cell and an error for an unreadable one.
func exportTime(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
		if n < 100_000_000_000 { // seconds
			n *= 1000
		}
		return n, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return 0, fmt.Errorf("%q is neither RFC 3339 nor a Unix time", v)
	}
	return t.UnixMilli(), nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

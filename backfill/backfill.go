// Package backfill imports every Clerk user into the users collection once, for the backfill
// command: from Clerk's Backend API, page by page, and then every organization and its
// memberships (FromAPI), or from the rows of a Clerk user export, which has users only
// (FromExport). Each goes through the store's guarded upsert (Import, ImportRow,
// ImportOrganization, ImportMembership), so a backfill is safe to run twice, or to interrupt
// and run again: nothing is ever written over newer data or a tombstone, and nothing is ever
// deleted. FromAPI and FromExport first insert the users of each page (batch of rows) that the
// database does not hold, in one request (a first import's fast path), and write the others
// through the guarded upsert. It counts what it did to each (Tally), shows its progress as it
// goes (Progress: a bar on a terminal, plain lines otherwise), and ends with a summary
// (Tally.WriteSummary).
//
// It makes no safety check of its own: the caller checks that the secret key reads the Clerk
// instance the collection follows (reconcile.Reconciler.CheckImport) before FromAPI.
package backfill

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"clerksync/clerk"
	"clerksync/store"
)

// Lister reads one page of Clerk's users, organizations or an organization's memberships.
// *clerk.API implements it.
type Lister interface {
	// ListUsers returns up to limit users from offset on, in a stable order.
	ListUsers(ctx context.Context, limit, offset int) (clerk.UserPage, error)
	// CountUsers returns how many users Clerk has in all.
	CountUsers(ctx context.Context) (int64, error)
	// ListOrganizations returns up to limit organizations from offset on, in a stable order,
	// with how many Clerk has in all, or an error wrapping clerk.ErrOrganizationsNotEnabled
	// when the instance has organizations turned off.
	ListOrganizations(ctx context.Context, limit, offset int) (clerk.OrganizationPage, error)
	// ListMemberships returns up to limit memberships of the organization orgID from offset
	// on, in a stable order (userIDs: nil), or an error wrapping
	// clerk.ErrOrganizationNotFound when Clerk has no such organization.
	ListMemberships(ctx context.Context, orgID string, userIDs []string, limit, offset int) (clerk.MembershipPage, error)
}

// FromAPI pages through Clerk's users, pageSize (at least 1) at a time, and imports each into
// st as Import does, a page at a time: the page's users st does not hold in one bulk insert,
// the others through the guarded upsert (see importPage); then through Clerk's organizations,
// importing each (ImportOrganization) and then its memberships (ImportMembership), page by
// page. It shows the progress on p (which it gives the totals Clerk reports: the users'
// counted once, at the start; a count that fails leaves the total unknown, and the first page
// says why if Clerk cannot be read). An instance with organizations turned off has none to
// import (OrganizationsNotEnabled). It returns what it counted; on failure, what it counted so
// far and the first error of Clerk, the network or the database (wrapping
// store.ErrDatabase), which stops it. It does not finish p.
func FromAPI(ctx context.Context, st Store, api Lister, pageSize int, p *Progress) (Tally, error) {
	var tally Tally
	if n, err := api.CountUsers(ctx); err == nil {
		p.total = int(n)
	}
	for offset := 0; ; offset += pageSize {
		page, err := api.ListUsers(ctx, pageSize, offset)
		if err != nil {
			return tally, err
		}
		p.total = max(p.total, tally.Total()+len(page.Users))
		if err := importPage(ctx, st, page.Users, &tally, p); err != nil {
			return tally, err
		}
		if len(page.Users) < pageSize {
			break
		}
	}
	tally.Organizations, tally.Memberships = &Tally{}, &Tally{}
	for offset := 0; ; offset += pageSize {
		page, err := api.ListOrganizations(ctx, pageSize, offset)
		if offset == 0 && errors.Is(err, clerk.ErrOrganizationsNotEnabled) {
			tally.Organizations, tally.Memberships, tally.OrganizationsNotEnabled = nil, nil, true
			return tally, nil
		}
		if err != nil {
			return tally, err
		}
		p.orgTotal = max(int(page.Total), tally.Organizations.Total()+len(page.Organizations))
		for _, o := range page.Organizations {
			if err := ImportOrganization(ctx, st, o, tally.Organizations); err != nil {
				return tally, err
			}
			if err := importMemberships(ctx, st, api, strings.TrimSpace(o.ID), pageSize, tally.Memberships); err != nil {
				return tally, err
			}
			p.updateOrgs(&tally)
		}
		if len(page.Organizations) < pageSize {
			return tally, nil
		}
	}
}

// importMemberships pages through the memberships of the organization orgID ("": none),
// pageSize at a time, and imports each into st (ImportMembership), counting them in t. An
// organization Clerk no longer has (deleted since it was listed) has none. It returns the
// first error of Clerk, the network or the database.
func importMemberships(ctx context.Context, st Store, api Lister, orgID string, pageSize int, t *Tally) error {
	if orgID == "" {
		return nil
	}
	for offset := 0; ; offset += pageSize {
		page, err := api.ListMemberships(ctx, orgID, nil, pageSize, offset)
		if errors.Is(err, clerk.ErrOrganizationNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, m := range page.Memberships {
			if err := ImportMembership(ctx, st, m, t); err != nil {
				return err
			}
		}
		if len(page.Memberships) < pageSize {
			return nil
		}
	}
}

// exportBatch is how many rows of an export FromExport imports at a time: as many as a page of
// FromAPI at most.
const exportBatch = clerk.MaxPageSize

// FromExport imports the rows of a Clerk user export into st as ImportRow does, keeping the
// stored values of what the export lacks (the picture; created_at when a row has none), a batch
// of rows at a time, as FromAPI does a page (the rows' users st does not hold in one bulk
// insert, the others through the guarded upsert), and shows the progress on p. A row that
// cannot be imported (Err set) is logged with its line and counted as skipped (SkipInvalid).
// It returns what it counted; on failure, what it counted so far and the first database error
// (wrapping store.ErrDatabase), which stops it. It does not finish p.
func FromExport(ctx context.Context, st Store, rows []clerk.ExportRow, p *Progress, logger *slog.Logger) (Tally, error) {
	var tally Tally
	p.total = len(rows)
	for len(rows) > 0 {
		batch := rows[:min(exportBatch, len(rows))]
		rows = rows[len(batch):]
		users := make([]*store.User, len(batch))
		for i, row := range batch {
			if row.Err != nil {
				logger.Warn("export row skipped", "line", row.Line, "user_id", row.User.ID, "reason", row.Err)
				continue
			}
			if u, err := row.User.StoreUser(0); err == nil {
				u.Unknown |= row.Missing()
				u.Repair = true
				users[i] = &u
			}
		}
		if err := importUsers(ctx, st, users, &tally, p); err != nil {
			return tally, err
		}
	}
	return tally, nil
}

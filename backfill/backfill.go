// Package backfill imports every Clerk user into the users collection once, for the backfill
// command: from Clerk's Backend API, page by page (FromAPI), or from the rows of a Clerk user
// export (FromExport). Each user goes through the store's guarded upsert (Import, ImportRow),
// so a backfill is safe to run twice, or to interrupt and run again: a user is never written
// over newer data or a tombstone, and nothing is ever deleted. It counts what it did to each
// user (Tally), shows its progress as it goes (Progress: a bar on a terminal, plain lines
// otherwise), and ends with a summary (Tally.WriteSummary).
//
// It makes no safety check of its own: the caller checks that the secret key reads the Clerk
// instance the collection follows (reconcile.Reconciler.CheckImport) before FromAPI.
package backfill

import (
	"context"
	"log/slog"

	"clerksync/clerk"
)

// Lister reads one page of Clerk's users. *clerk.API implements it.
type Lister interface {
	// ListUsers returns up to limit users from offset on, in a stable order, with how many
	// users Clerk has in all.
	ListUsers(ctx context.Context, limit, offset int) (clerk.UserPage, error)
}

// FromAPI pages through Clerk's users, pageSize (at least 1) at a time, and imports each into
// st (Import), showing the progress on p (which it gives the total Clerk reports). It returns
// what it counted; on failure, what it counted so far and the first error of Clerk, the
// network or the database (wrapping store.ErrDatabase), which stops it. It does not finish p.
func FromAPI(ctx context.Context, st Store, api Lister, pageSize int, p *Progress) (Tally, error) {
	var tally Tally
	for offset := 0; ; offset += pageSize {
		page, err := api.ListUsers(ctx, pageSize, offset)
		if err != nil {
			return tally, err
		}
		p.total = max(int(page.Total), tally.Total()+len(page.Users))
		for _, u := range page.Users {
			if err := Import(ctx, st, u, &tally); err != nil {
				return tally, err
			}
			p.update(&tally)
		}
		if len(page.Users) < pageSize {
			return tally, nil
		}
	}
}

// FromExport imports the rows of a Clerk user export into st (ImportRow), keeping the stored
// values of what the export lacks (the picture; created_at when a row has none), and shows
// the progress on p. A row that cannot be imported (Err set) is logged with its line and
// counted as skipped (SkipInvalid). It returns what it counted; on failure, what it counted so
// far and the first database error (wrapping store.ErrDatabase), which stops it. It does not
// finish p.
func FromExport(ctx context.Context, st Store, rows []clerk.ExportRow, p *Progress, logger *slog.Logger) (Tally, error) {
	var tally Tally
	p.total = len(rows)
	for _, row := range rows {
		if row.Err != nil {
			logger.Warn("export row skipped", "line", row.Line, "user_id", row.User.ID, "reason", row.Err)
			tally.Skip(SkipInvalid)
		} else if err := ImportRow(ctx, st, row, &tally); err != nil {
			return tally, err
		}
		p.update(&tally)
	}
	return tally, nil
}

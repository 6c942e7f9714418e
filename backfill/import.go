package backfill

import (
	"context"
	"errors"
	"fmt"

	"clerksync/clerk"
	"clerksync/store"
)

// Store is the storage a backfill writes to. *store.Store implements it.
type Store interface {
	// UpsertUser writes u unless the stored user is as new or newer, or deleted.
	UpsertUser(ctx context.Context, u store.User) (store.Outcome, error)
	// Get returns the stored user, or store.ErrNotFound.
	Get(ctx context.Context, id string) (store.User, error)
}

// Import writes one Clerk user through the guarded upsert and counts the outcome in t, so
// that importing is safe to repeat or to interrupt and rerun: a user is never written over
// newer data or a tombstone. It returns an error wrapping store.ErrDatabase when the database
// fails (the import should stop); a user that cannot be written is counted as skipped.
func Import(ctx context.Context, st Store, c clerk.User, t *Tally) error {
	return importUser(ctx, st, c, 0, t)
}

// ImportRow writes the user of an export row as Import does, except that what the export
// lacks (row.Missing: the profile picture always, created_at when the row has none) is left
// as the database holds it. It counts the outcome in t, and returns an error wrapping
// store.ErrDatabase when the database fails (the import should stop); a user that cannot be
// written is counted as skipped. A row with Err set must not be imported.
func ImportRow(ctx context.Context, st Store, row clerk.ExportRow, t *Tally) error {
	return importUser(ctx, st, row.User, row.Missing(), t)
}

// importUser is Import for a source that lacks the fields in unknown: the stored values of
// those are kept.
func importUser(ctx context.Context, st Store, c clerk.User, unknown store.Fields, t *Tally) error {
	u, err := c.StoreUser(0)
	if err != nil {
		t.Skip(SkipInvalid)
		return nil
	}
	u.Unknown |= unknown
	out, err := st.UpsertUser(ctx, u)
	switch {
	case errors.Is(err, store.ErrInvalidUser):
		t.Skip(SkipInvalid)
		return nil
	case err != nil:
		return err
	}
	switch out {
	case store.Inserted:
		t.Created++
		return nil
	case store.Updated:
		t.Updated++
		return nil
	}
	// Skipped: a tombstone, or the same data or newer.
	cur, err := st.Get(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("read back user %s: %w", u.ID, err)
	}
	if cur.Deleted {
		t.Skip(SkipDeleted)
	} else {
		t.Unchanged++
	}
	return nil
}

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
	// UpsertUser writes u unless the stored user is as new or newer, or deleted; with
	// u.Repair, it also writes over a user as new whose Clerk fields differ.
	UpsertUser(ctx context.Context, u store.User) (store.Outcome, error)
	// InsertNewUsers inserts, in one request, the users the database does not hold yet, never
	// over a stored document (live or a tombstone), and returns the ids it did not insert:
	// those stored, those whose username another user holds, and repeated ids.
	InsertNewUsers(ctx context.Context, users []store.User) (notInserted []string, err error)
	// Get returns the stored user, or store.ErrNotFound.
	Get(ctx context.Context, id string) (store.User, error)
	// UpsertOrganization writes o unless the stored organization is as new or newer, or
	// deleted.
	UpsertOrganization(ctx context.Context, o store.Organization) (store.Outcome, error)
	// GetOrganization returns the stored organization, or store.ErrNotFound.
	GetOrganization(ctx context.Context, id string) (store.Organization, error)
	// UpsertMembership writes m unless the stored membership is as new or newer, or
	// deleted; a membership of a deleted organization or user is stored as a tombstone.
	UpsertMembership(ctx context.Context, m store.Membership) (store.Outcome, error)
	// GetMembership returns the stored membership, or store.ErrNotFound.
	GetMembership(ctx context.Context, id string) (store.Membership, error)
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
// those are kept. It writes as a repair (store.User.Repair): Clerk's record also rewrites a
// stored user of the same updated_at whose Clerk fields differ, such as one stored by an
// earlier version of the service.
func importUser(ctx context.Context, st Store, c clerk.User, unknown store.Fields, t *Tally) error {
	u, err := c.StoreUser(0)
	if err != nil {
		t.Skip(SkipInvalid)
		return nil
	}
	u.Unknown |= unknown
	u.Repair = true
	return upsertUser(ctx, st, u, t)
}

// importPage writes a page of Clerk users as Import writes each, and counts each in t and on p,
// in the page's order, in fewer requests (importUsers). It returns an error wrapping
// store.ErrDatabase when the database fails: the import should stop.
func importPage(ctx context.Context, st Store, page []clerk.User, t *Tally, p *Progress) error {
	users := make([]*store.User, len(page))
	for i, c := range page {
		if u, err := c.StoreUser(0); err == nil {
			u.Repair = true
			users[i] = &u
		}
	}
	return importUsers(ctx, st, users, t, p)
}

// importUsers writes users (nil: one that cannot be imported, counted as skipped invalid), each
// a repair with what its source lacks in Unknown, as upsertUser writes each, and counts each in
// t and on p in the order given, but in fewer requests: first every user (the first time its id
// appears among them) in one bulk insert of the users the database does not hold
// (InsertNewUsers), counted as created; then each of the others through the guarded upsert
// (upsertUser), which settles them as before: a stored user (older, as new or newer, or a
// tombstone), a user whose username another user holds (the username rule of
// store.Store.UpsertUser), an id given twice. So a first import takes one request for its new
// users, and a rerun, an update or a tombstone is written exactly as before. It returns an
// error wrapping store.ErrDatabase when the database fails: the import should stop, and the
// users counted so far are in t (none when the bulk insert failed, though it may have
// inserted some: a rerun counts them as unchanged).
func importUsers(ctx context.Context, st Store, users []*store.User, t *Tally, p *Progress) error {
	first := make([]bool, len(users)) // the first of the users with its id
	fresh := make([]store.User, 0, len(users))
	seen := make(map[string]bool, len(users))
	for i, u := range users {
		if u != nil && !seen[u.ID] {
			seen[u.ID], first[i] = true, true
			fresh = append(fresh, *u)
		}
	}
	refused := make(map[string]bool)
	notInserted, err := st.InsertNewUsers(ctx, fresh)
	switch {
	case errors.Is(err, store.ErrInvalidUser):
		// A user the insert does not take (StoreUser gives each an id, so none should be):
		// every user goes through the guarded upsert, which tells which.
		for _, u := range fresh {
			refused[u.ID] = true
		}
	case err != nil:
		return err
	}
	for _, id := range notInserted {
		refused[id] = true
	}
	for i, u := range users {
		switch {
		case u == nil:
			t.Skip(SkipInvalid)
		case first[i] && !refused[u.ID]:
			t.Created++
		default:
			if err := upsertUser(ctx, st, *u, t); err != nil {
				return err
			}
		}
		p.update(t)
	}
	return nil
}

// upsertUser writes u, a user ready for the store (a repair, with what its source lacks in
// u.Unknown), through the guarded upsert and counts the outcome in t. It returns an error
// wrapping store.ErrDatabase when the database fails; a user that cannot be written is counted
// as skipped.
func upsertUser(ctx context.Context, st Store, u store.User, t *Tally) error {
	out, err := st.UpsertUser(ctx, u)
	return countImport(ctx, t, "user "+u.ID, out, err, store.ErrInvalidUser, func(ctx context.Context) (bool, error) {
		cur, err := st.Get(ctx, u.ID)
		return cur.Deleted, err
	})
}

// ImportOrganization writes one Clerk organization through the guarded upsert, as Import does
// a user, and counts the outcome in t. It returns an error wrapping store.ErrDatabase when the
// database fails (the import should stop); an organization that cannot be written is counted
// as skipped.
func ImportOrganization(ctx context.Context, st Store, c clerk.Organization, t *Tally) error {
	o, err := c.StoreOrganization(0)
	if err != nil {
		t.Skip(SkipInvalid)
		return nil
	}
	out, err := st.UpsertOrganization(ctx, o)
	return countImport(ctx, t, "organization "+o.ID, out, err, store.ErrInvalidOrganization, func(ctx context.Context) (bool, error) {
		cur, err := st.GetOrganization(ctx, o.ID)
		return cur.Deleted, err
	})
}

// ImportMembership writes one Clerk membership through the guarded upsert, as Import does a
// user, and counts the outcome in t: a membership stored as a tombstone, because it was
// deleted or its organization or user was, is skipped as deleted. It returns an error
// wrapping store.ErrDatabase when the database fails (the import should stop); a membership
// that cannot be written is counted as skipped.
func ImportMembership(ctx context.Context, st Store, c clerk.OrganizationMembership, t *Tally) error {
	m, err := c.StoreMembership(0)
	if err != nil {
		t.Skip(SkipInvalid)
		return nil
	}
	out, err := st.UpsertMembership(ctx, m)
	return countImport(ctx, t, "membership "+m.ID, out, err, store.ErrInvalidMembership, func(ctx context.Context) (bool, error) {
		cur, err := st.GetMembership(ctx, m.ID)
		return cur.Deleted, err
	})
}

// countImport counts in t the outcome (out, err) of the upsert of what ("user user_1"), err
// wrapping invalid for one that cannot be stored; a Skipped one is read back (deleted) to tell
// a tombstone from the same or newer data. It returns err when the database failed, or the
// read's error.
func countImport(ctx context.Context, t *Tally, what string, out store.Outcome, err, invalid error,
	deleted func(ctx context.Context) (bool, error)) error {
	switch {
	case errors.Is(err, invalid):
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
	gone, err := deleted(ctx)
	if err != nil {
		return fmt.Errorf("read back %s: %w", what, err)
	}
	if gone {
		t.Skip(SkipDeleted)
	} else {
		t.Unchanged++
	}
	return nil
}

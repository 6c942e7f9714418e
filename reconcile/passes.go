package reconcile

import (
	"context"
	"errors"
	"fmt"

	"clerksync/clerk"
	"clerksync/store"
)

// kind is what Clerk's users and organizations differ in, for what the users' pass (Run), the
// organizations' pass (RunOrganizations) and CheckImport share: reading Clerk's list, writing,
// confirming a deletion. T is Clerk's object.
type kind[T any] struct {
	// plural and singular name the kind in log lines and errors: users, user.
	plural, singular string
	// idKey is the log attribute of an id: user_id, org_id.
	idKey string
	// id returns an object's id.
	id func(c T) string
	// list reads at most limit objects of Clerk's list from offset on.
	list func(ctx context.Context, limit, offset int) ([]T, error)
	// turnedOff is what list's error wraps when the instance has the kind turned off; nil
	// when it cannot be.
	turnedOff error
	// live returns the ids of the live objects in the database.
	live func(ctx context.Context) ([]string, error)
	// get reads one object from Clerk: an error wrapping notFound when Clerk has none.
	get      func(ctx context.Context, id string) (T, error)
	notFound error
	// write writes one object through the guarded upsert (see writeClerk).
	write func(ctx context.Context, c T) (store.Outcome, error)
	// remove turns the stored object id into a tombstone deleted at deletedAt.
	remove func(ctx context.Context, id string, deletedAt int64) (store.Outcome, error)
	// removedToo ends the log line of a deletion: what went with the object.
	removedToo string
}

// usersKind is the users' kind, read and written through r.
func usersKind(r *Reconciler) kind[clerk.User] {
	return kind[clerk.User]{
		plural: "users", singular: "user", idKey: "user_id",
		id: func(u clerk.User) string { return u.ID },
		list: func(ctx context.Context, limit, offset int) ([]clerk.User, error) {
			p, err := r.api.ListUsers(ctx, limit, offset)
			return p.Users, err
		},
		live:     r.users.LiveUserIDs,
		get:      r.api.GetUser,
		notFound: clerk.ErrUserNotFound,
		write:    r.writeUser,
		remove:   r.users.DeleteUser,
	}
}

// organizationsKind is the organizations' kind, read and written through r. An
// organization's deletion takes its memberships with it.
func organizationsKind(r *Reconciler) kind[clerk.Organization] {
	return kind[clerk.Organization]{
		plural: "organizations", singular: "organization", idKey: "org_id",
		id: func(o clerk.Organization) string { return o.ID },
		list: func(ctx context.Context, limit, offset int) ([]clerk.Organization, error) {
			p, err := r.api.ListOrganizations(ctx, limit, offset)
			return p.Organizations, err
		},
		turnedOff:  clerk.ErrOrganizationsNotEnabled,
		live:       r.users.LiveOrganizationIDs,
		get:        r.api.GetOrganization,
		notFound:   clerk.ErrOrganizationNotFound,
		write:      r.writeOrganization,
		remove:     r.users.DeleteOrganization,
		removedToo: ", with its memberships",
	}
}

// survey reads Clerk's whole list of kind (users, organizations), one page at a time through
// readPage, and returns the ids on it. It returns the error of the first page that cannot be
// read, or one when the list has more than maxPages pages.
func (r *Reconciler) survey(ctx context.Context, kind string, readPage func(ctx context.Context, offset int) (surveyPage, error)) ([]string, error) {
	var ids []string
	for offset, pages := 0, 0; ; offset, pages = offset+r.cfg.PageSize, pages+1 {
		if pages >= maxPages {
			return nil, fmt.Errorf("reconcile: more than %d pages of %d %s; raise the page size", maxPages, r.cfg.PageSize, kind)
		}
		page, err := readPage(ctx, offset)
		if err != nil {
			return nil, err
		}
		ids = append(ids, page.IDs...)
		if page.Count < r.cfg.PageSize {
			return ids, nil
		}
	}
}

// surveyOne reads the page of Clerk's list of k at offset, keeping only the ids; NotEnabled
// (and no id) when the instance has k turned off. It returns Clerk's or the network's error.
func surveyOne[T any](ctx context.Context, r *Reconciler, k kind[T], offset int) (surveyPage, error) {
	page, err := k.list(ctx, r.cfg.PageSize, offset)
	if k.turnedOff != nil && errors.Is(err, k.turnedOff) {
		return surveyPage{NotEnabled: true}, nil
	}
	if err != nil {
		r.logger.Error("reading a page of Clerk "+k.plural+" failed", "offset", offset, "error", err)
		return surveyPage{}, err
	}
	return surveyPage{Count: len(page), IDs: pageIDs(k, page)}, nil
}

// pageIDs returns the ids of the objects on a page of Clerk's list, but empty ones.
func pageIDs[T any](k kind[T], page []T) []string {
	ids := make([]string, 0, len(page))
	for _, c := range page {
		if id := k.id(c); id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// writeClerk writes s, Clerk's object what (user, organization, membership) as converted for
// the store with the conversion's error convErr, through upsert, the store's guarded upsert.
// An object that cannot be written (convErr, or the store refusing it) is logged with ids;
// the error is returned.
func writeClerk[S any](ctx context.Context, r *Reconciler, what string, s S, convErr error,
	upsert func(context.Context, S) (store.Outcome, error), ids ...any) (store.Outcome, error) {
	err := convErr
	if err == nil {
		var out store.Outcome
		if out, err = upsert(ctx, s); err == nil {
			return out, nil
		}
	}
	if !errors.Is(err, store.ErrDatabase) {
		r.logger.Error("Clerk "+what+" cannot be written; left out", append(ids, "error", err)...)
	}
	return "", err
}

// writeUser writes one Clerk user through the guarded upsert, as a repair (store.User.Repair):
// Clerk's record also rewrites a stored user of the same updated_at whose Clerk fields differ,
// such as one stored by an earlier version of the service. A user that cannot be written (no
// id or updated_at) is logged; its error is returned.
func (r *Reconciler) writeUser(ctx context.Context, c clerk.User) (store.Outcome, error) {
	u, err := c.StoreUser(0)
	u.Repair = true
	return writeClerk(ctx, r, "user", u, err, r.users.UpsertUser, "user_id", c.ID)
}

// writeOrganization writes one Clerk organization through the guarded upsert. One that cannot
// be written (no id or updated_at) is logged; its error is returned.
func (r *Reconciler) writeOrganization(ctx context.Context, c clerk.Organization) (store.Outcome, error) {
	o, err := c.StoreOrganization(0)
	return writeClerk(ctx, r, "organization", o, err, r.users.UpsertOrganization, "org_id", c.ID)
}

// writeMembership writes one Clerk membership through the guarded upsert. One that cannot be
// written (no id, organization id, user id or updated_at) is logged; its error is returned.
func (r *Reconciler) writeMembership(ctx context.Context, c clerk.OrganizationMembership) (store.Outcome, error) {
	m, err := c.StoreMembership(0)
	return writeClerk(ctx, r, "membership", m, err, r.users.UpsertMembership, "membership_id", c.ID, "org_id", c.Organization.ID)
}

// allowDeletions is the safety cap on deletions: it applies to n deletion candidates of kind
// ("users", "organizations", "memberships") when the database had liveBefore live ones before
// the run, and reports whether they may go (at most MaxDeleteShare of liveBefore, or any
// number with AllowMassDelete). It logs what it decided and, when it refuses, what to check.
func (r *Reconciler) allowDeletions(kind string, n, liveBefore int) bool {
	if n == 0 {
		return true
	}
	attrs := []any{"missing_from_clerk", n, "live_" + kind + "_before_run", liveBefore, "max_delete_share", r.cfg.MaxDeleteShare}
	if float64(n) > r.cfg.MaxDeleteShare*float64(liveBefore) {
		if !r.cfg.AllowMassDelete {
			r.logger.Warn("reconciliation refuses a mass deletion of "+kind+": deleting none of them. Check CLERK_SECRET_KEY names the right Clerk instance; "+
				"if these "+kind+" really are gone, "+allowOnce, attrs...)
			return false
		}
		r.logger.Warn("mass deletion of "+kind+" allowed for this run (--allow-mass-delete)", attrs...)
	}
	r.logger.Info("live "+kind+" missing from Clerk's list; confirming each with Clerk before deleting", attrs...)
	return true
}

// confirmGone asks Clerk for the object id of k: a 404 turns it into a tombstone (with what
// goes with it, as Clerk's deletion event would), an object Clerk still has is written. It
// counts the outcome in res, and returns an error when Clerk cannot be asked or the database
// fails (an object that cannot be written is counted as Failed).
func confirmGone[T any](ctx context.Context, r *Reconciler, k kind[T], id string, res *deletionResult) error {
	c, err := k.get(ctx, id)
	if errors.Is(err, k.notFound) {
		out, err := k.remove(ctx, id, r.cfg.Now().UnixMilli())
		if err != nil {
			r.logger.Error("deleting the "+k.singular+" missing from Clerk failed", k.idKey, id, "error", err)
			return err
		}
		if out == store.Deleted {
			res.Deleted++
			r.logger.Info(k.singular+" missing from Clerk deleted"+k.removedToo, k.idKey, id)
		}
		return nil
	}
	if err != nil {
		r.logger.Error("confirming a deletion with Clerk failed", k.idKey, id, "error", err)
		return err
	}
	out, err := k.write(ctx, c)
	return res.stillInClerk(out, err)
}

package functions

import (
	"context"
	"strings"

	"clerksync/clerk"
	"clerksync/store"
	"clerksync/syncevent"
)

// DeleteOrganization is delete-organization-with-clerk, run for each
// clerk/organization.deleted event (whose data is only the id and the slug). It turns the
// organization into a tombstone that no later create or update brings back, and deletes its
// memberships, including those whose events arrive later; deleting an organization the
// database never saw succeeds (and leaves a tombstone). The deletion time is the event's ts. It
// returns a NoRetryError for data it cannot read as Clerk's deleted organization, without an
// organization id, or that the store refuses, and the store's error (which Inngest retries)
// when the database fails.
func (f *Functions) DeleteOrganization(ctx context.Context, in Input) (any, error) {
	return run(ctx, f, DeleteOrganizationID, in, write[clerk.DeletedOrganization, deletion]{
		step: "delete-organization", noun: "organization", deletes: true, bad: clerk.ErrBadOrganization,
		ids: func(d clerk.DeletedOrganization) []any { return []any{"org_id", strings.TrimSpace(d.ID)} },
		prepare: func(d clerk.DeletedOrganization, ts int64) (deletion, error) {
			id, err := d.OrganizationID()
			if err != nil {
				return deletion{}, err
			}
			return deletionAt(id, ts), nil
		},
		object: syncevent.ObjectOrganization, id: func(d deletion) string { return d.id },
		apply: func(ctx context.Context, d deletion) (store.Change, error) {
			return f.orgs.DeleteOrganizationChange(ctx, d.id, d.at)
		},
		result: func(_ clerk.DeletedOrganization, d deletion, out store.Outcome) any {
			return OrganizationResult{OrganizationID: d.id, Outcome: out}
		},
	})
}

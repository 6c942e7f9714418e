package functions

import (
	"context"
	"strings"

	"clerksync/clerk"
	"clerksync/store"
	"clerksync/syncevent"
)

// DeleteMembership is delete-membership-with-clerk, run for each
// clerk/organizationMembership.deleted event (whose data is the whole membership as it was).
// It turns the membership into a tombstone that no later create or update brings back;
// deleting a membership the database never saw succeeds (and leaves a tombstone). Only the
// membership's id is needed; the deletion time is the event's ts. It returns a NoRetryError
// for data it cannot read as a Clerk membership, without a membership id, or that the store
// refuses, and the store's error (which Inngest retries) when the database fails.
func (f *Functions) DeleteMembership(ctx context.Context, in Input) (any, error) {
	return run(ctx, f, DeleteMembershipID, in, write[clerk.OrganizationMembership, deletion]{
		step: "delete-membership", noun: "membership", deletes: true, bad: clerk.ErrBadMembership,
		ids: membershipIDs,
		prepare: func(m clerk.OrganizationMembership, ts int64) (deletion, error) {
			id, err := m.MembershipID()
			if err != nil {
				return deletion{}, err
			}
			return deletionAt(id, ts), nil
		},
		object: syncevent.ObjectMembership, id: func(d deletion) string { return d.id },
		apply: func(ctx context.Context, d deletion) (store.Change, error) {
			return f.orgs.DeleteMembershipChange(ctx, d.id, d.at)
		},
		result: func(m clerk.OrganizationMembership, d deletion, out store.Outcome) any {
			return MembershipResult{
				MembershipID:   d.id,
				OrganizationID: strings.TrimSpace(m.Organization.ID),
				UserID:         strings.TrimSpace(m.PublicUserData.UserID),
				Outcome:        out,
			}
		},
	})
}

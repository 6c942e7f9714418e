package functions

import "context"

// UpdateMembership is update-membership-from-clerk, run for each
// clerk/organizationMembership.updated event (a role change). It replaces the stored membership
// when the event is newer (by data.updated_at), inserts it when the create has not arrived yet,
// and ignores stale or replayed events, deleted memberships, and memberships in a deleted
// organization or of a deleted user. It returns a NoRetryError for data it cannot read as a
// Clerk membership or without a membership, organization or user id (or anything to order it
// by), and the store's error (which Inngest retries) when the database fails.
func (f *Functions) UpdateMembership(ctx context.Context, in Input) (any, error) {
	return f.upsertMembership(ctx, UpdateMembershipID, in)
}

package functions

import "context"

// SyncMembership is sync-membership-from-clerk, run for each clerk/organizationMembership.created
// event. It inserts the membership (its id, organization id, user id and role), or updates it if
// the stored one is older; a membership already updated by a later event or deleted is left
// alone, and a membership in a deleted organization or of a deleted user does not become live.
// It returns a NoRetryError for data it cannot read as a Clerk membership or without a
// membership, organization or user id (or anything to order it by), and the store's error
// (which Inngest retries) when the database fails.
func (f *Functions) SyncMembership(ctx context.Context, in Input) (any, error) {
	return f.upsertMembership(ctx, SyncMembershipID, in)
}

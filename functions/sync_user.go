package functions

import "context"

// SyncUser is sync-user-from-clerk, run for each clerk/user.created event. It inserts the user,
// or updates it if the stored one is older; a user already updated by a later event or deleted
// is left alone. It returns a NoRetryError for data it cannot read as a Clerk user or without a
// user id, and the store's error (which Inngest retries) when the database fails.
func (f *Functions) SyncUser(ctx context.Context, in Input) (any, error) {
	return f.upsertUser(ctx, SyncUserID, in)
}

package functions

import "context"

// UpdateUser is update-user-from-clerk, run for each clerk/user.updated event. It replaces the
// stored user when the event is newer (by data.updated_at), inserts it when the create has not
// arrived yet, and ignores stale or replayed events and deleted users. It returns a
// NoRetryError for data it cannot read as a Clerk user or without a user id, and the store's
// error (which Inngest retries) when the database fails.
func (f *Functions) UpdateUser(ctx context.Context, in Input) (any, error) {
	return f.upsertUser(ctx, UpdateUserID, in)
}

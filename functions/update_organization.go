package functions

import "context"

// UpdateOrganization is update-organization-from-clerk, run for each
// clerk/organization.updated event. It replaces the stored organization when the event is
// newer (by data.updated_at), inserts it when the create has not arrived yet, and ignores stale
// or replayed events and deleted organizations. It returns a NoRetryError for data it cannot
// read as a Clerk organization or without an organization id (or anything to order it by), and
// the store's error (which Inngest retries) when the database fails.
func (f *Functions) UpdateOrganization(ctx context.Context, in Input) (any, error) {
	return f.upsertOrganization(ctx, UpdateOrganizationID, in)
}

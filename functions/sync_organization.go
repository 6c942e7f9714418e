package functions

import "context"

// SyncOrganization is sync-organization-from-clerk, run for each clerk/organization.created
// event. It inserts the organization, or updates it if the stored one is older; an
// organization already updated by a later event or deleted is left alone. It returns a
// NoRetryError for data it cannot read as a Clerk organization or without an organization id
// (or anything to order it by), and the store's error (which Inngest retries) when the
// database fails.
func (f *Functions) SyncOrganization(ctx context.Context, in Input) (any, error) {
	return f.upsertOrganization(ctx, SyncOrganizationID, in)
}

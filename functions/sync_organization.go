package functions

import (
	"context"

	"github.com/inngest/inngestgo"

	"clerksync/clerk"
)

// SyncOrganization is sync-organization-from-clerk, run for each clerk/organization.created
// event. It inserts the organization, or updates it if the stored one is older; an
// organization already updated by a later event or deleted is left alone. It returns a
// NoRetryError for data without an organization id (or anything to order it by), and the
// store's error (which Inngest retries) when the database fails.
func (f *Functions) SyncOrganization(ctx context.Context, in inngestgo.Input[clerk.Organization]) (any, error) {
	return f.upsertOrganization(ctx, SyncOrganizationID, in)
}

package functions

import (
	"context"
	"strings"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/step"

	"clerksync/clerk"
	"clerksync/store"
)

// DeleteOrganization is delete-organization-with-clerk, run for each
// clerk/organization.deleted event (whose data is only the id and the slug). It turns the
// organization into a tombstone that no later create or update brings back, and deletes its
// memberships, including those whose events arrive later; deleting an organization the
// database never saw succeeds (and leaves a tombstone). The deletion time is the event's ts. It
// returns a NoRetryError for data it cannot read as Clerk's deleted organization or without an
// organization id, and the store's error (which Inngest retries) when the database fails.
func (f *Functions) DeleteOrganization(ctx context.Context, in Input) (any, error) {
	evt := in.Event
	data, err := eventData[clerk.DeletedOrganization](evt, clerk.ErrBadOrganization)
	if err != nil {
		log := f.eventLogger(DeleteOrganizationID, evt.ID, in.InputCtx, "org_id", strings.TrimSpace(data.ID))
		log.Error("event data cannot be read; not retrying", "error", err)
		f.cfg.Metrics.FunctionRun(DeleteOrganizationID, OutcomeInvalid)
		return nil, inngestgo.NoRetryError(err)
	}
	id, err := data.OrganizationID()
	log := f.eventLogger(DeleteOrganizationID, evt.ID, in.InputCtx, "org_id", id)
	if err != nil {
		log.Error("event cannot be applied; not retrying", "error", err)
		f.cfg.Metrics.FunctionRun(DeleteOrganizationID, OutcomeInvalid)
		return nil, inngestgo.NoRetryError(err)
	}
	deletedAt := evt.Timestamp
	if deletedAt <= 0 {
		deletedAt = time.Now().UnixMilli()
	}
	outcome, err := step.Run(ctx, "delete-organization", func(ctx context.Context) (store.Outcome, error) {
		out, err := f.orgs.DeleteOrganization(ctx, id, deletedAt)
		if err != nil {
			log.Error("deleting organization failed; Inngest will retry", "error", err)
			f.cfg.Metrics.FunctionRun(DeleteOrganizationID, errorOutcome(err))
			return "", err
		}
		log.Info("organization deleted", "outcome", out)
		f.cfg.Metrics.FunctionRun(DeleteOrganizationID, string(out))
		return out, nil
	})
	if err != nil {
		return nil, retryUnlessInvalid(err)
	}
	return OrganizationResult{OrganizationID: id, Outcome: outcome}, nil
}

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

// DeleteMembership is delete-membership-with-clerk, run for each
// clerk/organizationMembership.deleted event (whose data is the whole membership as it was).
// It turns the membership into a tombstone that no later create or update brings back;
// deleting a membership the database never saw succeeds (and leaves a tombstone). Only the
// membership's id is needed; the deletion time is the event's ts. It returns a NoRetryError
// for data it cannot read as a Clerk membership or without a membership id, and the store's
// error (which Inngest retries) when the database fails.
func (f *Functions) DeleteMembership(ctx context.Context, in Input) (any, error) {
	evt := in.Event
	data, err := eventData[clerk.OrganizationMembership](evt, clerk.ErrBadMembership)
	log := f.eventLogger(DeleteMembershipID, evt.ID, in.InputCtx, membershipIDs(data)...)
	if err != nil {
		log.Error("event data cannot be read; not retrying", "error", err)
		f.cfg.Metrics.FunctionRun(DeleteMembershipID, OutcomeInvalid)
		return nil, inngestgo.NoRetryError(err)
	}
	id, err := data.MembershipID()
	if err != nil {
		log.Error("event cannot be applied; not retrying", "error", err)
		f.cfg.Metrics.FunctionRun(DeleteMembershipID, OutcomeInvalid)
		return nil, inngestgo.NoRetryError(err)
	}
	deletedAt := evt.Timestamp
	if deletedAt <= 0 {
		deletedAt = time.Now().UnixMilli()
	}
	outcome, err := step.Run(ctx, "delete-membership", func(ctx context.Context) (store.Outcome, error) {
		out, err := f.orgs.DeleteMembership(ctx, id, deletedAt)
		if err != nil {
			log.Error("deleting membership failed; Inngest will retry", "error", err)
			f.cfg.Metrics.FunctionRun(DeleteMembershipID, errorOutcome(err))
			return "", err
		}
		log.Info("membership deleted", "outcome", out)
		f.cfg.Metrics.FunctionRun(DeleteMembershipID, string(out))
		return out, nil
	})
	if err != nil {
		return nil, retryUnlessInvalid(err)
	}
	return MembershipResult{
		MembershipID:   id,
		OrganizationID: strings.TrimSpace(data.Organization.ID),
		UserID:         strings.TrimSpace(data.PublicUserData.UserID),
		Outcome:        outcome,
	}, nil
}

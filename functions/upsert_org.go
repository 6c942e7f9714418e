package functions

import (
	"context"
	"strings"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/step"

	"clerksync/clerk"
	"clerksync/store"
)

// OrganizationResult is what a run of an organization function returns; the Inngest dashboard
// shows it as the run's output.
type OrganizationResult struct {
	OrganizationID string        `json:"organization_id"`
	Outcome        store.Outcome `json:"outcome"`
}

// MembershipResult is what a run of a membership function returns; the Inngest dashboard shows
// it as the run's output.
type MembershipResult struct {
	MembershipID string `json:"membership_id"`
	// OrganizationID and UserID are the membership's, as its event names them (a deletion's
	// may be empty).
	OrganizationID string        `json:"organization_id,omitempty"`
	UserID         string        `json:"user_id,omitempty"`
	Outcome        store.Outcome `json:"outcome"`
}

// upsertOrganization is the body of sync-organization-from-clerk and
// update-organization-from-clerk: both write the organization through the same guarded upsert,
// so a create and an update are interchangeable and their order does not matter.
func (f *Functions) upsertOrganization(ctx context.Context, function string, in Input) (any, error) {
	evt := in.Event
	data, err := eventData[clerk.Organization](evt, clerk.ErrBadOrganization)
	log := f.eventLogger(function, evt.ID, in.InputCtx, "org_id", strings.TrimSpace(data.ID))
	if err != nil {
		log.Error("event data cannot be read; not retrying", "error", err)
		f.cfg.Metrics.FunctionRun(function, OutcomeInvalid)
		return nil, inngestgo.NoRetryError(err)
	}
	o, err := data.StoreOrganization(evt.Timestamp)
	if err != nil {
		log.Error("event cannot be stored; not retrying", "error", err)
		f.cfg.Metrics.FunctionRun(function, OutcomeInvalid)
		return nil, inngestgo.NoRetryError(err)
	}
	outcome, err := step.Run(ctx, "upsert-organization", func(ctx context.Context) (store.Outcome, error) {
		out, err := f.orgs.UpsertOrganization(ctx, o)
		if err != nil {
			log.Error("writing organization failed; Inngest will retry", "error", err)
			f.cfg.Metrics.FunctionRun(function, errorOutcome(err))
			return "", err
		}
		log.Info("organization written", "outcome", out, "updated_at", o.UpdatedAt)
		f.cfg.Metrics.FunctionRun(function, string(out))
		return out, nil
	})
	if err != nil {
		return nil, retryUnlessInvalid(err)
	}
	return OrganizationResult{OrganizationID: o.ID, Outcome: outcome}, nil
}

// upsertMembership is the body of sync-membership-from-clerk and update-membership-from-clerk:
// both write the membership through the same guarded upsert, which leaves no live membership in
// a deleted organization or of a deleted user, whatever the order the events arrive in.
func (f *Functions) upsertMembership(ctx context.Context, function string, in Input) (any, error) {
	evt := in.Event
	data, err := eventData[clerk.OrganizationMembership](evt, clerk.ErrBadMembership)
	log := f.eventLogger(function, evt.ID, in.InputCtx, membershipIDs(data)...)
	if err != nil {
		log.Error("event data cannot be read; not retrying", "error", err)
		f.cfg.Metrics.FunctionRun(function, OutcomeInvalid)
		return nil, inngestgo.NoRetryError(err)
	}
	m, err := data.StoreMembership(evt.Timestamp)
	if err != nil {
		log.Error("event cannot be stored; not retrying", "error", err)
		f.cfg.Metrics.FunctionRun(function, OutcomeInvalid)
		return nil, inngestgo.NoRetryError(err)
	}
	outcome, err := step.Run(ctx, "upsert-membership", func(ctx context.Context) (store.Outcome, error) {
		out, err := f.orgs.UpsertMembership(ctx, m)
		if err != nil {
			log.Error("writing membership failed; Inngest will retry", "error", err)
			f.cfg.Metrics.FunctionRun(function, errorOutcome(err))
			return "", err
		}
		log.Info("membership written", "outcome", out, "updated_at", m.UpdatedAt)
		f.cfg.Metrics.FunctionRun(function, string(out))
		return out, nil
	})
	if err != nil {
		return nil, retryUnlessInvalid(err)
	}
	return MembershipResult{MembershipID: m.ID, OrganizationID: m.OrgID, UserID: m.UserID, Outcome: outcome}, nil
}

// membershipIDs returns the log attributes of a membership event: the organization's, the
// membership's and the user's ids, as the event carries them (trimmed).
func membershipIDs(m clerk.OrganizationMembership) []any {
	return []any{
		"org_id", strings.TrimSpace(m.Organization.ID),
		"membership_id", strings.TrimSpace(m.ID),
		"user_id", strings.TrimSpace(m.PublicUserData.UserID),
	}
}

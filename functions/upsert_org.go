package functions

import (
	"context"
	"strings"

	"clerksync/clerk"
	"clerksync/store"
	"clerksync/syncevent"
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
	return run(ctx, f, function, in, write[clerk.Organization, store.Organization]{
		step: "upsert-organization", noun: "organization", bad: clerk.ErrBadOrganization,
		ids:     func(d clerk.Organization) []any { return []any{"org_id", strings.TrimSpace(d.ID)} },
		prepare: clerk.Organization.StoreOrganization,
		object:  syncevent.ObjectOrganization, id: func(o store.Organization) string { return o.ID },
		apply: func(ctx context.Context, o store.Organization) (store.Change, error) {
			return f.orgs.UpsertOrganizationChange(ctx, o)
		},
		logged: func(o store.Organization) []any { return []any{"updated_at", o.UpdatedAt} },
		result: func(_ clerk.Organization, o store.Organization, out store.Outcome) any {
			return OrganizationResult{OrganizationID: o.ID, Outcome: out}
		},
	})
}

// upsertMembership is the body of sync-membership-from-clerk and update-membership-from-clerk:
// both write the membership through the same guarded upsert, which leaves no live membership in
// a deleted organization or of a deleted user, whatever the order the events arrive in.
func (f *Functions) upsertMembership(ctx context.Context, function string, in Input) (any, error) {
	return run(ctx, f, function, in, write[clerk.OrganizationMembership, store.Membership]{
		step: "upsert-membership", noun: "membership", bad: clerk.ErrBadMembership,
		ids:     membershipIDs,
		prepare: clerk.OrganizationMembership.StoreMembership,
		object:  syncevent.ObjectMembership, id: func(m store.Membership) string { return m.ID },
		apply: func(ctx context.Context, m store.Membership) (store.Change, error) {
			return f.orgs.UpsertMembershipChange(ctx, m)
		},
		logged: func(m store.Membership) []any { return []any{"updated_at", m.UpdatedAt} },
		result: func(_ clerk.OrganizationMembership, m store.Membership, out store.Outcome) any {
			return MembershipResult{MembershipID: m.ID, OrganizationID: m.OrgID, UserID: m.UserID, Outcome: out}
		},
	})
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

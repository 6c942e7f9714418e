package reconcile

import (
	"context"
	"errors"

	"clerksync/clerk"
	"clerksync/store"
)

// OrganizationsSummary is what an organizations reconciliation did; the Inngest dashboard
// shows it as the run's output.
type OrganizationsSummary struct {
	// Pages counts the pages of organizations read (the write pass).
	Pages int `json:"pages"`
	// Organizations and Memberships count what the run did to each.
	Organizations Counts `json:"organizations"`
	Memberships   Counts `json:"memberships"`
	// RefusedForeign is true when the run wrote and deleted nothing because Clerk's list
	// shared fewer than MinSharedShare of the live organizations (a key for another
	// instance?).
	RefusedForeign bool `json:"refused_foreign"`
	// NotEnabled is true when the Clerk instance has organizations turned off: the run wrote
	// and deleted nothing.
	NotEnabled bool `json:"organizations_not_enabled,omitempty"`
	// Runs counts the Inngest runs the pass took, when more than one (0 otherwise).
	Runs int `json:"runs,omitempty"`
	// Continued is true in the output of a run that handed its pass on to the next run
	// (OrganizationsContinueEvent): the summary so far. The last run's output covers the
	// whole pass.
	Continued bool `json:"continued,omitempty"`
	// SkippedBusy is true when the run did nothing because another pass of the organizations
	// was going (one that spans several runs).
	SkippedBusy bool `json:"skipped_busy,omitempty"`
	// SkippedIncremental is true when the run did nothing because the RequestEvent that
	// started it asked for an incremental run (IncrementalField), which only the users have.
	SkippedIncremental bool `json:"skipped_incremental,omitempty"`
}

// Counts is what a reconciliation did to the users, the organizations or the memberships.
type Counts struct {
	// Seen counts those on Clerk's lists.
	Seen int `json:"seen"`
	// Inserted, Updated and Skipped count the upserts' outcomes (Skipped: the database had
	// that version or a newer one, or a tombstone; for a membership, also one stored as a
	// tombstone because its organization or user is deleted).
	Inserted int `json:"inserted"`
	Updated  int `json:"updated"`
	Skipped  int `json:"skipped"`
	// Failed counts those that could not be written (no usable data); each is logged.
	Failed int `json:"failed"`
	// Deleted counts the live ones Clerk no longer has, now tombstones (an organization's
	// memberships go with it, and are not counted here).
	Deleted int `json:"deleted"`
	// StillInClerk counts the deletion candidates Clerk still has; they are written instead.
	StillInClerk int `json:"still_in_clerk"`
	// Refused counts the deletions not made because they exceeded MaxDeleteShare.
	Refused int `json:"refused"`
}

// addWrites adds the upserts counted in w.
func (c *Counts) addWrites(w writeCounts) {
	c.Inserted += w.Inserted
	c.Updated += w.Updated
	c.Skipped += w.Skipped
	c.Failed += w.Failed
}

// addDeletions adds what delete steps did.
func (c *Counts) addDeletions(d deletionResult) {
	c.Deleted += d.Deleted
	c.StillInClerk += d.StillInClerk
	c.Inserted += d.Inserted
	c.Updated += d.Updated
	c.Skipped += d.Skipped
	c.Failed += d.Failed
}

// membershipRef names a membership: a deletion candidate of the memberships.
type membershipRef struct {
	ID     string
	OrgID  string
	UserID string
}

// confirmMembershipDeletion asks Clerk for the memberships of the candidate's user in its
// organization: when none has the candidate's id (or the organization is gone), the membership
// turns into a tombstone, as organizationMembership.deleted would; one Clerk still has is
// written. It counts the outcome in res, and returns an error when Clerk cannot be asked or
// the database fails (a membership that cannot be written is counted as Failed).
func (r *Reconciler) confirmMembershipDeletion(ctx context.Context, c membershipRef, res *deletionResult) error {
	page, err := r.api.ListMemberships(ctx, c.OrgID, []string{c.UserID}, r.cfg.PageSize, 0)
	if err != nil && !errors.Is(err, clerk.ErrOrganizationNotFound) {
		r.logger.Error("confirming a deletion with Clerk failed", "membership_id", c.ID, "org_id", c.OrgID, "user_id", c.UserID, "error", err)
		return err
	}
	for _, m := range page.Memberships {
		if m.ID == c.ID {
			out, err := r.writeMembership(ctx, m)
			return res.stillInClerk(out, err)
		}
	}
	out, err := r.users.DeleteMembership(ctx, c.ID, r.cfg.Now().UnixMilli())
	if err != nil {
		r.logger.Error("deleting a membership missing from Clerk failed", "membership_id", c.ID, "error", err)
		return err
	}
	if out == store.Deleted {
		res.Deleted++
		r.logger.Info("membership missing from Clerk deleted", "membership_id", c.ID, "org_id", c.OrgID, "user_id", c.UserID)
	}
	return nil
}

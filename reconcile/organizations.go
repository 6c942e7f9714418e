package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"clerksync/clerk"
	"clerksync/store"
)

// membershipChunk is the most organizations one memberships step reads the memberships of.
const membershipChunk = 100

// maxOrgRunSteps bounds the steps an organizations run starts before its deletions, below
// Inngest's limit of 1,000 steps per run: past it the run fails, saying so (having deleted
// nothing), instead of being cut off by Inngest half-way through the memberships.
const maxOrgRunSteps = 900

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

// orgCheck is the memoized output of the org-check-overlap step.
type orgCheck struct {
	Check
	// LiveMemberships counts the live memberships before the run wrote anything, the base of
	// the cap on membership deletions.
	LiveMemberships int `json:"live_memberships"`
}

// membershipRef names a membership: the deletion candidates of the memberships steps.
type membershipRef struct {
	ID     string `json:"id"`
	OrgID  string `json:"org_id"`
	UserID string `json:"user_id"`
}

// membershipsResult is the memoized output of one memberships-N step.
type membershipsResult struct {
	// Done counts the organizations the step dealt with, from the first of its chunk on; the
	// next step starts after them.
	Done int `json:"done"`
	// Seen counts the memberships Clerk listed for them.
	Seen int `json:"seen"`
	writeCounts
	// Candidates are the memberships live in the database, before Clerk's list was read,
	// that the list did not have.
	Candidates []membershipRef `json:"candidates,omitempty"`
}

func (m membershipsResult) dealtWith() int { return m.Done }

// orgDeletionPlan is the memoized output of the org-plan-deletions step.
type orgDeletionPlan struct {
	// Organizations are the live organizations missing from Clerk's list, to confirm and
	// delete (none when refused).
	Organizations []string `json:"organizations,omitempty"`
	// RefusedOrganizations and RefusedMemberships count the deletions the cap refused; the
	// membership candidates are the memberships steps' (all refused, or none).
	RefusedOrganizations int `json:"refused_organizations,omitempty"`
	RefusedMemberships   int `json:"refused_memberships,omitempty"`
}

// RunOrganizations reconciles the organizations and their memberships once, in steps, and
// writes nothing before its checks have passed: check-instance (as in Run); each
// org-survey-N step reads one page of Clerk's organizations, keeping only the ids;
// org-check-overlap compares them with the live organizations stored, refuses a list that
// shares fewer than MinSharedShare of them, and records the instance when none is recorded
// yet and the database has no live user either (a database with users has its instance
// recorded by Run or CheckImport, whose survey of the users vouches for it). Then each
// org-page-N step writes one page of organizations through the guarded upsert. Each
// memberships-N step takes up to 100 of the organizations listed (N being the index of the
// first) and, for each, reads its live memberships in the database, then lists its
// memberships in Clerk and writes them: the stored ones the list lacks are deletion
// candidates (a membership a webhook inserts meanwhile is not among them, as the database was
// read first). org-plan-deletions lists the live organizations missing from the pages and
// applies the safety cap to them (a share of the live organizations before the run) and to
// the membership candidates (a share of the live memberships before the run). Each
// org-delete-N step confirms up to 100 organizations with Clerk (404: gone) and tombstones
// those gone, with their memberships; each membership-delete-N step confirms up to 100
// memberships (Clerk lists none with that id for the user in the organization, or the
// organization is gone) and tombstones them. A candidate Clerk still has is written instead.
// The memberships and delete steps start nothing new past half their budget, and the next
// step goes on from there.
//
// When the instance has organizations turned off, the run ends after the survey's first
// page, with NotEnabled and nothing written. It returns the summary so far and the first
// error that a step gave up on, as Run does; refusing a list or a mass deletion is not an
// error: the summary reports it and the log says what to check.
func (r *Reconciler) RunOrganizations(ctx context.Context) (OrganizationsSummary, error) {
	var sum OrganizationsSummary
	inst, err := runStep(ctx, r, "check-instance", r.checkInstance)
	if err != nil {
		return sum, err
	}
	orgs := organizationsKind(r)
	listed, surveyed, notEnabled, err := surveySteps(ctx, r, orgs)
	if err != nil {
		return sum, err
	}
	if notEnabled {
		sum.NotEnabled = true
		r.logger.Info("reconciliation of organizations with Clerk done: the Clerk instance has organizations turned off, nothing written or deleted. "+
			"If the database holds organizations, check that CLERK_SECRET_KEY is the secret key of the Clerk instance this database follows",
			"clerk_instance", inst.Instance)
		return sum, nil
	}
	chk, err := runStep(ctx, r, "org-check-overlap", func(ctx context.Context) (orgCheck, error) {
		return r.checkOrgOverlap(ctx, orgs, inst, listed)
	})
	if err != nil {
		return sum, err
	}
	if chk.Refused {
		sum.RefusedForeign = true
		r.logger.Info("reconciliation of organizations with Clerk done: refused, nothing written or deleted", "refused_foreign", true,
			"clerk_instance", chk.Instance, "live_organizations", chk.Live, "listed_by_clerk", chk.Listed, "listed_and_stored", chk.Shared)
		return sum, nil
	}
	orgIDs, err := syncPages(ctx, r, orgs, func(page pageResult) {
		sum.Pages++
		sum.Organizations.Seen += len(page.IDs)
		sum.Organizations.addWrites(page.writeCounts)
	})
	if err != nil {
		return sum, err
	}
	var candidates []membershipRef
	// The steps so far: check-instance, the surveys, the check, the pages.
	room := max(1, r.maxOrgSteps-(2+surveyed+sum.Pages))
	err = inSteps(ctx, r, "memberships", orgIDs, membershipChunk, room,
		func(ctx context.Context, chunk []string, stopAt time.Time) (membershipsResult, error) {
			return r.syncMemberships(ctx, chunk, stopAt)
		},
		func(res membershipsResult) {
			sum.Memberships.Seen += res.Seen
			sum.Memberships.addWrites(res.writeCounts)
			candidates = append(candidates, res.Candidates...)
		})
	if err != nil {
		return sum, err
	}
	plan, err := runStep(ctx, r, "org-plan-deletions", func(ctx context.Context) (orgDeletionPlan, error) {
		return r.planOrgDeletions(ctx, orgs, orgIDs, chk, len(candidates))
	})
	if err != nil {
		return sum, err
	}
	sum.Organizations.Refused, sum.Memberships.Refused = plan.RefusedOrganizations, plan.RefusedMemberships
	err = deleteSteps(ctx, r, orgs, plan.Organizations, sum.Organizations.addDeletions)
	if err != nil {
		return sum, err
	}
	if plan.RefusedMemberships > 0 {
		candidates = nil
	}
	err = inSteps(ctx, r, "membership-delete", candidates, deleteChunk, 0,
		func(ctx context.Context, chunk []membershipRef, stopAt time.Time) (deletionResult, error) {
			return confirmEach(ctx, r, chunk, stopAt, "membership", r.confirmMembershipDeletion)
		},
		sum.Memberships.addDeletions)
	if err != nil {
		return sum, err
	}
	o, m := sum.Organizations, sum.Memberships
	r.logger.Info("reconciliation of organizations with Clerk done", "pages", sum.Pages,
		"organizations_seen", o.Seen, "organizations_inserted", o.Inserted, "organizations_updated", o.Updated, "organizations_skipped", o.Skipped,
		"organizations_failed", o.Failed, "organizations_deleted", o.Deleted, "organizations_still_in_clerk", o.StillInClerk, "organizations_refused", o.Refused,
		"memberships_seen", m.Seen, "memberships_inserted", m.Inserted, "memberships_updated", m.Updated, "memberships_skipped", m.Skipped,
		"memberships_failed", m.Failed, "memberships_deleted", m.Deleted, "memberships_still_in_clerk", m.StillInClerk, "memberships_refused", m.Refused)
	return sum, nil
}

// checkOrgOverlap compares the live organizations stored before any write with the ids on
// Clerk's list (compareLists), counts the live memberships, and, unless the list is refused,
// records the instance when none is recorded yet and the database has no live user. It
// returns an error wrapping store.ErrDatabase when the database fails, and one wrapping
// ErrWrongInstance when another instance was recorded meanwhile.
func (r *Reconciler) checkOrgOverlap(ctx context.Context, orgs kind[clerk.Organization], inst Instances, listed []string) (orgCheck, error) {
	live, err := liveIDs(ctx, r, orgs)
	if err != nil {
		return orgCheck{}, err
	}
	members, err := r.users.LiveMemberships(ctx, "", "")
	if err != nil {
		r.logger.Error("listing live memberships failed", "error", err)
		return orgCheck{}, err
	}
	chk := orgCheck{Check: r.compareLists(inst, "organizations", live, listed), LiveMemberships: len(members)}
	if chk.Refused || inst.Recorded != "" {
		return chk, nil
	}
	users, err := liveIDs(ctx, r, usersKind(r))
	if err != nil {
		return orgCheck{}, err
	}
	if len(users) > 0 {
		// Recording vouches for the users too (CheckImport trusts a recorded instance without
		// a survey): leave it to a run or backfill that compared them.
		r.logger.Info("no Clerk instance recorded for this database yet; reconcile-users-with-clerk or backfill records it once it has compared the users",
			"clerk_instance", inst.Instance, "live_users", len(users))
		return chk, nil
	}
	if err := r.recordInstance(ctx, inst); err != nil {
		return orgCheck{}, err
	}
	return chk, nil
}

// syncMemberships reconciles the memberships of the organizations orgIDs in order, as one
// memberships step (syncOrgMemberships each). It starts no organization after stopAt but the
// first; Done counts those dealt with. When an organization fails after others were dealt
// with, it returns those (the next step starts at the failing one). It returns an error only
// when the first fails: Clerk cannot be read or the database fails.
func (r *Reconciler) syncMemberships(ctx context.Context, orgIDs []string, stopAt time.Time) (membershipsResult, error) {
	var res membershipsResult
	done, err := eachWithinBudget(ctx, r, orgIDs, stopAt, "memberships", func(ctx context.Context, orgID string) error {
		one, err := r.syncOrgMemberships(ctx, orgID)
		if err == nil {
			res.Seen += one.Seen
			res.writeCounts.add(one.writeCounts)
			res.Candidates = append(res.Candidates, one.Candidates...)
		}
		return err
	})
	if err != nil {
		return membershipsResult{}, err
	}
	res.Done = done
	return res, nil
}

// syncOrgMemberships reads the live memberships of the organization orgID in the database,
// then lists its memberships in Clerk, page by page, and writes them; the stored ones the list
// lacks are the candidates (all of them when Clerk no longer has the organization). Reading
// the database first means a membership written meanwhile (by a webhook) is never a
// candidate. It returns an error when Clerk cannot be read or the database fails;
// memberships that cannot be written are counted as Failed.
func (r *Reconciler) syncOrgMemberships(ctx context.Context, orgID string) (membershipsResult, error) {
	stored, err := r.users.LiveMemberships(ctx, orgID, "")
	if err != nil {
		r.logger.Error("listing the live memberships of an organization failed", "org_id", orgID, "error", err)
		return membershipsResult{}, err
	}
	var res membershipsResult
	listed := map[string]struct{}{}
	for offset, pages := 0, 0; ; offset, pages = offset+r.cfg.PageSize, pages+1 {
		if pages >= maxPages {
			return membershipsResult{}, fmt.Errorf("reconcile: organization %s has more than %d pages of %d memberships; raise the page size", orgID, maxPages, r.cfg.PageSize)
		}
		page, err := r.api.ListMemberships(ctx, orgID, nil, r.cfg.PageSize, offset)
		if errors.Is(err, clerk.ErrOrganizationNotFound) {
			r.logger.Info("organization gone from Clerk while its memberships were read; its stored memberships are confirmed one by one", "org_id", orgID)
			clear(listed)
			break
		}
		if err != nil {
			r.logger.Error("reading a page of an organization's memberships failed", "org_id", orgID, "offset", offset, "error", err)
			return membershipsResult{}, err
		}
		for _, m := range page.Memberships {
			if m.ID != "" {
				listed[m.ID] = struct{}{}
			}
		}
		counts, err := writeAll(ctx, page.Memberships, r.writeMembership)
		if err != nil {
			return membershipsResult{}, err
		}
		res.Seen += len(page.Memberships)
		res.writeCounts.add(counts)
		if len(page.Memberships) < r.cfg.PageSize {
			break
		}
	}
	for _, m := range stored {
		if _, ok := listed[m.ID]; !ok {
			res.Candidates = append(res.Candidates, membershipRef{ID: m.ID, OrgID: m.OrgID, UserID: m.UserID})
		}
	}
	return res, nil
}

// planOrgDeletions lists the live organizations that no page had (seen lacks them) and
// applies the safety cap (allowDeletions), a share of the live organizations before the run
// (chk.Live), and likewise to the memberships candidates (a share of chk.LiveMemberships). It
// returns an error wrapping store.ErrDatabase when the live organizations cannot be listed.
func (r *Reconciler) planOrgDeletions(ctx context.Context, orgs kind[clerk.Organization], seen []string, chk orgCheck, memberships int) (orgDeletionPlan, error) {
	candidates, err := missing(ctx, r, orgs, seen)
	if err != nil {
		return orgDeletionPlan{}, err
	}
	var plan orgDeletionPlan
	if r.allowDeletions("organizations", len(candidates), chk.Live) {
		plan.Organizations = candidates
	} else {
		plan.RefusedOrganizations = len(candidates)
	}
	if !r.allowDeletions("memberships", memberships, chk.LiveMemberships) {
		plan.RefusedMemberships = memberships
	}
	return plan, nil
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

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

// Counts is what a reconciliation did to the organizations, or to the memberships.
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
	surveyed, notEnabled := 0, false
	listed, err := r.survey(ctx, func(ctx context.Context, offset int) (surveyPage, error) {
		surveyed++
		p, err := runStep(ctx, r, fmt.Sprintf("org-survey-%d", offset), func(ctx context.Context) (surveyPage, error) {
			return r.surveyOrgPage(ctx, offset)
		})
		notEnabled = notEnabled || p.NotEnabled
		return p, err
	})
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
		return r.checkOrgOverlap(ctx, inst, listed)
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
	orgIDs, err := r.syncOrgPages(ctx, &sum)
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
	seen := make(map[string]struct{}, len(orgIDs))
	for _, id := range orgIDs {
		seen[id] = struct{}{}
	}
	plan, err := runStep(ctx, r, "org-plan-deletions", func(ctx context.Context) (orgDeletionPlan, error) {
		return r.planOrgDeletions(ctx, seen, chk, len(candidates))
	})
	if err != nil {
		return sum, err
	}
	sum.Organizations.Refused, sum.Memberships.Refused = plan.RefusedOrganizations, plan.RefusedMemberships
	err = inSteps(ctx, r, "org-delete", plan.Organizations, deleteChunk, 0,
		func(ctx context.Context, chunk []string, stopAt time.Time) (deletionResult, error) {
			return confirmEach(ctx, r, chunk, stopAt, "organization", r.confirmOrgDeletion)
		},
		sum.Organizations.addDeletions)
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

// surveyOrgPage reads the page of Clerk's organization list at offset, keeping only the ids;
// NotEnabled (and no id) when the instance has organizations turned off. It returns Clerk's or
// the network's error.
func (r *Reconciler) surveyOrgPage(ctx context.Context, offset int) (surveyPage, error) {
	p, err := r.api.ListOrganizations(ctx, r.cfg.PageSize, offset)
	if errors.Is(err, clerk.ErrOrganizationsNotEnabled) {
		return surveyPage{NotEnabled: true}, nil
	}
	if err != nil {
		r.logger.Error("reading a page of Clerk organizations failed", "offset", offset, "error", err)
		return surveyPage{}, err
	}
	res := surveyPage{Count: len(p.Organizations), IDs: make([]string, 0, len(p.Organizations))}
	for _, o := range p.Organizations {
		if o.ID != "" {
			res.IDs = append(res.IDs, o.ID)
		}
	}
	return res, nil
}

// checkOrgOverlap compares the live organizations stored before any write with the ids on
// Clerk's list (compareLists), counts the live memberships, and, unless the list is refused,
// records the instance when none is recorded yet and the database has no live user. It
// returns an error wrapping store.ErrDatabase when the database fails, and one wrapping
// ErrWrongInstance when another instance was recorded meanwhile.
func (r *Reconciler) checkOrgOverlap(ctx context.Context, inst instanceCheck, listed []string) (orgCheck, error) {
	live, err := r.users.LiveOrganizationIDs(ctx)
	if err != nil {
		r.logger.Error("listing live organizations failed", "error", err)
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
	users, err := r.users.LiveUserIDs(ctx)
	if err != nil {
		r.logger.Error("listing live users failed", "error", err)
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

// syncOrgPages runs one org-page-N step per page of Clerk's organization list, adding what
// they did to sum, and returns the ids on the pages, each once, in the order listed. It
// returns the error of the first page that fails for good, or one when the list has more than
// maxPages pages.
func (r *Reconciler) syncOrgPages(ctx context.Context, sum *OrganizationsSummary) ([]string, error) {
	var ids []string
	seen := map[string]struct{}{}
	for offset := 0; ; offset += r.cfg.PageSize {
		if sum.Pages >= maxPages {
			return nil, fmt.Errorf("reconcile: more than %d pages of %d organizations; raise the page size", maxPages, r.cfg.PageSize)
		}
		page, err := runStep(ctx, r, fmt.Sprintf("org-page-%d", offset), func(ctx context.Context) (pageResult, error) {
			return r.syncOrgPage(ctx, offset)
		})
		if err != nil {
			return nil, err
		}
		sum.Pages++
		sum.Organizations.Seen += len(page.IDs)
		sum.Organizations.addWrites(page.writeCounts)
		for _, id := range page.IDs {
			if _, ok := seen[id]; !ok {
				seen[id] = struct{}{}
				ids = append(ids, id)
			}
		}
		if page.Count < r.cfg.PageSize {
			return ids, nil
		}
	}
}

// syncOrgPage reads the page of organizations at offset and writes them. It returns an error
// when Clerk cannot be read or the database fails; organizations that cannot be written are
// counted as Failed.
func (r *Reconciler) syncOrgPage(ctx context.Context, offset int) (pageResult, error) {
	page, err := r.api.ListOrganizations(ctx, r.cfg.PageSize, offset)
	if err != nil {
		r.logger.Error("reading a page of Clerk organizations failed", "offset", offset, "error", err)
		return pageResult{}, err
	}
	res := pageResult{Offset: offset, Count: len(page.Organizations), IDs: make([]string, 0, len(page.Organizations))}
	for _, o := range page.Organizations {
		if o.ID != "" {
			res.IDs = append(res.IDs, o.ID)
		}
	}
	if res.writeCounts, err = writeAll(ctx, page.Organizations, r.writeOrganization); err != nil {
		return pageResult{}, err
	}
	return res, nil
}

// writeOrganization writes one Clerk organization through the guarded upsert. One that cannot
// be written (no id or updated_at) is logged; its error is returned.
func (r *Reconciler) writeOrganization(ctx context.Context, c clerk.Organization) (store.Outcome, error) {
	o, err := c.StoreOrganization(0)
	if err == nil {
		var out store.Outcome
		if out, err = r.users.UpsertOrganization(ctx, o); err == nil {
			return out, nil
		}
	}
	if !errors.Is(err, store.ErrDatabase) {
		r.logger.Error("Clerk organization cannot be written; left out", "org_id", c.ID, "error", err)
	}
	return "", err
}

// writeMembership writes one Clerk membership through the guarded upsert. One that cannot be
// written (no id, organization id, user id or updated_at) is logged; its error is returned.
func (r *Reconciler) writeMembership(ctx context.Context, c clerk.OrganizationMembership) (store.Outcome, error) {
	m, err := c.StoreMembership(0)
	if err == nil {
		var out store.Outcome
		if out, err = r.users.UpsertMembership(ctx, m); err == nil {
			return out, nil
		}
	}
	if !errors.Is(err, store.ErrDatabase) {
		r.logger.Error("Clerk membership cannot be written; left out", "membership_id", c.ID, "org_id", c.Organization.ID, "error", err)
	}
	return "", err
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

// planOrgDeletions lists the live organizations that no page had and applies the safety cap,
// a share of the live organizations before the run (chk.Live), and likewise to the
// memberships candidates (a share of chk.LiveMemberships). It returns an error wrapping
// store.ErrDatabase when the live organizations cannot be listed.
func (r *Reconciler) planOrgDeletions(ctx context.Context, seen map[string]struct{}, chk orgCheck, memberships int) (orgDeletionPlan, error) {
	live, err := r.users.LiveOrganizationIDs(ctx)
	if err != nil {
		r.logger.Error("listing live organizations failed", "error", err)
		return orgDeletionPlan{}, err
	}
	var plan orgDeletionPlan
	var orgs []string
	for _, id := range live {
		if _, ok := seen[id]; !ok {
			orgs = append(orgs, id)
		}
	}
	if r.allowDeletions("organizations", len(orgs), chk.Live) {
		plan.Organizations = orgs
	} else {
		plan.RefusedOrganizations = len(orgs)
	}
	if !r.allowDeletions("memberships", memberships, chk.LiveMemberships) {
		plan.RefusedMemberships = memberships
	}
	return plan, nil
}

// allowDeletions applies the safety cap to n deletion candidates of kind ("users",
// "organizations", "memberships") when the database had liveBefore live ones before the run:
// it reports whether they may go, and logs what it decided and, when it refuses, what to
// check.
func (r *Reconciler) allowDeletions(kind string, n, liveBefore int) bool {
	if n == 0 {
		return true
	}
	attrs := []any{"missing_from_clerk", n, "live_" + kind + "_before_run", liveBefore, "max_delete_share", r.cfg.MaxDeleteShare}
	if float64(n) > r.cfg.MaxDeleteShare*float64(liveBefore) {
		if !r.cfg.AllowMassDelete {
			r.logger.Warn("reconciliation refuses a mass deletion of "+kind+": deleting none of them. Check CLERK_SECRET_KEY names the right Clerk instance; "+
				"if these "+kind+" really are gone, "+allowOnce, attrs...)
			return false
		}
		r.logger.Warn("mass deletion of "+kind+" allowed for this run (--allow-mass-delete)", attrs...)
	}
	r.logger.Info("live "+kind+" missing from Clerk's list; confirming each with Clerk before deleting", attrs...)
	return true
}

// confirmOrgDeletion asks Clerk for the organization id: a 404 turns it into a tombstone, with
// its memberships, as organization.deleted would; an organization Clerk still has is written.
// It counts the outcome in res, and returns an error when Clerk cannot be asked or the
// database fails (an organization that cannot be written is counted as Failed).
func (r *Reconciler) confirmOrgDeletion(ctx context.Context, id string, res *deletionResult) error {
	c, err := r.api.GetOrganization(ctx, id)
	if errors.Is(err, clerk.ErrOrganizationNotFound) {
		out, err := r.users.DeleteOrganization(ctx, id, r.cfg.Now().UnixMilli())
		if err != nil {
			r.logger.Error("deleting an organization missing from Clerk failed", "org_id", id, "error", err)
			return err
		}
		if out == store.Deleted {
			res.Deleted++
			r.logger.Info("organization missing from Clerk deleted, with its memberships", "org_id", id)
		}
		return nil
	}
	if err != nil {
		r.logger.Error("confirming a deletion with Clerk failed", "org_id", id, "error", err)
		return err
	}
	out, err := r.writeOrganization(ctx, c)
	return res.stillInClerk(out, err)
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

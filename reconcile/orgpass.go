package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/inngest/inngestgo"

	"clerksync/clerk"
	"clerksync/store"
)

// OrganizationsContinueEvent is the event a run of reconcile-organizations-with-clerk sends
// when its pass needs more steps than one run may take, as ContinueEvent does for the users:
// its data's "pass" field carries the pass's state, its id the pass's id and the run's number.
// The function's singleton leaves it out; the pass's lease keeps one pass at a time.
const OrganizationsContinueEvent = "clerk-sync/reconcile.organizations.continue"

// orgScope is the organizations' pass's scope in the store's marks and lease (the users' pass
// has its own).
const orgScope = "organizations"

// The sets of ids an organizations' pass marks in the database.
const (
	// setOrgListed: the organizations the list steps read on Clerk's list.
	setOrgListed = "listed"
	// setOrgSeen: the organizations the write steps read on Clerk's list, whose memberships
	// the members steps reconcile; no deletion candidates.
	setOrgSeen = "seen"
	// setOrgCandidates: the live organizations no write step saw.
	setOrgCandidates = "candidates"
	// setMembersStored: the live memberships of an organization whose members span steps,
	// read before its first page of members.
	setMembersStored = "members-stored"
	// setMembersSeen: the memberships Clerk listed for such an organization.
	setMembersSeen = "members-seen"
	// setMembersCandidates: the memberships stored before their organization's list was read
	// that the list lacked.
	setMembersCandidates = "members-candidates"
)

// membershipChunk is the most organizations one members step reads the ids of (it deals with
// those its budget allows).
const membershipChunk = 100

// The phases of an organizations' pass beside those the passes share (runner.go); next takes
// them all in order.
const (
	// phaseMembers: the members steps, organization after organization.
	phaseMembers phase = "members"
	// phaseMemberFind: the org-member-find-N steps, over the memberships of the organizations
	// whose members spanned steps.
	phaseMemberFind phase = "member-find"
	// phaseFind: the org-find-deletions steps.
	phaseFind phase = "find"
	// phaseMemberDelete: the membership candidates' confirmation.
	phaseMemberDelete phase = "member-delete"
)

// orgPassState is where an organizations' pass stands between two steps: what
// OrganizationsContinueEvent carries to the next run. It holds counts and cursors, never a list
// of ids.
type orgPassState struct {
	// passHead's Cursor is the last id the phase dealt with (members: the last organization
	// done).
	passHead
	// Members is the offset of the next page of the members of the organization after Cursor
	// (0: its list is not started).
	Members int `json:"members,omitempty"`
	// Spanned is true once the members of an organization have spanned steps: the
	// org-member-find steps then find their candidates (a pass without has none).
	Spanned bool `json:"members_spanned,omitempty"`
	// Listed and Shared count the organizations on Clerk's list and the live ones among them.
	Listed int `json:"listed"`
	Shared int `json:"listed_and_stored"`
	// Check is org-check-overlap's outcome.
	Check orgCheck `json:"check"`
	// FoundOrgs and FoundMembers count the deletion candidates.
	FoundOrgs    int `json:"found_orgs"`
	FoundMembers int `json:"found_members"`
	// Summary is the pass's summary so far.
	Summary OrganizationsSummary `json:"summary"`
}

// orgCheck is the output of the org-check-overlap step.
type orgCheck struct {
	Check
	// LiveMemberships counts the live memberships before the pass wrote anything, the base of
	// the cap on membership deletions.
	LiveMemberships int `json:"live_memberships"`
}

// Outputs of the organizations' pass's steps, as Inngest memoizes them: counts and cursors,
// each of a size that does not grow with the organizations' or memberships' count.
type (
	// orgListCount is an org-list-N step's: Count organizations on the page, of which Listed
	// not on an earlier page, of which Shared live in the database; NotEnabled when the
	// instance has organizations turned off.
	orgListCount struct {
		Count      int  `json:"count"`
		Listed     int  `json:"listed"`
		Shared     int  `json:"listed_and_stored"`
		NotEnabled bool `json:"not_enabled,omitempty"`
	}
	// orgWriteResult is an org-write-N step's.
	orgWriteResult struct {
		Count int `json:"count"`
		writeCounts
	}
	// membersStep is an org-members-N step's: of the Fetched organizations after the cursor,
	// it finished Done, up to Last, and left the next one's list at offset Next (0: not
	// started); Clerk listed Seen memberships, and Found new deletion candidates.
	membersStep struct {
		Fetched int    `json:"fetched"`
		Done    int    `json:"done"`
		Last    string `json:"last,omitempty"`
		Next    int    `json:"next,omitempty"`
		Seen    int    `json:"seen"`
		Found   int    `json:"found"`
		writeCounts
	}
	// orgFindResult is an org-find-deletions-N step's (as findResult).
	orgFindResult struct {
		Scanned int    `json:"scanned"`
		Found   int    `json:"found"`
		Last    string `json:"last,omitempty"`
	}
	// orgCapResult is org-cap-deletions's.
	orgCapResult struct {
		Organizations        int `json:"organizations"`
		RefusedOrganizations int `json:"refused_organizations"`
		Memberships          int `json:"memberships"`
		RefusedMemberships   int `json:"refused_memberships"`
	}
)

// RunOrganizations reconciles the organizations and their memberships once, in steps (see
// orgPassState.next), outside Inngest (runInline). It returns the pass's summary and the first
// error a step gave up on (see orgPassState.next).
func (r *Reconciler) RunOrganizations(ctx context.Context) (OrganizationsSummary, error) {
	st := &orgPassState{passHead: passHead{Pass: newPassID(r.cfg.Now()), AllowMassDelete: r.cfg.AllowMassDelete}}
	err := r.runInline(ctx, st)
	return st.Summary, err
}

// kind names the organizations' pass.
func (*orgPassState) kind() passKind {
	return passKind{scope: orgScope, start: "org-start-pass", resume: "org-resume-pass", handOver: "org-continue-pass",
		event: OrganizationsContinueEvent, eventID: "%s-orgs-run-%d", name: "reconciliation of organizations with Clerk"}
}

// started returns nil: the organizations' pass keeps no time.
func (*orgPassState) started() *int64 { return nil }

// skippedBusy records that the run did nothing: another pass of the organizations is going.
func (st *orgPassState) skippedBusy() { st.Summary.SkippedBusy = true }

// handedOver returns the summary so far, Continued.
func (st *orgPassState) handedOver() any {
	sum := st.Summary
	sum.Continued = true
	return sum
}

// done records the runs the organizations' pass took, and logs its summary unless it wrote
// nothing (NotEnabled, RefusedForeign: their log lines are out already).
func (st *orgPassState) done(logger *slog.Logger) {
	if st.Run > 0 {
		st.Summary.Runs = st.Run + 1
	}
	if st.Summary.NotEnabled || st.Summary.RefusedForeign {
		return
	}
	o, m := st.Summary.Organizations, st.Summary.Memberships
	logger.Info("reconciliation of organizations with Clerk done", "pass", st.Pass, "runs", st.Run+1, "pages", st.Summary.Pages,
		"organizations_seen", o.Seen, "organizations_inserted", o.Inserted, "organizations_updated", o.Updated, "organizations_skipped", o.Skipped,
		"organizations_failed", o.Failed, "organizations_deleted", o.Deleted, "organizations_still_in_clerk", o.StillInClerk, "organizations_refused", o.Refused,
		"memberships_seen", m.Seen, "memberships_inserted", m.Inserted, "memberships_updated", m.Updated, "memberships_skipped", m.Skipped,
		"memberships_failed", m.Failed, "memberships_deleted", m.Deleted, "memberships_still_in_clerk", m.StillInClerk, "memberships_refused", m.Refused)
}

// next takes the organizations' pass's next step, through p (the runner's runPass, which
// starts or resumes the pass and checks the instance first). The pass writes nothing before
// its checks have passed:
//
//   - org-start-pass (a new pass) takes the pass's lease (scope "organizations"), or ends the
//     pass at once when another pass holds it (SkippedBusy); org-resume-pass (each next run)
//     renews it, and so does every step.
//   - check-instance (each run) refuses another Clerk instance than the database follows (or
//     than the pass's first run found).
//   - org-clear-marks drops the marks an earlier pass left.
//   - org-list-N read one page of Clerk's organizations each, mark its ids (listed) and count
//     those live in the database; an instance with organizations turned off ends the pass
//     there (NotEnabled). org-check-overlap counts the live organizations and memberships,
//     refuses a list that shares fewer than MinSharedShare of the organizations, and records
//     the instance when none is recorded yet and the database has no live user either (a
//     database with users has it recorded by Run or CheckImport, whose survey of the users
//     vouches for it).
//   - org-write-N read each page again, write its organizations through the guarded upsert
//     and mark their ids (seen).
//   - org-members-N go through the organizations seen, in id order: for each, read its live
//     memberships in the database first, then list its memberships in Clerk from the offset
//     the step before left, and write them; a step starts no page past half its budget, so an
//     organization of many members spans steps (its stored memberships and those listed so
//     far are then marked, members-stored and members-seen). When the list of an organization
//     read within one step ends, the memberships stored before it was read that it lacks are
//     marked candidates (a membership a webhook writes meanwhile is not among them); when
//     the organization has left Clerk meanwhile, all its live memberships are.
//   - org-member-find-N (when an organization's members spanned steps) compare findChunk
//     members-stored marks at a time (those of every such organization) with the
//     members-seen marks, and mark those missing candidates: so an organization's end costs
//     no step more than findChunk reads, whatever its members' count.
//   - org-find-deletions-N compare findChunk live organizations at a time with the seen
//     marks and mark those missing; org-cap-deletions applies the safety cap to both counts of
//     candidates (shares of the live organizations and memberships before the pass).
//   - org-delete-N confirm up to deleteChunk organizations each with Clerk (404: gone) and
//     tombstone those gone, with their memberships; member-delete-N confirm up to deleteChunk
//     memberships (Clerk lists none with that id for the user in the organization, or the
//     organization is gone) and tombstone them. A candidate Clerk still has is written.
//   - org-drop-marks drops the pass's marks; org-end-pass ends its lease.
//
// When the run has taken maxRunSteps-1 steps before the pass is done, runPass returns
// errHandOver, st being where to go on from. Otherwise it returns the first error a step gave
// up on (as for the users: passState.next); refusing a list or a mass deletion is not an
// error: the summary reports it and the log says what to check.
func (st *orgPassState) next(ctx context.Context, p *passRun) error {
	r := p.r
	orgs := organizationsKind(r)
	switch st.Phase {
	case phaseClear:
		if err := p.forgetMarks(ctx, "org-clear-marks", st.Pass); err != nil {
			return err
		}
		st.Phase, st.Offset = phaseSurvey, 0
	case phaseSurvey:
		res, err := passStep(ctx, p, fmt.Sprintf("org-list-%d", st.Offset), func(ctx context.Context) (orgListCount, error) {
			return r.surveyOrganizations(ctx, orgs, st.Pass, st.Offset)
		})
		if err != nil {
			return err
		}
		if res.NotEnabled {
			st.Summary.NotEnabled = true
			r.logger.Info("reconciliation of organizations with Clerk done: the Clerk instance has organizations turned off, nothing written or deleted. "+
				"If the database holds organizations, check that CLERK_SECRET_KEY is the secret key of the Clerk instance this database follows",
				"clerk_instance", st.Instance)
			st.Phase, st.Offset = phaseCleanup, 0
			return nil
		}
		st.Listed += res.Listed
		st.Shared += res.Shared
		st.Offset += r.cfg.PageSize
		if res.Count < r.cfg.PageSize {
			st.Phase, st.Offset = phaseOverlap, 0
		}
	case phaseOverlap:
		chk, err := passStep(ctx, p, "org-check-overlap", func(ctx context.Context) (orgCheck, error) {
			return r.checkOrgOverlap(ctx, p.inst, st.Listed, st.Shared)
		})
		if err != nil {
			return err
		}
		st.Check = chk
		st.Phase = phaseWrite
		if chk.Refused {
			st.Summary.RefusedForeign = true
			r.logger.Info("reconciliation of organizations with Clerk done: refused, nothing written or deleted", "refused_foreign", true,
				"clerk_instance", chk.Instance, "live_organizations", chk.Live, "listed_by_clerk", chk.Listed, "listed_and_stored", chk.Shared)
			st.Phase = phaseCleanup
		}
	case phaseWrite:
		res, err := passStep(ctx, p, fmt.Sprintf("org-write-%d", st.Offset), func(ctx context.Context) (orgWriteResult, error) {
			return r.writeOrganizations(ctx, orgs, st.Pass, st.Offset)
		})
		if err != nil {
			return err
		}
		st.Summary.Pages++
		st.Summary.Organizations.Seen += res.Count
		st.Summary.Organizations.addWrites(res.writeCounts)
		st.Offset += r.cfg.PageSize
		if res.Count < r.cfg.PageSize {
			st.Phase, st.Offset, st.Cursor, st.Members = phaseMembers, 0, "", 0
		}
	case phaseMembers:
		res, err := passStep(ctx, p, fmt.Sprintf("org-members-%d", st.Offset), func(ctx context.Context) (membersStep, error) {
			return r.syncMembers(ctx, st.Pass, st.Offset, st.Cursor, st.Members, time.Now().Add(r.budget/2))
		})
		if err != nil {
			return err
		}
		if res.Fetched > 0 && res.Done == 0 && res.Next <= st.Members {
			// Only a step that failed returns no progress, and it returns an error.
			return inngestgo.NoRetryError(fmt.Errorf("reconcile: step org-members-%d made no progress", st.Offset))
		}
		st.Summary.Memberships.Seen += res.Seen
		st.Summary.Memberships.addWrites(res.writeCounts)
		st.FoundMembers += res.Found
		st.Offset++
		if res.Last != "" {
			st.Cursor = res.Last
		}
		st.Spanned = st.Spanned || st.Members > 0 || res.Next > 0
		st.Members = res.Next
		if res.Fetched < membershipChunk && res.Done >= res.Fetched {
			st.Phase, st.Offset, st.Cursor, st.Members = phaseFind, 0, "", 0
			if st.Spanned {
				st.Phase = phaseMemberFind
			}
		}
	case phaseMemberFind:
		res, err := passStep(ctx, p, fmt.Sprintf("org-member-find-%d", st.Offset), func(ctx context.Context) (orgFindResult, error) {
			return r.findMemberCandidates(ctx, st.Pass, st.Offset, st.Cursor)
		})
		if err != nil {
			return err
		}
		st.FoundMembers += res.Found
		st.Offset += res.Scanned
		if res.Last != "" {
			st.Cursor = res.Last
		}
		if res.Scanned < r.findChunk {
			st.Phase, st.Offset, st.Cursor = phaseFind, 0, ""
		}
	case phaseFind:
		res, err := passStep(ctx, p, fmt.Sprintf("org-find-deletions-%d", st.Offset), func(ctx context.Context) (orgFindResult, error) {
			return r.findOrgCandidates(ctx, st.Pass, st.Offset, st.Cursor)
		})
		if err != nil {
			return err
		}
		st.FoundOrgs += res.Found
		st.Offset += res.Scanned
		if res.Last != "" {
			st.Cursor = res.Last
		}
		if res.Scanned < r.findChunk {
			st.Phase, st.Offset, st.Cursor = phaseCap, 0, ""
		}
	case phaseCap:
		res, err := passStep(ctx, p, "org-cap-deletions", func(context.Context) (orgCapResult, error) {
			res := orgCapResult{Organizations: st.FoundOrgs, Memberships: st.FoundMembers}
			if !r.allowDeletions("organizations", st.FoundOrgs, st.Check.Live) {
				res.RefusedOrganizations = st.FoundOrgs
			}
			if !r.allowDeletions("memberships", st.FoundMembers, st.Check.LiveMemberships) {
				res.RefusedMemberships = st.FoundMembers
			}
			return res, nil
		})
		if err != nil {
			return err
		}
		st.Summary.Organizations.Refused, st.Summary.Memberships.Refused = res.RefusedOrganizations, res.RefusedMemberships
		st.FoundOrgs, st.FoundMembers = res.Organizations-res.RefusedOrganizations, res.Memberships-res.RefusedMemberships
		st.Phase = phaseDelete
	case phaseDelete, phaseMemberDelete:
		id, set, then, kindOf := "org-delete-%d", setOrgCandidates, phaseMemberDelete, &st.Summary.Organizations
		if st.Phase == phaseMemberDelete {
			id, set, then, kindOf = "member-delete-%d", setMembersCandidates, phaseCleanup, &st.Summary.Memberships
		}
		if (st.Phase == phaseDelete && st.FoundOrgs == 0) || (st.Phase == phaseMemberDelete && st.FoundMembers == 0) {
			st.Phase, st.Offset, st.Cursor = then, 0, ""
			return nil
		}
		res, err := passStep(ctx, p, fmt.Sprintf(id, st.Offset), func(ctx context.Context) (deleteStep, error) {
			return r.deleteOrgCandidates(ctx, p, orgs, set)
		})
		if err != nil {
			return err
		}
		kindOf.addDeletions(res.deletionResult)
		if st.deleted(res) {
			st.Phase, st.Offset, st.Cursor = then, 0, ""
		}
	case phaseCleanup:
		if err := p.forgetMarks(ctx, "org-drop-marks", ""); err != nil {
			return err
		}
		st.Phase, st.Offset = phaseEnd, 0
	case phaseEnd:
		if _, err := passStep(ctx, p, "org-end-pass", func(ctx context.Context) (struct{}, error) {
			return struct{}{}, r.users.EndReconcilePass(ctx, orgScope, st.Pass, r.cfg.Now())
		}); err != nil {
			return err
		}
		st.Phase = phaseDone
	default:
		return inngestgo.NoRetryError(fmt.Errorf("reconcile: organizations pass %s has an unknown phase %q", st.Pass, st.Phase))
	}
	return nil
}

// surveyOrganizations reads the page of Clerk's organizations at offset, marks its ids as
// listed, and counts those no earlier page had and, of those, the live organizations in the
// database; NotEnabled when the instance has organizations turned off. It returns Clerk's, the
// network's or the database's error.
func (r *Reconciler) surveyOrganizations(ctx context.Context, orgs kind[clerk.Organization], pass string, offset int) (orgListCount, error) {
	page, err := orgs.list(ctx, r.cfg.PageSize, offset)
	if errors.Is(err, orgs.turnedOff) {
		return orgListCount{NotEnabled: true}, nil
	}
	if err != nil {
		r.logger.Error("reading a page of Clerk organizations failed", "offset", offset, "error", err)
		return orgListCount{}, err
	}
	fresh, err := r.users.MarkReconciled(ctx, orgScope, pass, setOrgListed, offset, pageIDs(orgs, page))
	if err != nil {
		r.logger.Error("marking the organizations listed failed", "offset", offset, "error", err)
		return orgListCount{}, err
	}
	shared, err := r.users.CountLiveOrganizationsAmong(ctx, fresh)
	if err != nil {
		r.logger.Error("reading the organizations listed failed", "offset", offset, "error", err)
		return orgListCount{}, err
	}
	return orgListCount{Count: len(page), Listed: len(fresh), Shared: shared}, nil
}

// checkOrgOverlap counts the live organizations and memberships stored before any write,
// compares the organizations with the listed ones on Clerk's list, shared of them live
// (compareCounts), and, unless the list is refused, records the instance when none is recorded
// yet and the database has no live user. It returns an error wrapping store.ErrDatabase when
// the database fails, and one wrapping ErrWrongInstance when another instance was recorded
// meanwhile.
func (r *Reconciler) checkOrgOverlap(ctx context.Context, inst Instances, listed, shared int) (orgCheck, error) {
	live, err := r.users.CountLiveOrganizations(ctx)
	if err != nil {
		r.logger.Error("counting live organizations failed", "error", err)
		return orgCheck{}, err
	}
	members, err := r.users.CountLiveMemberships(ctx)
	if err != nil {
		r.logger.Error("counting live memberships failed", "error", err)
		return orgCheck{}, err
	}
	chk := orgCheck{Check: r.compareCounts(inst, "organizations", live, listed, shared), LiveMemberships: members}
	if chk.Refused || inst.Recorded != "" {
		return chk, nil
	}
	users, err := r.users.CountLiveUsers(ctx)
	if err != nil {
		r.logger.Error("counting live users failed", "error", err)
		return orgCheck{}, err
	}
	if users > 0 {
		// Recording vouches for the users too (CheckImport trusts a recorded instance without
		// a survey): leave it to a run or backfill that compared them.
		r.logger.Info("no Clerk instance recorded for this database yet; reconcile-users-with-clerk or backfill records it once it has compared the users",
			"clerk_instance", inst.Instance, "live_users", users)
		return chk, nil
	}
	if err := r.recordInstance(ctx, inst); err != nil {
		return orgCheck{}, err
	}
	return chk, nil
}

// writeOrganizations reads the page of Clerk's organizations at offset, writes what it holds
// and marks its ids as seen. It returns an error when Clerk cannot be read or the database
// fails; organizations that cannot be written are counted as Failed.
func (r *Reconciler) writeOrganizations(ctx context.Context, orgs kind[clerk.Organization], pass string, offset int) (orgWriteResult, error) {
	page, err := orgs.list(ctx, r.cfg.PageSize, offset)
	if err != nil {
		r.logger.Error("reading a page of Clerk organizations failed", "offset", offset, "error", err)
		return orgWriteResult{}, err
	}
	res := orgWriteResult{Count: len(page)}
	if res.writeCounts, err = writeAll(ctx, page, orgs.write); err != nil {
		return orgWriteResult{}, err
	}
	if _, err := r.users.MarkReconciled(ctx, orgScope, pass, setOrgSeen, offset, pageIDs(orgs, page)); err != nil {
		r.logger.Error("marking the organizations seen failed", "offset", offset, "error", err)
		return orgWriteResult{}, err
	}
	return res, nil
}

// syncMembers is one org-members step (step is its number): it reads the ids of up to
// membershipChunk organizations seen after cursor, and reconciles their memberships in order
// (syncOrgMembers), the first from the offset members. It starts no page of Clerk's list past
// stopAt but the step's first, so an organization's list may stop half-way: Next says where
// it goes on. A failure after the step has read a page ends the step with what it did (the
// next step starts there, and fails with the error if it persists); it returns an error only
// when the organizations cannot be read, or when its first page fails.
func (r *Reconciler) syncMembers(ctx context.Context, pass string, step int, cursor string, members int, stopAt time.Time) (membersStep, error) {
	ids, err := r.users.ReconcileMarksAfter(ctx, orgScope, pass, setOrgSeen, cursor, membershipChunk)
	if err != nil {
		r.logger.Error("reading the organizations seen failed", "error", err)
		return membersStep{}, err
	}
	res := membersStep{Fetched: len(ids)}
	om := orgMembers{r: r, pass: pass, step: step, stopAt: stopAt, res: &res}
	for i, orgID := range ids {
		from := 0
		if i == 0 {
			from = members
		}
		if om.full() {
			r.logger.Info("memberships step stopping within its budget; the next step goes on", "organizations_done", res.Done, "left", len(ids)-res.Done)
			break
		}
		next, done, err := om.sync(ctx, orgID, from)
		if !done && next == from && res.Done == 0 {
			// Nothing to keep: the step fails, and is tried again.
			if err == nil {
				err = fmt.Errorf("reconcile: the memberships of organization %s made no progress", orgID)
			}
			return membersStep{}, err
		}
		if err != nil {
			r.logger.Info("memberships step stopping after a failure; the next step starts there", "org_id", orgID, "offset", next, "error", err)
		}
		if !done {
			res.Next = next
			break
		}
		res.Done++
		res.Last = orgID
	}
	return res, nil
}

// orgMembers reconciles the memberships of organizations within one members step.
type orgMembers struct {
	r      *Reconciler
	pass   string
	step   int
	stopAt time.Time
	res    *membersStep
	// pages counts the pages of Clerk's lists the step has read.
	pages int
}

// full reports whether the step is to start no more pages: it has read one, and it is past
// stopAt (or has read memberPages, when set).
func (om *orgMembers) full() bool {
	return om.pages > 0 && (time.Now().After(om.stopAt) || (om.r.memberPages > 0 && om.pages >= om.r.memberPages))
}

// sync reconciles the memberships of the organization orgID from offset on: when offset is 0,
// it reads the organization's live memberships in the database first; then it lists the
// memberships in Clerk, page by page, and writes them. When the list ends, the stored ones the
// list lacks (all of them when Clerk no longer has the organization) are marked candidates.
// When the step's budget (stopAt) or a failure stops the list half-way, it marks what it read
// (members-stored, members-seen) and returns the offset to go on from (offset itself when it
// read no page), with the failure; done when the organization is dealt with. Its error is
// Clerk's, the network's or the database's (memberships that cannot be written are counted
// as Failed).
func (om *orgMembers) sync(ctx context.Context, orgID string, offset int) (next int, done bool, err error) {
	r := om.r
	start := offset
	var stored []store.Membership
	if start == 0 {
		if stored, err = r.users.LiveMemberships(ctx, orgID, ""); err != nil {
			r.logger.Error("listing the live memberships of an organization failed", "org_id", orgID, "error", err)
			return start, false, err
		}
	}
	var listed []string
	gone := false
	// stop marks what this step read of a list it leaves half-way, and returns where it goes on.
	stop := func(cause error) (int, bool, error) {
		if offset == start {
			return start, false, cause
		}
		if start == 0 {
			if _, err := r.users.MarkReconciled(ctx, orgScope, om.pass, setMembersStored, om.step, membershipIDs(stored)); err != nil {
				r.logger.Error("marking the stored memberships failed", "org_id", orgID, "error", err)
				return start, false, err
			}
		}
		if _, err := r.users.MarkReconciled(ctx, orgScope, om.pass, setMembersSeen, om.step, listed); err != nil {
			r.logger.Error("marking the memberships seen failed", "org_id", orgID, "error", err)
			return start, false, err
		}
		r.logger.Info("organization's memberships go on in the next step", "org_id", orgID, "offset", offset)
		return offset, false, cause
	}
	for {
		if om.full() {
			return stop(nil)
		}
		page, err := r.api.ListMemberships(ctx, orgID, nil, r.cfg.PageSize, offset)
		if errors.Is(err, clerk.ErrOrganizationNotFound) {
			r.logger.Info("organization gone from Clerk while its memberships were read; its stored memberships are confirmed one by one", "org_id", orgID)
			gone = true
			break
		}
		if err != nil {
			r.logger.Error("reading a page of an organization's memberships failed", "org_id", orgID, "offset", offset, "error", err)
			return stop(err)
		}
		counts, err := writeAll(ctx, page.Memberships, r.writeMembership)
		if err != nil {
			return stop(err)
		}
		om.pages++
		for _, m := range page.Memberships {
			if m.ID != "" {
				listed = append(listed, m.ID)
			}
		}
		om.res.Seen += len(page.Memberships)
		om.res.writeCounts.add(counts)
		offset += r.cfg.PageSize
		if len(page.Memberships) < r.cfg.PageSize {
			break
		}
	}
	if start > 0 && !gone {
		// A list that spanned steps: the org-member-find steps compare its members-stored
		// marks with the members-seen ones, this step's among them.
		if _, err := r.users.MarkReconciled(ctx, orgScope, om.pass, setMembersSeen, om.step, listed); err != nil {
			r.logger.Error("marking the memberships seen failed", "org_id", orgID, "error", err)
			return stop(err)
		}
		return 0, true, nil
	}
	candidates, err := om.candidates(ctx, orgID, start, stored, listed, gone)
	if err != nil {
		return stop(err)
	}
	fresh, err := r.users.MarkReconciled(ctx, orgScope, om.pass, setMembersCandidates, om.step, candidates)
	if err != nil {
		r.logger.Error("marking membership candidates failed", "org_id", orgID, "error", err)
		return stop(err)
	}
	om.res.Found += len(fresh)
	return 0, true, nil
}

// candidates returns the memberships of orgID stored before its list was read that the list
// lacks: stored (read by this step, when start is 0) less listed; all of them when gone, and
// then, for a list begun in an earlier step, all the organization's live memberships (it has
// left Clerk: each is confirmed before it is deleted). A list begun earlier that did not end
// in a gone organization has its candidates found by the org-member-find steps instead. It
// returns an error wrapping store.ErrDatabase when the database fails.
func (om *orgMembers) candidates(ctx context.Context, orgID string, start int, stored []store.Membership, listed []string, gone bool) ([]string, error) {
	r := om.r
	ids := membershipIDs(stored)
	if start > 0 {
		live, err := r.users.LiveMemberships(ctx, orgID, "")
		if err != nil {
			r.logger.Error("listing the live memberships of an organization failed", "org_id", orgID, "error", err)
			return nil, err
		}
		return membershipIDs(live), nil
	}
	if gone || len(ids) == 0 {
		return ids, nil
	}
	return without(ids, listed), nil
}

// membershipIDs returns the ids of ms, ascending.
func membershipIDs(ms []store.Membership) []string {
	ids := make([]string, 0, len(ms))
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}

// findMemberCandidates compares the next findChunk members-stored marks after cursor (the
// memberships stored when the list of their organization, one that spanned steps, began) with
// the members-seen marks (those its list had), and marks those missing as deletion candidates
// (step is the count of marks compared before). It returns an error wrapping
// store.ErrDatabase when the database fails.
func (r *Reconciler) findMemberCandidates(ctx context.Context, pass string, step int, cursor string) (orgFindResult, error) {
	stored, err := r.users.ReconcileMarksAfter(ctx, orgScope, pass, setMembersStored, cursor, r.findChunk)
	if err != nil {
		r.logger.Error("reading the stored memberships marked failed", "error", err)
		return orgFindResult{}, err
	}
	return r.markUnseen(ctx, pass, step, stored, setMembersSeen, setMembersCandidates, "memberships")
}

// findOrgCandidates compares the next findChunk live organizations after cursor with the ids
// the write steps saw, and marks those missing as deletion candidates (step is the count of
// live organizations compared before). It returns an error wrapping store.ErrDatabase when
// the database fails.
func (r *Reconciler) findOrgCandidates(ctx context.Context, pass string, step int, cursor string) (orgFindResult, error) {
	live, err := r.users.LiveOrganizationIDsAfter(ctx, cursor, r.findChunk)
	if err != nil {
		r.logger.Error("listing live organizations failed", "error", err)
		return orgFindResult{}, err
	}
	return r.markUnseen(ctx, pass, step, live, setOrgSeen, setOrgCandidates, "organizations")
}

// markUnseen marks in the set candidates those of ids (ascending; what names them in log
// lines) that the set seen lacks, and returns how many it compared and newly marked, and the
// last id. It returns an error wrapping store.ErrDatabase when the database fails.
func (r *Reconciler) markUnseen(ctx context.Context, pass string, step int, ids []string, seen, candidates, what string) (orgFindResult, error) {
	if len(ids) == 0 {
		return orgFindResult{}, nil
	}
	held, err := r.users.ReconcileMarked(ctx, orgScope, pass, seen, ids)
	if err != nil {
		r.logger.Error("reading the "+what+" seen failed", "error", err)
		return orgFindResult{}, err
	}
	marked, err := r.users.MarkReconciled(ctx, orgScope, pass, candidates, step, without(ids, held))
	if err != nil {
		r.logger.Error("marking "+what+" deletion candidates failed", "error", err)
		return orgFindResult{}, err
	}
	return orgFindResult{Scanned: len(ids), Found: len(marked), Last: ids[len(ids)-1]}, nil
}

// without returns the ids of all that are not in some, in all's order.
func without(all, some []string) []string {
	in := make(map[string]bool, len(some))
	for _, id := range some {
		in[id] = true
	}
	var out []string
	for _, id := range all {
		if !in[id] {
			out = append(out, id)
		}
	}
	return out
}

// deleteOrgCandidates is an org-delete or member-delete step of p's pass: it confirms the next
// candidates of set (organizations or memberships) with Clerk (confirmMarked): an
// organization with confirmGone, a membership, read back from the database for its
// organization and user, with confirmMembershipDeletion (one no longer live needs nothing). It
// returns an error when the candidates cannot be read, or when the first cannot be confirmed.
func (r *Reconciler) deleteOrgCandidates(ctx context.Context, p *passRun, orgs kind[clerk.Organization], set string) (deleteStep, error) {
	confirm := func(ctx context.Context, id string, res *deletionResult) error {
		return confirmGone(ctx, r, orgs, id, res)
	}
	what := "organization"
	if set == setMembersCandidates {
		what = "membership"
		confirm = func(ctx context.Context, id string, res *deletionResult) error {
			m, err := r.users.GetMembership(ctx, id)
			switch {
			case errors.Is(err, store.ErrNotFound):
				return nil
			case err != nil:
				r.logger.Error("reading a membership to confirm failed", "membership_id", id, "error", err)
				return err
			case m.Deleted:
				return nil // deleted meanwhile, with its organization or by a webhook
			}
			return r.confirmMembershipDeletion(ctx, membershipRef{ID: m.ID, OrgID: m.OrgID, UserID: m.UserID}, res)
		}
	}
	return p.confirmMarked(ctx, set, what, confirm)
}

// reconcileOrganizationsRun is the organizations function's body: one run of an organizations'
// pass (runPass), a new one or the one OrganizationsContinueEvent carries, as reconcileRun
// is the users'. When the pass is done, its summary is the run's output (and is told to
// Metrics); when the run's steps are spent first, org-continue-pass sends
// OrganizationsContinueEvent with the pass's state, and the output is the summary so far
// (Continued). A RequestEvent asking for an incremental run (IncrementalField) ends the run at
// once, with SkippedIncremental: the organizations have no incremental run.
func (r *Reconciler) reconcileOrganizationsRun(ctx context.Context, in inngestgo.Input[map[string]any]) (any, error) {
	st := &orgPassState{}
	r, err := r.runOf(in, st)
	if err != nil {
		return nil, err
	}
	if incrementalRequest(in.Event) {
		r.logger.Info("an incremental reconciliation was requested: the organizations have none, this run does nothing", "run_id", in.InputCtx.RunID)
		return OrganizationsSummary{SkippedIncremental: true}, nil
	}
	err = r.runPass(ctx, st)
	if errors.Is(err, errHandOver) {
		return r.handOver(ctx, st)
	}
	r.cfg.Metrics.ReconciledOrganizations(st.Summary, err)
	return st.Summary, err
}

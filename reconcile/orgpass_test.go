package reconcile_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/store"
)

// driveOrgPass runs reconcile-organizations-with-clerk of r as Inngest would on its cron
// schedule, then each run that the OrganizationsContinueEvent of the one before starts
// (drivePassRuns).
func driveOrgPass(t *testing.T, r *reconcile.Reconciler, maxRuns int) passRuns[reconcile.OrganizationsSummary] {
	t.Helper()
	return drivePassRuns(t, r, cronEvent(), maxRuns, driveOrgRunOn, func(s reconcile.OrganizationsSummary) bool { return s.Continued },
		reconcile.OrganizationsContinueEvent, "%s-orgs-run-%d")
}

// bigOrgScenario is an organizations' pass over org_big, whose n members Clerk lists
// (user_00001... updated at 2000), and org_01 to org_03 of one member each. The database has
// the four organizations (older, at 1000), the first 20 memberships of org_big (older), and
// gone memberships Clerk no longer has: gone of org_big and one of org_01.
func bigOrgScenario(t *testing.T, n, gone int) (*store.Store, *clerkfake.Server) {
	t.Helper()
	small := fakeOrgs(3, 2000)
	big := clerkfake.NewOrganization("org_big", "Big", 2000)
	fake := newOrgFake(t, append(small, big), fakeMembers(small, 1, 2000))
	for i := range n {
		fake.PutMembership(clerkfake.NewMembership("org_big", fmt.Sprintf("user_%05d", i+1), "org:member", 2000))
	}
	st := openStore(t)
	stored := append(fakeOrgs(3, 1000), clerkfake.NewOrganization("org_big", "Big", 1000))
	var members []clerkfake.Membership
	for i := range min(20, n) {
		members = append(members, clerkfake.NewMembership("org_big", fmt.Sprintf("user_%05d", i+1), "org:member", 1000))
	}
	for i := range gone {
		members = append(members, clerkfake.NewMembership("org_big", fmt.Sprintf("user_gone%02d", i), "org:member", 1000))
	}
	members = append(members, clerkfake.NewMembership("org_01", "user_gone", "org:member", 1000))
	seedOrgs(t, st, stored, members)
	return st, fake
}

// goneMemberships returns the ids of the memberships bigOrgScenario stores that Clerk lacks.
func goneMemberships(gone int) []string {
	ids := []string{clerkfake.MembershipID("org_01", "user_gone")}
	for i := range gone {
		ids = append(ids, clerkfake.MembershipID("org_big", fmt.Sprintf("user_gone%02d", i)))
	}
	return ids
}

// TestOrgPassManyMembers: an organization of 500 members, 25 a page, is listed across
// several steps (each starts no page past half its budget), and the pass, whose runs may take 8
// steps, goes on run after run through OrganizationsContinueEvent: every step's output and
// every continuation stays small, the memberships stored before the list that it lacks are
// found by org-member-find steps of 10 marks each (not in the step that ends the list),
// confirmed and deleted (and only those), and the last run's summary covers the whole pass.
func TestOrgPassManyMembers(t *testing.T) {
	t.Parallel()
	const n, gone, pageSize, maxSteps = 500, 5, 25, 8
	st, fake := bigOrgScenario(t, n, gone)
	r := newReconciler(t, st, fake, reconcile.Config{PageSize: pageSize, MaxDeleteShare: 0.5})
	reconcile.SetMemberPages(r, 4) // at most 4 of org_big's 21 pages (the last empty) a step
	reconcile.SetMaxRunSteps(r, maxSteps)
	reconcile.SetFindChunk(r, 10) // org_big's 25 stored memberships over 3 org-member-find steps
	runs := driveOrgPass(t, r, 20)

	want := reconcile.OrganizationsSummary{Pages: 1, Runs: len(runs.steps),
		Organizations: reconcile.Counts{Seen: 4, Updated: 4},
		Memberships:   reconcile.Counts{Seen: n + 3, Inserted: n - 20 + 3, Updated: 20, Deleted: gone + 1}}
	if runs.sum != want {
		t.Errorf("last run's summary = %+v; want %+v", runs.sum, want)
	}
	if len(runs.steps) < 3 {
		t.Errorf("the pass took %d runs; want several", len(runs.steps))
	}
	memberSteps, findSteps := 0, 0
	for i, steps := range runs.steps {
		if len(steps) > maxSteps {
			t.Errorf("run %d took %d steps; want at most %d", i+1, len(steps), maxSteps)
		}
		for _, s := range steps {
			if strings.HasPrefix(s.Step, "org-members-") {
				memberSteps++
			}
			if strings.HasPrefix(s.Step, "org-member-find-") {
				findSteps++
			}
			if len(s.Data) > maxStepOutput || strings.Count(string(s.Data), `"user_`)+strings.Count(string(s.Data), `"orgmem_`) > 1 {
				t.Errorf("run %d: step %s output %d bytes: %s; want at most %d, and no list of ids", i+1, s.Step, len(s.Data), s.Data, maxStepOutput)
			}
		}
	}
	if memberSteps < 6 {
		t.Errorf("org-members steps = %d; want at least 6 (21 pages of org_big, at most 4 a step)", memberSteps)
	}
	if findSteps != 3 {
		t.Errorf("org-member-find steps = %d; want 3 (25 stored memberships of org_big, 10 a step)", findSteps)
	}
	for i, e := range runs.events {
		if len(e) > 1024 {
			t.Errorf("continuation %d carries %d bytes: %s; want at most 1 KiB", i+1, len(e), e)
		}
	}
	for _, id := range goneMemberships(gone) {
		if m := getMembership(t, st, id); !m.Deleted || m.DeletedAt != deletedAt {
			t.Errorf("%s = %+v; want a tombstone deleted at %d", id, m, int64(deletedAt))
		}
	}
	if live := liveMembershipIDs(t, st); len(live) != n+3 {
		t.Errorf("live memberships = %d; want %d", len(live), n+3)
	}
	for _, u := range []string{"user_00001", "user_00020", fmt.Sprintf("user_%05d", n)} {
		if m := getMembership(t, st, clerkfake.MembershipID("org_big", u)); m.UpdatedAt != 2000 || m.Deleted {
			t.Errorf("membership of %s = %+v; want Clerk's (updated at 2000), live", u, m)
		}
	}
	if left, err := st.ForgetReconcileMarks(t.Context(), "organizations", ""); err != nil || left != 0 {
		t.Errorf("mark collections left after the pass = %d, %v; want none", left, err)
	}
}

// TestOrgPassMembersSkippedByPaging: while org_big's list is read, user_00001 (on a page read
// already) and user_00035 (on a page still to come) leave: the first shifts user_00021 onto a
// page already read, so offset paging skips it. Both it and user_00035 are then deletion
// candidates: Clerk's answer for user_00021 keeps it (still in Clerk), user_00035 is deleted,
// also when the list spans steps and the pass spans runs; user_00001, listed before it left,
// is the webhook's to delete. With a stricter cap, every candidate stays, refused.
func TestOrgPassMembersSkippedByPaging(t *testing.T) {
	t.Parallel()
	const n, pageSize = 40, 10
	confirmed := reconcile.Counts{Seen: n + 1, Inserted: 3, Updated: 20, Skipped: 19, Deleted: 2, StillInClerk: 1}
	tests := []struct {
		name     string
		maxShare float64
		maxSteps int
		want     reconcile.Counts
	}{
		{name: "confirmed", maxShare: 0.5, want: confirmed},
		{name: "confirmed across runs", maxShare: 0.5, maxSteps: 5, want: confirmed},
		{name: "refused by the cap across runs", maxShare: 0.01, maxSteps: 5, want: reconcile.Counts{Seen: n + 1, Inserted: 3, Updated: 20, Skipped: 18, Refused: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, fake := bigOrgScenario(t, n, 0)
			// The database has every member of org_big (the first 20 older).
			var members []clerkfake.Membership
			for i := 20; i < n; i++ {
				members = append(members, clerkfake.NewMembership("org_big", fmt.Sprintf("user_%05d", i+1), "org:member", 2000))
			}
			seedOrgs(t, st, nil, members)
			listedThenLeft := clerkfake.MembershipID("org_big", "user_00001")
			left := clerkfake.MembershipID("org_big", "user_00035")
			skipped := clerkfake.MembershipID("org_big", "user_00021")
			fake.BeforeListOf("/v1/organizations/org_big/memberships", func(offset int) {
				if offset == 20 {
					fake.RemoveMembership(listedThenLeft)
					fake.RemoveMembership(left)
				}
			})
			r := newReconciler(t, st, fake, reconcile.Config{PageSize: pageSize, MaxDeleteShare: tt.maxShare})
			reconcile.SetMemberPages(r, 2) // org_big's 4 pages over 3 steps
			reconcile.SetMaxRunSteps(r, tt.maxSteps)
			got, err := r.RunOrganizations(t.Context())
			if err != nil {
				t.Fatalf("RunOrganizations = %v", err)
			}
			if got.Memberships != tt.want {
				t.Errorf("memberships = %+v; want %+v", got.Memberships, tt.want)
			}
			if tt.maxSteps > 0 && got.Runs < 3 {
				t.Errorf("runs = %d; want several", got.Runs)
			}
			for _, id := range []string{skipped, listedThenLeft} {
				if m := getMembership(t, st, id); m.Deleted {
					t.Errorf("%s = %+v; want live", id, m)
				}
			}
			wantGone := tt.want.Refused == 0
			for _, id := range []string{left, clerkfake.MembershipID("org_01", "user_gone")} {
				if m := getMembership(t, st, id); m.Deleted != wantGone {
					t.Errorf("%s = %+v; want deleted %t", id, m, wantGone)
				}
			}
		})
	}
}

// TestOrgPassOneAtATime: while an organizations' pass waits for its next run, a new pass does
// nothing; the waiting pass then goes on and ends, and the next pass runs. Every run checks the
// key's Clerk instance again: a key changed between two runs stops the pass before it writes.
func TestOrgPassOneAtATime(t *testing.T) {
	t.Parallel()
	st, fake := bigOrgScenario(t, 30, 1)
	r := newReconciler(t, st, fake, reconcile.Config{PageSize: 10, MaxDeleteShare: 0.5})
	reconcile.SetMaxRunSteps(r, 6)
	sent := &sentEvents{}
	reconcile.SetSender(r, sent)

	_, first := driveOrgRun(t, r, 100)
	if !first.Continued {
		t.Fatalf("first run = %+v; want handed over", first)
	}
	next, _ := sent.last(t)
	calls, busy := driveOrgRunOn(t, r, requestEvent(map[string]any{reconcile.AllowMassDeleteField: true}), 100)
	if !busy.SkippedBusy || busy.Pages != 0 || len(calls) != 2 || calls[0].Step != "org-start-pass" {
		t.Errorf("a request while a pass waits for its next run = %+v after %d calls; want skipped_busy after org-start-pass alone", busy, len(calls))
	}

	reconcile.SetMaxRunSteps(r, 800)
	_, rest := driveOrgRunOn(t, r, next, 200)
	if rest.Continued || rest.SkippedBusy || rest.Runs != 2 || rest.Memberships.Seen != 33 || rest.Memberships.Deleted != 2 {
		t.Errorf("the waiting pass's next run = %+v; want the whole pass over 2 runs: 33 memberships seen, 2 deleted", rest)
	}
	if _, again := driveOrgRunOn(t, r, requestEvent(nil), 200); again.SkippedBusy || again.Memberships.Seen != 33 {
		t.Errorf("a pass after it = %+v; want a whole pass", again)
	}

}

// TestOrgPassInstanceCheckedEachRun: every run of an organizations' pass checks the key's Clerk
// instance again, so a key changed between two runs (to another instance's) stops the pass
// before it writes.
func TestOrgPassInstanceCheckedEachRun(t *testing.T) {
	t.Parallel()
	st, fake := bigOrgScenario(t, 30, 1)
	fake.BeforeListOf("/v1/organizations", func(int) { fake.SetInstance("ins_another") })
	r := newReconciler(t, st, fake, reconcile.Config{PageSize: 10, MaxDeleteShare: 0.5})
	reconcile.SetMaxRunSteps(r, 6) // start, check, clear, org-list-0, check-overlap, hand-over
	got, err := r.RunOrganizations(t.Context())
	if !errors.Is(err, reconcile.ErrWrongInstance) {
		t.Fatalf("RunOrganizations = %+v, %v; want an error wrapping ErrWrongInstance from the second run's check", got, err)
	}
	if got.Pages != 0 || got.Memberships.Seen != 0 {
		t.Errorf("RunOrganizations = %+v; want nothing written", got)
	}
	if o := getOrg(t, st, "org_01"); o.UpdatedAt != 1000 {
		t.Errorf("org_01 updated_at = %d; want 1000, unwritten", o.UpdatedAt)
	}
}

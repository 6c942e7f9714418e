package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdkerrors "github.com/inngest/inngestgo/errors"

	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/store"
)

// What the root wires in satisfies what the package declares it needs.
var (
	_ reconcile.Store = (*store.Store)(nil)
	_ reconcile.Clerk = (*clerk.API)(nil)
)

// fakeOrgs returns n organizations org_01, org_02, ... created in that order, all updated at
// updatedAt.
func fakeOrgs(n int, updatedAt int64) []clerkfake.Organization {
	orgs := make([]clerkfake.Organization, n)
	for i := range orgs {
		orgs[i] = clerkfake.NewOrganization(fmt.Sprintf("org_%02d", i+1), "Org", updatedAt)
	}
	return orgs
}

// fakeMembers returns, for each organization, the memberships of the users user_01... (perOrg
// of them), as members, all updated at updatedAt.
func fakeMembers(orgs []clerkfake.Organization, perOrg int, updatedAt int64) []clerkfake.Membership {
	var members []clerkfake.Membership
	for _, o := range orgs {
		for j := range perOrg {
			members = append(members, clerkfake.NewMembership(o.ID, fmt.Sprintf("user_%02d", j+1), "org:member", updatedAt))
		}
	}
	return members
}

// newOrgFake returns a stand-in with no user and the given organizations and memberships.
func newOrgFake(t *testing.T, orgs []clerkfake.Organization, members []clerkfake.Membership) *clerkfake.Server {
	fake := clerkfake.New(t, testKey)
	for _, o := range orgs {
		fake.PutOrganization(o)
	}
	for _, m := range members {
		fake.PutMembership(m)
	}
	return fake
}

// seedOrgs writes organizations and memberships to st as the webhook functions would.
func seedOrgs(t *testing.T, st *store.Store, orgs []clerkfake.Organization, members []clerkfake.Membership) {
	t.Helper()
	if err := clerkfake.SeedOrganizations(context.Background(), st, orgs...); err != nil {
		t.Fatal(err)
	}
	if err := clerkfake.SeedMemberships(context.Background(), st, members...); err != nil {
		t.Fatal(err)
	}
}

// getOrg reads a stored organization, failing the test when it cannot.
func getOrg(t *testing.T, st *store.Store, id string) store.Organization {
	t.Helper()
	o, err := st.GetOrganization(context.Background(), id)
	if err != nil {
		t.Fatalf("GetOrganization(%s) = %v", id, err)
	}
	return o
}

// getMembership reads a stored membership, failing the test when it cannot.
func getMembership(t *testing.T, st *store.Store, id string) store.Membership {
	t.Helper()
	m, err := st.GetMembership(context.Background(), id)
	if err != nil {
		t.Fatalf("GetMembership(%s) = %v", id, err)
	}
	return m
}

// liveMembershipIDs returns the ids of the live memberships, sorted.
func liveMembershipIDs(t *testing.T, st *store.Store) []string {
	t.Helper()
	ms, err := st.LiveMemberships(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

// liveOrgIDs returns the ids of the live organizations, sorted.
func liveOrgIDs(t *testing.T, st *store.Store) []string {
	t.Helper()
	ids, err := st.LiveOrganizationIDs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// orgRequests returns the requests to the organization endpoints the stand-in answered, 429s
// included, those matching keep only.
func orgRequests(fake *clerkfake.Server, keep func(string) bool) []string {
	var got []string
	for _, r := range fake.Requests() {
		if strings.Contains(r, "/v1/organizations") && keep(r) {
			got = append(got, r)
		}
	}
	return got
}

// orgGets returns the ids of the GET /v1/organizations/{id} requests (the confirmations of
// organization deletions).
func orgGets(fake *clerkfake.Server) []string {
	var ids []string
	for _, r := range fake.Requests() {
		if id, ok := strings.CutPrefix(r, "GET /v1/organizations/"); ok && !strings.Contains(id, "/") && !strings.Contains(id, "?") {
			ids = append(ids, id)
		}
	}
	return ids
}

// membershipChecks returns the membership lists filtered by user (the confirmations of
// membership deletions), as "org_id/user_id".
func membershipChecks(fake *clerkfake.Server) []string {
	var got []string
	for _, r := range fake.Requests() {
		rest, ok := strings.CutPrefix(r, "GET /v1/organizations/")
		org, query, _ := strings.Cut(rest, "/memberships?")
		if !ok || query == "" || !strings.Contains(query, "user_id=") {
			continue
		}
		_, user, _ := strings.Cut(query, "user_id=")
		user, _, _ = strings.Cut(user, "&")
		got = append(got, org+"/"+user)
	}
	return got
}

func TestReconcileOrganizationsPaging(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		orgs      int
		perOrg    int // memberships of each organization
		pageSize  int
		wantPages int
	}{
		{"no organizations", 0, 0, 2, 1},
		{"one partial page", 3, 2, 0, 1},
		{"pages of two, last partial, memberships over two pages", 5, 3, 2, 3},
		{"pages of two, last empty", 4, 2, 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			orgs := fakeOrgs(tt.orgs, 1000)
			fake := newOrgFake(t, orgs, fakeMembers(orgs, tt.perOrg, 1000))
			r := newReconciler(t, st, fake, reconcile.Config{PageSize: tt.pageSize, MaxDeleteShare: 0.1})

			got, err := r.RunOrganizations(t.Context())
			if err != nil {
				t.Fatalf("RunOrganizations = %v", err)
			}
			n, m := tt.orgs, tt.orgs*tt.perOrg
			want := reconcile.OrganizationsSummary{Pages: tt.wantPages,
				Organizations: reconcile.Counts{Seen: n, Inserted: n}, Memberships: reconcile.Counts{Seen: m, Inserted: m}}
			if got != want {
				t.Errorf("first RunOrganizations = %+v; want %+v", got, want)
			}
			size := tt.pageSize
			if size == 0 {
				size = clerk.MaxPageSize
			}
			// Two passes over the organizations (the survey, then the writes), then each
			// organization's memberships, once.
			var wantReqs []string
			for range 2 {
				for p := range tt.wantPages {
					wantReqs = append(wantReqs, fmt.Sprintf("GET /v1/organizations?limit=%d&offset=%d&order_by=%%2Bcreated_at", size, p*size))
				}
			}
			for _, o := range orgs {
				for p := range tt.perOrg/size + 1 {
					wantReqs = append(wantReqs, fmt.Sprintf("GET /v1/organizations/%s/memberships?limit=%d&offset=%d&order_by=%%2Bcreated_at", o.ID, size, p*size))
				}
			}
			if reqs := orgRequests(fake, func(string) bool { return true }); !reflect.DeepEqual(reqs, wantReqs) {
				t.Errorf("requests = %q; want %q", reqs, wantReqs)
			}
			if ids := liveOrgIDs(t, st); len(ids) != n {
				t.Errorf("live organizations after RunOrganizations = %d; want %d", len(ids), n)
			}
			if ids := liveMembershipIDs(t, st); len(ids) != m {
				t.Errorf("live memberships after RunOrganizations = %d; want %d", len(ids), m)
			}

			// A second run finds everything up to date.
			got, err = r.RunOrganizations(t.Context())
			if err != nil {
				t.Fatalf("second RunOrganizations = %v", err)
			}
			want = reconcile.OrganizationsSummary{Pages: tt.wantPages,
				Organizations: reconcile.Counts{Seen: n, Skipped: n}, Memberships: reconcile.Counts{Seen: m, Skipped: m}}
			if got != want {
				t.Errorf("second RunOrganizations = %+v; want %+v", got, want)
			}
		})
	}
}

func TestReconcileOrganizationsWrites(t *testing.T) {
	t.Parallel()
	clerkOrg := clerkfake.NewOrganization("org_1", "Clerk", 2000)
	clerkMember := clerkfake.NewMembership("org_1", "user_1", "org:admin", 2000)
	memberID := clerkMember.ID
	tests := []struct {
		name         string
		storedOrg    *clerkfake.Organization // written before, as a webhook would
		storedMember *clerkfake.Membership
		orgTombed    bool // then deleted, as organization.deleted would
		memberTombed bool // then deleted, as organizationMembership.deleted would
		wantOrg      reconcile.Counts
		wantMember   reconcile.Counts
		wantName     string // stored name afterwards ("" for a tombstone)
		wantRole     string // stored role afterwards ("" for a tombstone)
	}{
		{name: "missing organization and membership inserted",
			wantOrg: reconcile.Counts{Seen: 1, Inserted: 1}, wantMember: reconcile.Counts{Seen: 1, Inserted: 1}, wantName: "Clerk", wantRole: "org:admin"},
		{name: "older stored ones updated",
			storedOrg: ptr(clerkfake.NewOrganization("org_1", "Old", 1000)), storedMember: ptr(clerkfake.NewMembership("org_1", "user_1", "org:member", 1000)),
			wantOrg: reconcile.Counts{Seen: 1, Updated: 1}, wantMember: reconcile.Counts{Seen: 1, Updated: 1}, wantName: "Clerk", wantRole: "org:admin"},
		{name: "same versions unchanged",
			storedOrg: &clerkOrg, storedMember: &clerkMember,
			wantOrg: reconcile.Counts{Seen: 1, Skipped: 1}, wantMember: reconcile.Counts{Seen: 1, Skipped: 1}, wantName: "Clerk", wantRole: "org:admin"},
		{name: "newer webhook writes kept",
			storedOrg: ptr(clerkfake.NewOrganization("org_1", "Webhook", 3000)), storedMember: ptr(clerkfake.NewMembership("org_1", "user_1", "org:owner", 3000)),
			wantOrg: reconcile.Counts{Seen: 1, Skipped: 1}, wantMember: reconcile.Counts{Seen: 1, Skipped: 1}, wantName: "Webhook", wantRole: "org:owner"},
		{name: "tombstoned organization not revived, nor its membership",
			storedOrg: ptr(clerkfake.NewOrganization("org_1", "Old", 1000)), storedMember: ptr(clerkfake.NewMembership("org_1", "user_1", "org:member", 1000)), orgTombed: true,
			wantOrg: reconcile.Counts{Seen: 1, Skipped: 1}, wantMember: reconcile.Counts{Seen: 1, Skipped: 1}},
		{name: "tombstoned membership not revived",
			storedOrg: ptr(clerkfake.NewOrganization("org_1", "Old", 1000)), storedMember: ptr(clerkfake.NewMembership("org_1", "user_1", "org:member", 1000)), memberTombed: true,
			wantOrg: reconcile.Counts{Seen: 1, Updated: 1}, wantMember: reconcile.Counts{Seen: 1, Skipped: 1}, wantName: "Clerk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			if tt.storedOrg != nil {
				seedOrgs(t, st, []clerkfake.Organization{*tt.storedOrg}, nil)
			}
			if tt.storedMember != nil {
				seedOrgs(t, st, nil, []clerkfake.Membership{*tt.storedMember})
			}
			if tt.orgTombed {
				if _, err := st.DeleteOrganization(t.Context(), "org_1", 1500); err != nil {
					t.Fatal(err)
				}
			}
			if tt.memberTombed {
				if _, err := st.DeleteMembership(t.Context(), memberID, 1500); err != nil {
					t.Fatal(err)
				}
			}
			fake := newOrgFake(t, []clerkfake.Organization{clerkOrg}, []clerkfake.Membership{clerkMember})
			got, err := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 0.1}).RunOrganizations(t.Context())
			if err != nil {
				t.Fatalf("RunOrganizations = %v", err)
			}
			want := reconcile.OrganizationsSummary{Pages: 1, Organizations: tt.wantOrg, Memberships: tt.wantMember}
			if got != want {
				t.Errorf("RunOrganizations = %+v; want %+v", got, want)
			}
			if o := getOrg(t, st, "org_1"); o.Name != tt.wantName || o.Deleted != tt.orgTombed {
				t.Errorf("stored org_1 name %q, deleted %t; want %q, %t", o.Name, o.Deleted, tt.wantName, tt.orgTombed)
			}
			gone := tt.orgTombed || tt.memberTombed
			if m := getMembership(t, st, memberID); m.Role != tt.wantRole || m.Deleted != gone {
				t.Errorf("stored %s role %q, deleted %t; want %q, %t", memberID, m.Role, m.Deleted, tt.wantRole, gone)
			}
		})
	}
}

func TestReconcileOrganizationsDeletions(t *testing.T) {
	t.Parallel()
	m := clerkfake.MembershipID
	tests := []struct {
		name      string
		stored    int      // org_01... live in the database, each with user_01's membership
		extraOrgs []string // more live organizations, not in Clerk, each with user_01's membership
		// extraMembers are users whose membership of org_01 is live in the database, not in
		// Clerk
		extraMembers []string
		inClerk      int // org_01... in Clerk, each with user_01's membership
		share        float64
		allow        bool
		want         reconcile.OrganizationsSummary
		wantGoneOrgs []string // organizations the run deleted
		wantGone     []string // memberships that ended, with their organization or on their own
		wantGets     []string // organizations confirmed with GET /v1/organizations/{id}
		wantChecks   []string // memberships confirmed with a list filtered by user, as org/user
	}{
		{
			name: "organization missing from Clerk tombstoned with its memberships", stored: 10, extraOrgs: []string{"org_gone"}, inClerk: 10, share: 0.1,
			want: reconcile.OrganizationsSummary{Pages: 1,
				Organizations: reconcile.Counts{Seen: 10, Skipped: 10, Deleted: 1}, Memberships: reconcile.Counts{Seen: 10, Skipped: 10}},
			wantGoneOrgs: []string{"org_gone"}, wantGone: []string{m("org_gone", "user_01")}, wantGets: []string{"org_gone"},
		},
		{
			name: "membership removed from an existing organization deleted", stored: 10, extraMembers: []string{"user_x"}, inClerk: 10, share: 0.1,
			want: reconcile.OrganizationsSummary{Pages: 1,
				Organizations: reconcile.Counts{Seen: 10, Skipped: 10}, Memberships: reconcile.Counts{Seen: 10, Skipped: 10, Deleted: 1}},
			wantGone: []string{m("org_01", "user_x")}, wantChecks: []string{"org_01/user_x"},
		},
		{
			name: "mass deletion of organizations refused", stored: 10, inClerk: 5, share: 0.1,
			want: reconcile.OrganizationsSummary{Pages: 1,
				Organizations: reconcile.Counts{Seen: 5, Skipped: 5, Refused: 5}, Memberships: reconcile.Counts{Seen: 5, Skipped: 5}},
		},
		{
			name: "mass deletion of organizations allowed by override", stored: 10, inClerk: 5, share: 0.1, allow: true,
			want: reconcile.OrganizationsSummary{Pages: 1,
				Organizations: reconcile.Counts{Seen: 5, Skipped: 5, Deleted: 5}, Memberships: reconcile.Counts{Seen: 5, Skipped: 5}},
			wantGoneOrgs: []string{"org_06", "org_07", "org_08", "org_09", "org_10"},
			wantGone:     []string{m("org_06", "user_01"), m("org_07", "user_01"), m("org_08", "user_01"), m("org_09", "user_01"), m("org_10", "user_01")},
			wantGets:     []string{"org_06", "org_07", "org_08", "org_09", "org_10"},
		},
		{
			// 12 live memberships before the run: 10% of them is 1.2.
			name: "mass deletion of memberships refused", stored: 10, extraMembers: []string{"user_x1", "user_x2"}, inClerk: 10, share: 0.1,
			want: reconcile.OrganizationsSummary{Pages: 1,
				Organizations: reconcile.Counts{Seen: 10, Skipped: 10}, Memberships: reconcile.Counts{Seen: 10, Skipped: 10, Refused: 2}},
		},
		{
			name: "mass deletion of memberships allowed by override", stored: 10, extraMembers: []string{"user_x1", "user_x2"}, inClerk: 10, share: 0.1, allow: true,
			want: reconcile.OrganizationsSummary{Pages: 1,
				Organizations: reconcile.Counts{Seen: 10, Skipped: 10}, Memberships: reconcile.Counts{Seen: 10, Skipped: 10, Deleted: 2}},
			wantGone: []string{m("org_01", "user_x1"), m("org_01", "user_x2")}, wantChecks: []string{"org_01/user_x1", "org_01/user_x2"},
		},
		{
			// 10 sign-ups: the caps are shares of what was live before the run.
			name: "caps count what was live before the run", stored: 8, extraOrgs: []string{"org_gone1", "org_gone2"}, inClerk: 18, share: 0.1,
			want: reconcile.OrganizationsSummary{Pages: 1,
				Organizations: reconcile.Counts{Seen: 18, Inserted: 10, Skipped: 8, Refused: 2}, Memberships: reconcile.Counts{Seen: 18, Inserted: 10, Skipped: 8}},
		},
		{
			name: "share 0 refuses any deletion", stored: 10, extraOrgs: []string{"org_gone"}, extraMembers: []string{"user_x"}, inClerk: 10, share: 0,
			want: reconcile.OrganizationsSummary{Pages: 1,
				Organizations: reconcile.Counts{Seen: 10, Skipped: 10, Refused: 1}, Memberships: reconcile.Counts{Seen: 10, Skipped: 10, Refused: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			stored := fakeOrgs(tt.stored, 1000)
			for _, id := range tt.extraOrgs {
				stored = append(stored, clerkfake.NewOrganization(id, "Extra", 1000))
			}
			members := fakeMembers(stored, 1, 1000)
			for _, u := range tt.extraMembers {
				members = append(members, clerkfake.NewMembership("org_01", u, "org:member", 1000))
			}
			seedOrgs(t, st, stored, members)
			inClerk := fakeOrgs(tt.inClerk, 1000)
			fake := newOrgFake(t, inClerk, fakeMembers(inClerk, 1, 1000))

			r := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: tt.share, AllowMassDelete: tt.allow})
			got, err := r.RunOrganizations(t.Context())
			if err != nil {
				t.Fatalf("RunOrganizations = %v", err)
			}
			if got != tt.want {
				t.Errorf("RunOrganizations = %+v; want %+v", got, tt.want)
			}
			if gets := orgGets(fake); !slices.Equal(gets, tt.wantGets) {
				t.Errorf("confirmations GET /v1/organizations/{id} = %q; want %q", gets, tt.wantGets)
			}
			if checks := membershipChecks(fake); !slices.Equal(checks, tt.wantChecks) {
				t.Errorf("confirmations of memberships = %q; want %q", checks, tt.wantChecks)
			}
			for _, o := range stored {
				got := getOrg(t, st, o.ID)
				wantGone := slices.Contains(tt.wantGoneOrgs, o.ID)
				if got.Deleted != wantGone {
					t.Errorf("%s deleted = %t; want %t", o.ID, got.Deleted, wantGone)
				}
				if wantGone && (got.DeletedAt != deletedAt || got.Name != "" || got.Slug != "") {
					t.Errorf("%s = %+v; want a tombstone deleted at %d", o.ID, got, int64(deletedAt))
				}
			}
			for _, mm := range members {
				got := getMembership(t, st, mm.ID)
				wantGone := slices.Contains(tt.wantGone, mm.ID)
				if got.Deleted != wantGone {
					t.Errorf("%s deleted = %t; want %t", mm.ID, got.Deleted, wantGone)
				}
				if wantGone && got.DeletedAt != deletedAt {
					t.Errorf("%s = %+v; want a tombstone deleted at %d", mm.ID, got, int64(deletedAt))
				}
			}
		})
	}
}

// beforeListRead runs f once, just before Clerk's list on path is read at offset for the n-th
// time (1: the first).
func beforeListRead(fake *clerkfake.Server, path string, offset, n int, f func()) {
	var mu sync.Mutex
	reads := 0
	fake.BeforeListOf(path, func(o int) {
		if o != offset {
			return
		}
		mu.Lock()
		reads++
		now := reads == n
		mu.Unlock()
		if now {
			f()
		}
	})
}

// TestReconcileOrganizationsConfirmsBeforeDeleting: offset paging skips an organization, or a
// membership, when another is deleted between two pages: no page has it, but Clerk does, so
// it is confirmed alive and written, not deleted.
func TestReconcileOrganizationsConfirmsBeforeDeleting(t *testing.T) {
	t.Parallel()
	m := clerkfake.MembershipID
	tests := []struct {
		name   string
		orgs   int // org_01... in the database and in Clerk
		perOrg int
		path   string // the list changed between two of its pages
		read   int    // before its read at offset 2, this time
		remove func(fake *clerkfake.Server)
		want   reconcile.OrganizationsSummary
		gone   []string // memberships deleted
		gets   []string // organizations confirmed with GET /v1/organizations/{id}
		checks []string // memberships confirmed with a list filtered by user, as org/user
	}{
		{
			// Removing org_01 after page 0 of the write pass shifts org_03 onto page 0: no page
			// has it, but Clerk does. org_01's memberships, read after it is gone, are
			// confirmed gone and deleted (org_01 itself was listed: the next run deletes it).
			name: "organization skipped by paging", orgs: 6, perOrg: 1, path: "/v1/organizations", read: 2,
			remove: func(fake *clerkfake.Server) { fake.RemoveOrganization("org_01") },
			want: reconcile.OrganizationsSummary{Pages: 3,
				Organizations: reconcile.Counts{Seen: 5, Skipped: 6, StillInClerk: 1}, Memberships: reconcile.Counts{Seen: 4, Skipped: 4, Deleted: 1}},
			gone: []string{m("org_01", "user_01")}, gets: []string{"org_03"}, checks: []string{"org_01/user_01"},
		},
		{
			// Removing user_01's membership after page 0 shifts user_03's onto page 0.
			name: "membership skipped by paging", orgs: 1, perOrg: 4, path: "/v1/organizations/org_01/memberships", read: 1,
			remove: func(fake *clerkfake.Server) { fake.RemoveMembership(m("org_01", "user_01")) },
			want: reconcile.OrganizationsSummary{Pages: 1,
				Organizations: reconcile.Counts{Seen: 1, Skipped: 1}, Memberships: reconcile.Counts{Seen: 3, Skipped: 4, StillInClerk: 1}},
			checks: []string{"org_01/user_03"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			orgs := fakeOrgs(tt.orgs, 1000)
			members := fakeMembers(orgs, tt.perOrg, 1000)
			seedOrgs(t, st, orgs, members)
			fake := newOrgFake(t, orgs, members)
			beforeListRead(fake, tt.path, 2, tt.read, func() { tt.remove(fake) })

			r := newReconciler(t, st, fake, reconcile.Config{PageSize: 2, MaxDeleteShare: 0.5})
			got, err := r.RunOrganizations(t.Context())
			if err != nil {
				t.Fatalf("RunOrganizations = %v", err)
			}
			if got != tt.want {
				t.Errorf("RunOrganizations = %+v; want %+v", got, tt.want)
			}
			if gets := orgGets(fake); !slices.Equal(gets, tt.gets) {
				t.Errorf("confirmations GET /v1/organizations/{id} = %q; want %q", gets, tt.gets)
			}
			if checks := membershipChecks(fake); !slices.Equal(checks, tt.checks) {
				t.Errorf("confirmations of memberships = %q; want %q", checks, tt.checks)
			}
			if live := liveOrgIDs(t, st); len(live) != tt.orgs {
				t.Errorf("live organizations = %q; want all %d", live, tt.orgs)
			}
			for _, mm := range members {
				if got, want := getMembership(t, st, mm.ID).Deleted, slices.Contains(tt.gone, mm.ID); got != want {
					t.Errorf("%s deleted = %t; want %t", mm.ID, got, want)
				}
			}
		})
	}
}

// TestReconcileMembershipWrittenDuringRun: a membership a webhook writes while the run reads
// its organization's memberships from Clerk is not among the deletion candidates, though
// Clerk's list (read after, and lacking it) does not have it: the run read the database
// first. One the database had before the run, with the same list, is deleted.
func TestReconcileMembershipWrittenDuringRun(t *testing.T) {
	t.Parallel()
	newcomer := clerkfake.NewMembership("org_01", "user_new", "org:member", 1000)
	tests := []struct {
		name       string
		beforeRun  bool // the newcomer is stored before the run, rather than during it
		wantGone   bool
		wantMember reconcile.Counts
	}{
		{"written during the run: kept", false, false, reconcile.Counts{Seen: 1, Skipped: 1}},
		{"stored before the run: deleted", true, true, reconcile.Counts{Seen: 1, Skipped: 1, Deleted: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			orgs := fakeOrgs(1, 1000)
			members := fakeMembers(orgs, 1, 1000)
			seedOrgs(t, st, orgs, members)
			if tt.beforeRun {
				seedOrgs(t, st, nil, []clerkfake.Membership{newcomer})
			}
			fake := newOrgFake(t, orgs, members)
			fake.BeforeListOf("/v1/organizations/org_01/memberships", func(int) {
				if !tt.beforeRun {
					seedOrgs(t, st, nil, []clerkfake.Membership{newcomer})
				}
			})
			// No cap: only the order of the reads keeps the newcomer.
			got, err := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 1}).RunOrganizations(t.Context())
			if err != nil {
				t.Fatalf("RunOrganizations = %v", err)
			}
			want := reconcile.OrganizationsSummary{Pages: 1, Organizations: reconcile.Counts{Seen: 1, Skipped: 1}, Memberships: tt.wantMember}
			if got != want {
				t.Errorf("RunOrganizations = %+v; want %+v", got, want)
			}
			if m := getMembership(t, st, newcomer.ID); m.Deleted != tt.wantGone {
				t.Errorf("%s deleted = %t; want %t", newcomer.ID, m.Deleted, tt.wantGone)
			}
		})
	}
}

// orgDatabaseState is every stored organization and membership of the given ids, live or not,
// and the live ones' ids: what the tests of refused runs compare before and after.
type orgDatabaseState struct {
	Orgs        map[string]store.Organization
	Members     map[string]store.Membership
	LiveOrgs    []string
	LiveMembers []string
}

func orgState(t *testing.T, st *store.Store, orgs []clerkfake.Organization, members []clerkfake.Membership) orgDatabaseState {
	t.Helper()
	s := orgDatabaseState{Orgs: map[string]store.Organization{}, Members: map[string]store.Membership{},
		LiveOrgs: liveOrgIDs(t, st), LiveMembers: liveMembershipIDs(t, st)}
	for _, o := range orgs {
		s.Orgs[o.ID] = getOrg(t, st, o.ID)
	}
	for _, m := range members {
		s.Members[m.ID] = getMembership(t, st, m.ID)
	}
	return s
}

// foreignOrgs returns n organizations of another instance, none of them in fakeOrgs, each with
// a membership of user_01.
func foreignOrgs(n int) ([]clerkfake.Organization, []clerkfake.Membership) {
	orgs := make([]clerkfake.Organization, n)
	for i := range orgs {
		orgs[i] = clerkfake.NewOrganization(fmt.Sprintf("org_foreign%03d", i+1), "Foreign", 1000)
	}
	return orgs, fakeMembers(orgs, 1, 1000)
}

// TestReconcileOrganizationsForeignInstance: a valid key for another Clerk instance, sharing
// none of the database's organizations, neither writes nor deletes any organization or
// membership; a key for another instance than the recorded one is refused before any
// organization is read, even with the override.
func TestReconcileOrganizationsForeignInstance(t *testing.T) {
	t.Parallel()
	stored := fakeOrgs(10, 1000)
	storedMembers := fakeMembers(stored, 2, 1000)
	tests := []struct {
		name     string
		recorded string
		allow    bool
		wantErr  bool
		want     reconcile.OrganizationsSummary
	}{
		{name: "no instance recorded: the survey refuses", want: reconcile.OrganizationsSummary{RefusedForeign: true}},
		{name: "another instance recorded: refused before reading organizations", recorded: clerkfake.DefaultInstance, wantErr: true},
		{name: "the override does not lift a recorded instance", recorded: clerkfake.DefaultInstance, allow: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			seedOrgs(t, st, stored, storedMembers)
			if tt.recorded != "" {
				if _, err := st.RecordClerkInstance(t.Context(), tt.recorded, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			before := orgState(t, st, stored, storedMembers)
			orgs, members := foreignOrgs(25)
			fake := newOrgFake(t, orgs, members)
			fake.SetInstance(foreignInstance)

			got, err := newReconciler(t, st, fake, reconcile.Config{PageSize: 10, MaxDeleteShare: 0.1, AllowMassDelete: tt.allow}).RunOrganizations(t.Context())
			if tt.wantErr {
				if !errors.Is(err, reconcile.ErrWrongInstance) || !strings.Contains(err.Error(), "forget-clerk-instance") {
					t.Fatalf("RunOrganizations = %+v, %v; want an error wrapping ErrWrongInstance naming forget-clerk-instance", got, err)
				}
				if reqs := orgRequests(fake, func(string) bool { return true }); len(reqs) != 0 {
					t.Errorf("organization requests = %q; want none (refused before reading any)", reqs)
				}
			} else {
				if err != nil || got != tt.want {
					t.Fatalf("RunOrganizations = %+v, %v; want %+v", got, err, tt.want)
				}
				lists := orgRequests(fake, func(r string) bool { return strings.HasPrefix(r, "GET /v1/organizations?") })
				if others := orgRequests(fake, func(r string) bool { return !strings.HasPrefix(r, "GET /v1/organizations?") }); len(lists) != 3 || len(others) != 0 {
					t.Errorf("organization requests = %q then %q; want 3 lists (the survey: 25 organizations, 10 a page) and nothing else", lists, others)
				}
			}
			if after := orgState(t, st, stored, storedMembers); !reflect.DeepEqual(after, before) {
				t.Errorf("database after RunOrganizations = %+v; want it unchanged, %+v", after, before)
			}
			if rec, err := st.ClerkInstance(t.Context()); rec != tt.recorded || err != nil {
				t.Errorf("ClerkInstance after RunOrganizations = %q, %v; want %q (unchanged)", rec, err, tt.recorded)
			}
		})
	}
}

// TestReconcileOrganizationsOverlapOverride: RECONCILE_ALLOW_MASS_DELETE lets one run through
// a list that shares too few organizations with the database.
func TestReconcileOrganizationsOverlapOverride(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	stored := fakeOrgs(6, 1000)
	seedOrgs(t, st, stored, fakeMembers(stored, 1, 1000))
	orgs, members := foreignOrgs(20)
	fake := newOrgFake(t, orgs, members)
	fake.SetInstance(foreignInstance)
	got, err := newReconciler(t, st, fake, reconcile.Config{PageSize: 10, MaxDeleteShare: 0.1, AllowMassDelete: true}).RunOrganizations(t.Context())
	if err != nil {
		t.Fatalf("RunOrganizations = %v", err)
	}
	want := reconcile.OrganizationsSummary{Pages: 3,
		Organizations: reconcile.Counts{Seen: 20, Inserted: 20, Deleted: 6}, Memberships: reconcile.Counts{Seen: 20, Inserted: 20}}
	if got != want {
		t.Errorf("RunOrganizations = %+v; want %+v", got, want)
	}
	if live := liveMembershipIDs(t, st); len(live) != 20 {
		t.Errorf("live memberships = %d; want the 20 foreign ones (the 6 others ended with their organizations)", len(live))
	}
	if rec, err := st.ClerkInstance(t.Context()); rec != foreignInstance || err != nil {
		t.Errorf("ClerkInstance after RunOrganizations = %q, %v; want %q", rec, err, foreignInstance)
	}
}

// TestReconcileOrganizationsRecordsInstance: a run that passes its checks records the
// instance, unless the database has live users, which only a users run or a backfill vouches
// for; a later run with a key for another instance is refused before it reads any
// organization.
func TestReconcileOrganizationsRecordsInstance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		users        int // user_01... in the database
		orgs         int // org_01... in the database
		recorded     string
		wantRecorded string
		want         reconcile.OrganizationsSummary
	}{
		{"empty database", 0, 0, "", clerkfake.DefaultInstance,
			reconcile.OrganizationsSummary{Pages: 1, Organizations: reconcile.Counts{Seen: 3, Inserted: 3}}},
		{"database sharing every organization", 0, 3, "", clerkfake.DefaultInstance,
			reconcile.OrganizationsSummary{Pages: 1, Organizations: reconcile.Counts{Seen: 3, Skipped: 3}}},
		{"database with users: left to the users' checks", 2, 3, "", "",
			reconcile.OrganizationsSummary{Pages: 1, Organizations: reconcile.Counts{Seen: 3, Skipped: 3}}},
		{"instance already recorded", 2, 3, clerkfake.DefaultInstance, clerkfake.DefaultInstance,
			reconcile.OrganizationsSummary{Pages: 1, Organizations: reconcile.Counts{Seen: 3, Skipped: 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openSeeded(t, tt.users, tt.recorded)
			seedOrgs(t, st, fakeOrgs(tt.orgs, 1000), nil)
			fake := newOrgFake(t, fakeOrgs(3, 1000), nil)
			got, err := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 0.1}).RunOrganizations(t.Context())
			if err != nil || got != tt.want {
				t.Fatalf("RunOrganizations = %+v, %v; want %+v", got, err, tt.want)
			}
			if rec, err := st.ClerkInstance(t.Context()); rec != tt.wantRecorded || err != nil {
				t.Fatalf("ClerkInstance after RunOrganizations = %q, %v; want %q", rec, err, tt.wantRecorded)
			}
			if tt.wantRecorded == "" {
				return
			}
			fake.SetInstance(foreignInstance)
			before := len(fake.Requests())
			if got, err := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 0.1}).RunOrganizations(t.Context()); !errors.Is(err, reconcile.ErrWrongInstance) {
				t.Fatalf("RunOrganizations with another instance = %+v, %v; want an error wrapping ErrWrongInstance", got, err)
			}
			if reqs := fake.Requests()[before:]; len(reqs) != 1 || reqs[0] != "GET /v1/jwks" {
				t.Errorf("requests of the refused run = %q; want only GET /v1/jwks", reqs)
			}
		})
	}
}

// TestReconcileOrganizationsNotEnabled: an instance with organizations turned off has none to
// list: the run ends after asking once, writing and deleting nothing, without an error.
func TestReconcileOrganizationsNotEnabled(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	stored := fakeOrgs(3, 1000)
	storedMembers := fakeMembers(stored, 1, 1000)
	seedOrgs(t, st, stored, storedMembers)
	before := orgState(t, st, stored, storedMembers)
	fake := newOrgFake(t, nil, nil)
	fake.DisableOrganizations()
	got, err := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 1, AllowMassDelete: true}).RunOrganizations(t.Context())
	if want := (reconcile.OrganizationsSummary{NotEnabled: true}); err != nil || got != want {
		t.Fatalf("RunOrganizations = %+v, %v; want %+v", got, err, want)
	}
	if reqs := fake.Requests(); len(reqs) != 2 || reqs[1] != "GET /v1/organizations?limit=500&offset=0&order_by=%2Bcreated_at" {
		t.Errorf("requests = %q; want GET /v1/jwks and one list", reqs)
	}
	if after := orgState(t, st, stored, storedMembers); !reflect.DeepEqual(after, before) {
		t.Errorf("database after RunOrganizations = %+v; want it unchanged, %+v", after, before)
	}
}

func TestCheckImportOrganizations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		orgs         int // org_01... in the database, beside 12 users Clerk shares
		foreign      bool
		notEnabled   bool
		allow        bool
		wantErr      error
		wantRecorded string
		wantLists    int // GET /v1/organizations requests (the survey), 10 a page
	}{
		{name: "no organization stored: no survey", wantRecorded: clerkfake.DefaultInstance},
		{name: "organizations shared: surveyed and recorded", orgs: 12, wantRecorded: clerkfake.DefaultInstance, wantLists: 2},
		{name: "foreign organizations: refused, not recorded", orgs: 12, foreign: true, wantErr: reconcile.ErrFewShared, wantLists: 2},
		{name: "organizations turned off while the database has some: refused", orgs: 12, notEnabled: true, wantErr: reconcile.ErrFewShared, wantLists: 1},
		{name: "foreign organizations allowed by the override", orgs: 12, foreign: true, allow: true, wantRecorded: clerkfake.DefaultInstance, wantLists: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openSeeded(t, 12, "")
			seedOrgs(t, st, fakeOrgs(tt.orgs, 1000), nil)
			fake := clerkfake.New(t, testKey, fakeUsers(12, 1000)...)
			orgs := fakeOrgs(12, 1000)
			if tt.foreign {
				orgs, _ = foreignOrgs(15)
			}
			for _, o := range orgs {
				fake.PutOrganization(o)
			}
			if tt.notEnabled {
				fake.DisableOrganizations()
			}
			r := newReconciler(t, st, fake, reconcile.Config{PageSize: 10, AllowMassDelete: tt.allow})
			_, err := r.CheckImport(t.Context())
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("CheckImport = %v; want %v", err, tt.wantErr)
			}
			if err != nil && (!strings.Contains(err.Error(), "CLERK_SECRET_KEY") || !strings.Contains(err.Error(), "live organizations")) {
				t.Errorf("CheckImport error %q does not name the organizations and say to check CLERK_SECRET_KEY", err)
			}
			if got := len(orgRequests(fake, func(r string) bool { return strings.HasPrefix(r, "GET /v1/organizations?") })); got != tt.wantLists {
				t.Errorf("organization list requests = %d; want %d", got, tt.wantLists)
			}
			if rec, err := st.ClerkInstance(t.Context()); rec != tt.wantRecorded || err != nil {
				t.Errorf("ClerkInstance after CheckImport = %q, %v; want %q", rec, err, tt.wantRecorded)
			}
			if live := liveOrgIDs(t, st); len(live) != tt.orgs {
				t.Errorf("live organizations after CheckImport = %d; want %d (it writes none)", len(live), tt.orgs)
			}
		})
	}
}

// TestReconcileOrganizationsAcrossRetries: a run that Clerk rate-limits in a survey, a
// memberships and a delete step answers each with Clerk's Retry-After, from the step that got
// the 429, and completes once Inngest calls the steps again, with the summary and writes of an
// undisturbed run. A memberships step rate-limited after its first organization keeps that one,
// and the next step starts at the rate-limited one; likewise a delete step.
func TestReconcileOrganizationsAcrossRetries(t *testing.T) {
	st := openStore(t)
	stored := fakeOrgs(10, 1000)
	gone := []clerkfake.Organization{clerkfake.NewOrganization("org_gone1", "Gone", 1000), clerkfake.NewOrganization("org_gone2", "Gone", 1000)}
	seedOrgs(t, st, append(slices.Clone(stored), gone...), fakeMembers(append(slices.Clone(stored), gone...), 1, 1000))
	orgs := fakeOrgs(10, 2000)
	fake := newOrgFake(t, orgs, fakeMembers(orgs, 1, 2000))
	fake.RateLimitOn("GET /v1/organizations?limit=4&offset=8", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
	fake.RateLimitOn("GET /v1/organizations/org_02/memberships", "75", "75")
	fake.RateLimitOn("GET /v1/organizations/org_gone2", "75", "75")
	m := &recordedRuns{}
	r := newReconciler(t, st, fake, reconcile.Config{PageSize: 4, MaxDeleteShare: 0.5, Metrics: m})

	start := time.Now()
	calls, got := driveOrgRun(t, r, 40)
	type retry struct {
		Step  string
		After string // the Retry-After answered, from the run's start, to 5 s
	}
	var retries, wantRetries []retry
	for _, c := range calls {
		switch {
		case c.Op == "StepError" && c.RetryAt.IsZero():
			retries = append(retries, retry{c.Step, "none"})
		case c.Op == "StepError":
			retries = append(retries, retry{c.Step, c.RetryAt.Sub(start).Round(5 * time.Second).String()})
		}
	}
	wantRetries = []retry{{"org-list-8", "1m30s"}, {"org-members-1", "1m15s"}, {"org-delete-1", "1m15s"}}
	if !reflect.DeepEqual(retries, wantRetries) {
		t.Errorf("failed steps (step, Retry-After) = %v; want %v", retries, wantRetries)
	}
	want := reconcile.OrganizationsSummary{Pages: 3,
		Organizations: reconcile.Counts{Seen: 10, Updated: 10, Deleted: 2}, Memberships: reconcile.Counts{Seen: 10, Updated: 10}}
	if got != want {
		t.Errorf("run output = %+v; want %+v", got, want)
	}
	if !reflect.DeepEqual(m.orgRuns, []reconcile.OrganizationsSummary{want}) || m.orgErrs[0] != nil || len(m.runs) != 0 {
		t.Errorf("organization runs reported to Metrics = %+v, %v (users' runs %d); want one, %+v without error", m.orgRuns, m.orgErrs, len(m.runs), want)
	}
	for _, o := range gone {
		if g := getOrg(t, st, o.ID); !g.Deleted || g.DeletedAt != deletedAt {
			t.Errorf("%s = %+v; want a tombstone deleted at %d", o.ID, g, int64(deletedAt))
		}
		if m := getMembership(t, st, clerkfake.MembershipID(o.ID, "user_01")); !m.Deleted {
			t.Errorf("membership of %s = %+v; want a tombstone, with its organization", o.ID, m)
		}
	}
	for _, o := range orgs {
		if g := getOrg(t, st, o.ID); g.UpdatedAt != 2000 || g.Deleted {
			t.Errorf("%s updated_at = %d, deleted %t; want Clerk's 2000, live", o.ID, g.UpdatedAt, g.Deleted)
		}
		if m := getMembership(t, st, clerkfake.MembershipID(o.ID, "user_01")); m.UpdatedAt != 2000 || m.Deleted {
			t.Errorf("membership of %s updated_at = %d, deleted %t; want Clerk's 2000, live", o.ID, m.UpdatedAt, m.Deleted)
		}
	}
}

// TestMembershipStepsSplitWithinBudget: reading memberships takes longer than one step's
// budget, so each memberships step starts no organization past half its budget and the next
// step goes on from there.
func TestMembershipStepsSplitWithinBudget(t *testing.T) {
	st := openStore(t)
	orgs := fakeOrgs(3, 1000)
	fake := newOrgFake(t, orgs, fakeMembers(orgs, 1, 1000))
	// A membership list takes 400 ms: past half a 700 ms budget, so a step reads one.
	fake.Delay("GET /v1/organizations/org_", 400*time.Millisecond)
	r := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 0.1})
	reconcile.SetStepBudget(r, 700*time.Millisecond)

	calls, got := driveOrgRun(t, r, 20)
	var steps []string
	for _, c := range calls {
		if strings.HasPrefix(c.Step, "org-members-") {
			steps = append(steps, c.Step+" "+c.Op)
		}
	}
	if want := []string{"org-members-0 StepRun", "org-members-1 StepRun", "org-members-2 StepRun"}; !reflect.DeepEqual(steps, want) {
		t.Errorf("memberships steps = %q; want %q (one 400 ms list each within a 700 ms budget)", steps, want)
	}
	lists := orgRequests(fake, func(r string) bool { return strings.Contains(r, "/memberships?") })
	var want []string
	for _, o := range orgs {
		want = append(want, "GET /v1/organizations/"+o.ID+"/memberships?limit=500&offset=0&order_by=%2Bcreated_at")
	}
	if !reflect.DeepEqual(lists, want) {
		t.Errorf("membership lists = %q; want %q (none started that the budget cannot finish)", lists, want)
	}
	wantSum := reconcile.OrganizationsSummary{Pages: 1, Organizations: reconcile.Counts{Seen: 3, Inserted: 3}, Memberships: reconcile.Counts{Seen: 3, Inserted: 3}}
	if got != wantSum {
		t.Errorf("run output = %+v; want %+v", got, wantSum)
	}
}

// TestOrganizationsStepRetryAt: a 429 the first organization step cannot wait out fails it at
// once with an inngestgo.RetryAtError at the time Clerk asked for.
func TestOrganizationsStepRetryAt(t *testing.T) {
	st := openStore(t)
	fake := newOrgFake(t, fakeOrgs(3, 1000), nil)
	fake.RateLimitOn("GET /v1/organizations?", "120")
	_, err := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 0.1}).RunOrganizations(t.Context())
	at := retryAt(err)
	if at.IsZero() || !errors.Is(err, clerk.ErrRateLimited) {
		t.Fatalf("RunOrganizations = %v; want a RetryAtError at +2m wrapping ErrRateLimited", err)
	}
	if d := time.Until(at); d < 118*time.Second || d > 121*time.Second {
		t.Errorf("RunOrganizations = RetryAtError at +%s; want +2m", d.Round(time.Second))
	}
	if live := liveOrgIDs(t, st); len(live) != 0 {
		t.Errorf("live organizations = %q; want none written", live)
	}
}

// retryAt returns the time of the inngestgo.RetryAtError err is, zero when it is none.
func retryAt(err error) time.Time {
	if at := sdkerrors.GetRetryAtTime(err); at != nil {
		return *at
	}
	return time.Time{}
}

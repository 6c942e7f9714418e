package main

import (
	"context"
	"fmt"
	"time"

	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/store"
)

// largeOrgID is the id of the organization -org-members generates: as long as Clerk's own
// organization ids (org_ and 27 characters).
const largeOrgID = "org_2zFakeLargeOrganization0001"

// measureOrganization measures one pass of reconcile-organizations-with-clerk over one
// organization with m members (-org-members m) through the dev server, as measureReconcile
// measures the users': the stand-in serves the organization with its m members computed
// (clerkfake.GenerateOrganization: the memberships of the generated users 0 to m-1) and those
// m users; the database holds the users (so that the users' run the same request starts only
// reads them) and the share o.preload of the memberships, with the organization when that
// share is above 0 (0: a first import, every membership written, the pass's heaviest case).
// `clerk-user-sync reconcile` requests the runs; the organizations' pass is followed across
// its runs (OrganizationsContinueEvent). It counts the Clerk requests for organizations and
// their memberships, and the organization's live memberships after. The outcome says how
// many org-members steps the members took, and UNEXPECTED unless Clerk's m memberships were
// all seen, none failed, and m are live after.
func measureOrganization(ctx context.Context, o options, fake *clerkfake.Server, dbs *databases, m int) result {
	res := result{what: "organization", users: m}
	fake.Generate(m)
	org := clerkfake.NewOrganization(largeOrgID, "A large organization", clerkfake.GeneratedUser(0).UpdatedAt)
	fake.GenerateOrganization(org, m)
	defer fake.RemoveOrganization(org.ID)
	fill := func(st *store.Store) error {
		t0 := time.Now()
		if err := preload(ctx, st, m); err != nil {
			return fmt.Errorf("preload: %w", err)
		}
		logf("organization %d: %d users pre-loaded in %v", m, m, time.Since(t0).Round(time.Second))
		res.preloaded = int(o.preload * float64(m))
		if res.preloaded == 0 {
			return nil
		}
		t0 = time.Now()
		if err := clerkfake.SeedOrganizations(ctx, st, org); err != nil {
			return err
		}
		for j := 0; j < res.preloaded; j++ {
			if err := clerkfake.SeedMemberships(ctx, st, clerkfake.GeneratedMembership(org.ID, j)); err != nil {
				return err
			}
		}
		res.preloadTime = time.Since(t0)
		logf("organization %d: the organization and %d memberships pre-loaded in %v", m, res.preloaded, res.preloadTime.Round(time.Second))
		return nil
	}
	s, mk, eventID, err := launch(ctx, o, fake, dbs, fmt.Sprintf("rscale_o%d_%d", m, time.Now().Unix()), fill)
	if err != nil {
		res.outcome = "ERROR: " + err.Error()
		return res
	}
	defer s.stop()
	out := s.follow(ctx, &res, mk, eventID, reconcile.OrganizationsFunctionID, orgsContinuation, true)
	st, err := s.storeAfter(ctx)
	if err != nil {
		res.outcome += " [counting the memberships: " + err.Error() + "]"
		return res
	}
	live, err := st.LiveMemberships(ctx, org.ID, "")
	if err != nil {
		res.outcome += " [counting the memberships: " + err.Error() + "]"
		return res
	}
	res.stored = len(live)
	if out == nil {
		return res
	}
	var sum reconcile.OrganizationsSummary
	switch err := decodeOutput(out, &sum); {
	case err != nil:
		res.outcome = "UNEXPECTED: " + err.Error() + ": " + res.outcome
	case sum.Memberships.Seen != m || sum.Memberships.Failed != 0 || res.stored != m:
		res.outcome = fmt.Sprintf("UNEXPECTED: %d members in Clerk, want them all seen and live: %s", m, res.outcome)
	default:
		res.outcome = fmt.Sprintf("%d members in %d org-members steps: %s", m, res.stepKinds["org-members"], res.outcome)
	}
	return res
}

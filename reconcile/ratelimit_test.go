package reconcile_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"clerksync/clerk"
	"clerksync/reconcile"
)

// TestRateShares: the two functions' runs, at the same time and each through its own client
// with its own share of the instance's rate limit (as the service wires them), never send the
// stand-in more than the sum of their shares in one of its windows, and meet no 429; the same
// runs without shares meet the stand-in's 429.
func TestRateShares(t *testing.T) {
	t.Parallel()
	const (
		instanceLimit = 10 // the stand-in's limit per window: below the two runs' requests
		usersShare    = 4  // per window
		orgsShare     = 3
	)
	tests := []struct {
		name                  string
		usersLimit, orgsLimit int
		window                time.Duration // of the stand-in and the clients alike
	}{
		// A window longer than the test: its 429 asks for more than a step waits, so the
		// runs stop at once instead of waiting it out.
		{"without shares", 0, 0, time.Hour},
		// Short windows, so that the shares spread the requests over a second or so.
		{"with shares", usersShare, orgsShare, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			orgs := fakeOrgs(4, 1000)
			fake := newOrgFake(t, orgs, fakeMembers(orgs, 3, 1000))
			for _, u := range fakeUsers(20, 1000) {
				fake.Put(u)
			}
			fake.LimitRate(instanceLimit, tt.window)
			cfg := reconcile.Config{PageSize: 5, MaxDeleteShare: 0.1}
			users := reconcile.New(st, newAPI(t, fake, clerk.APIConfig{RateLimit: tt.usersLimit, RateWindow: tt.window}), testLogger(t), cfg)
			orgRec := reconcile.New(st, newAPI(t, fake, clerk.APIConfig{RateLimit: tt.orgsLimit, RateWindow: tt.window}), testLogger(t), cfg)

			var wg sync.WaitGroup
			var usersSum reconcile.Summary
			var orgsSum reconcile.OrganizationsSummary
			var usersErr, orgsErr error
			wg.Go(func() { usersSum, usersErr = users.Run(t.Context()) })
			wg.Go(func() { orgsSum, orgsErr = orgRec.RunOrganizations(t.Context()) })
			wg.Wait()
			stats := fake.Stats()
			if tt.usersLimit == 0 {
				failed := errors.Is(usersErr, clerk.ErrRateLimited) || errors.Is(orgsErr, clerk.ErrRateLimited)
				if !failed || stats.RateLimited == 0 {
					t.Errorf("runs without shares = %v, %v, stand-in's %+v; want 429s past %d requests", usersErr, orgsErr, stats, instanceLimit)
				}
				return
			}
			if usersErr != nil || orgsErr != nil || usersSum.Counts.Inserted != 20 || orgsSum.Memberships.Inserted != 12 {
				t.Errorf("runs with shares = %+v, %v and %+v, %v; want 20 users and 12 memberships inserted", usersSum, usersErr, orgsSum, orgsErr)
			}
			if stats.RateLimited != 0 || stats.Requests <= instanceLimit || stats.PeakWindow > usersShare+orgsShare {
				t.Errorf("runs with shares %d and %d: stand-in's %+v; want over %d requests, no 429, at most %d in a window",
					usersShare, orgsShare, stats, instanceLimit, usersShare+orgsShare)
			}
			t.Logf("stand-in's %+v", stats)
		})
	}
}

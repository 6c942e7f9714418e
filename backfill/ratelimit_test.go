package backfill_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"clerksync/backfill"
	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
)

// TestFromAPIRateShare: a backfill through a client with a share of the instance's rate limit
// (the users' function's, as `clerk-user-sync backfill` has) imports every user without a 429,
// never more requests in one of the stand-in's windows than its share; the same backfill
// without a share meets the stand-in's 429.
func TestFromAPIRateShare(t *testing.T) {
	const (
		users         = 40
		pageSize      = 2  // the count, 21 pages (the last empty), then the organizations' list: 23 requests
		instanceLimit = 16 // the stand-in's limit per window: below the backfill's 23 requests
		share         = 6  // the client's limit per window
	)
	tests := []struct {
		name      string
		rateLimit int
		window    time.Duration // of the stand-in and the client alike
	}{
		// A window longer than the test: its 429 asks for more than the client waits, so the
		// backfill stops at once instead of waiting it out.
		{"without a share", 0, time.Hour},
		// Short windows, so that the 4 the share spreads the requests over take about 1 s.
		{"with a share", share, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			fake := clerkfake.New(t, "sk_test_backfill")
			fake.Generate(users)
			fake.LimitRate(instanceLimit, tt.window)
			api := clerk.NewAPI(clerk.APIConfig{SecretKey: fake.Key, APIURL: fake.URL, RateLimit: tt.rateLimit, RateWindow: tt.window}, testLogger(t))
			got, err := backfill.FromAPI(t.Context(), st, api, pageSize, backfill.NewProgress(&bytes.Buffer{}, pageSize))
			stats := fake.Stats()
			if tt.rateLimit == 0 {
				if !errors.Is(err, clerk.ErrRateLimited) || stats.RateLimited == 0 {
					t.Errorf("FromAPI without a share = %v, stand-in's %+v; want ErrRateLimited after a 429", err, stats)
				}
				return
			}
			if err != nil || got.Created != users {
				t.Errorf("FromAPI with a share = created %d, %v; want %d, no error", got.Created, err, users)
			}
			if stats.RateLimited != 0 || stats.Requests != 23 || stats.PeakWindow < 1 || stats.PeakWindow > share {
				t.Errorf("FromAPI with a share of %d: stand-in's %+v; want 23 requests, no 429, at most %d in a window", share, stats, share)
			}
		})
	}
}

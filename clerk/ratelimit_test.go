package clerk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
)

// TestRateLimit: a client with a RateLimit (its share of the instance's limit) never sends the
// stand-in more requests in one of its windows than that, and so gets no 429 where a client without one does, for the same requests.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	const (
		instanceLimit = 20 // the stand-in's limit per window
		share         = 8  // the client's RateLimit per window
		pages         = 30 // ListUsers calls: 30 requests, 1.5 times the stand-in's limit
	)
	tests := []struct {
		name      string
		rateLimit int
		window    time.Duration // of the stand-in and the client alike
	}{
		// A window longer than the test: the requests past the limit surely meet a 429.
		{"without a share", 0, time.Hour},
		// Short windows, so that the 4 the share spreads the requests over take 1.5 s.
		{"with a share", share, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := clerkfake.New(t, testKey)
			fake.Generate(pages * 2)
			fake.LimitRate(instanceLimit, tt.window)
			api := newAPI(t, fake, clerk.APIConfig{RateLimit: tt.rateLimit, RateWindow: tt.window})
			// A 429 fails the call at once (it is counted, not waited out).
			ctx := clerk.WithMaxRetryWait(t.Context(), 0)
			failed := 0
			for i := range pages {
				if _, err := api.ListUsers(ctx, 2, 2*i); err != nil {
					if !errors.Is(err, clerk.ErrRateLimited) {
						t.Fatalf("ListUsers(2, %d) = %v; want no error or ErrRateLimited", 2*i, err)
					}
					failed++
				}
			}
			got := fake.Stats()
			if tt.rateLimit == 0 {
				if got.RateLimited == 0 || failed == 0 {
					t.Errorf("without a share: %d of %d ListUsers failed, stand-in's %+v; want 429s past %d requests", failed, pages, got, instanceLimit)
				}
				return
			}
			if failed != 0 || got.RateLimited != 0 {
				t.Errorf("with a share of %d: %d of %d ListUsers failed, stand-in's %+v; want no 429", share, failed, pages, got)
			}
			if got.Requests != pages || got.PeakWindow < 1 || got.PeakWindow > share {
				t.Errorf("with a share of %d: stand-in's %+v; want %d requests, at most %d in a window", share, got, pages, share)
			}
		})
	}
}

// TestRateLimitDeadline: a request that would fit the client's share only after its context's
// deadline is not sent: the call fails at once with a *RateLimitedError (Share set) saying
// how long the share is used up, which matches ErrRateLimited (a reconciliation step comes
// back then, as after Clerk's own 429).
func TestRateLimitDeadline(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t, testKey)
	fake.Generate(3)
	api := newAPI(t, fake, clerk.APIConfig{RateLimit: 2, RateWindow: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for i := range 2 {
		if _, err := api.GetUser(ctx, clerkfake.GeneratedID(i)); err != nil {
			t.Fatalf("GetUser #%d within the share = %v; want no error", i+1, err)
		}
	}
	_, err := api.GetUser(ctx, clerkfake.GeneratedID(2))
	var rl *clerk.RateLimitedError
	if !errors.As(err, &rl) || !rl.Share || rl.RetryAfter < 59*time.Minute || !errors.Is(err, clerk.ErrRateLimited) {
		t.Errorf("GetUser past the share = %v; want a *RateLimitedError with Share, RetryAfter about 1h", err)
	}
	if got := fake.Stats().Requests; got != 2 {
		t.Errorf("stand-in got %d requests; want 2 (the third not sent)", got)
	}
	// GET /v1/jwks is outside Clerk's limit, and outside the share.
	if _, err := api.InstanceID(ctx); err != nil {
		t.Errorf("InstanceID past the share = %v; want no error (GET /v1/jwks is not limited)", err)
	}
}

package clerk

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"
)

// RateWindow is the window Clerk counts its Backend API rate limit in: 1,000 requests per 10 s
// on a production instance, 100 on a development one, per instance, every endpoint but
// GET /v1/jwks together (https://clerk.com/docs/guides/how-clerk-works/system-limits).
const RateWindow = 10 * time.Second

// rateGate lets at most n requests of one client reach Clerk in any window of length window.
// It has n slots: a request takes a free one before it is sent and gives it back when its
// answer arrives, and the slot is free again one window after that. Clerk counts a request
// when it receives it, which is before its answer arrives: so two requests of one slot reach
// Clerk more than a window apart, and Clerk never counts more than n of them in one window,
// whatever the network's delays, fixed or sliding windows alike.
type rateGate struct {
	n      int
	window time.Duration

	mu       sync.Mutex
	free     []time.Time   // when each slot not in use is free again; len(free) + in use == n
	released chan struct{} // closed (and replaced) whenever a slot is given back
}

// newRateGate returns a gate of n requests per window (n >= 1, window > 0).
func newRateGate(n int, window time.Duration) *rateGate {
	return &rateGate{n: n, window: window, free: make([]time.Time, n), released: make(chan struct{})}
}

// acquire waits for a free slot and takes it; the caller gives it back with release once the
// answer has arrived. It returns ctx's error when ctx ends first, and, without waiting, a
// *RateLimitedError (Share set, RetryAfter the wait) when the next slot frees only after ctx's
// deadline: the caller can come back then, as after Clerk's own 429.
func (g *rateGate) acquire(ctx context.Context) error {
	for {
		var err error
		g.mu.Lock()
		now := time.Now()
		first := -1
		for i, at := range g.free {
			if first < 0 || at.Before(g.free[first]) {
				first = i
			}
		}
		if first >= 0 && !g.free[first].After(now) {
			g.free = append(g.free[:first], g.free[first+1:]...)
			g.mu.Unlock()
			return nil
		}
		released := g.released
		var wait time.Duration // 0: every slot is in use; wait for one to come back
		if first >= 0 {
			wait = g.free[first].Sub(now)
		}
		g.mu.Unlock()
		if deadline, ok := ctx.Deadline(); ok && wait > 0 && now.Add(wait).After(deadline) {
			return &RateLimitedError{RetryAfter: wait, Share: true}
		}
		var timer *time.Timer
		var fired <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fired = timer.C
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-released:
		case <-fired:
		}
		if timer != nil {
			timer.Stop()
		}
		if err != nil {
			return err
		}
	}
}

// release gives a slot back, free again one window from now.
func (g *rateGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.free = append(g.free, time.Now().Add(g.window))
	close(g.released)
	g.released = make(chan struct{})
}

// limited reports whether Clerk counts req in its rate limit: every request but GET /v1/jwks.
func limited(req *http.Request) bool {
	return !strings.HasSuffix(req.URL.Path, "/jwks")
}

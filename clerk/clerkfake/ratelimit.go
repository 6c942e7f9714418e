package clerkfake

import (
	"strconv"
	"time"
)

// Clerk's Backend API rate limits, per instance (https://clerk.com/docs/guides/how-clerk-works/system-limits):
// requests per RateWindow. GET /v1/jwks has none.
const (
	// ProductionRate is a production instance's limit: 1,000 requests per 10 seconds.
	ProductionRate = 1000
	// DevelopmentRate is a development instance's limit: 100 requests per 10 seconds.
	DevelopmentRate = 100
	// RateWindow is the window both limits count in.
	RateWindow = 10 * time.Second
)

// rateLimiter counts requests in fixed windows of per: n are answered in each, and the rest
// get 429 with a Retry-After of the whole seconds left in the window.
type rateLimiter struct {
	n     int // 0: no limit
	per   time.Duration
	start time.Time // of the current window
	count int       // requests answered in it
	peak  int       // the most requests answered in one window so far (Stats.PeakWindow)
}

// take counts one request at now. It returns the Retry-After to answer with and true when the
// request is over the limit (not counted), and "", false when it may be answered.
func (l *rateLimiter) take(now time.Time) (retryAfter string, limited bool) {
	if l.n <= 0 {
		return "", false
	}
	if l.start.IsZero() || !now.Before(l.start.Add(l.per)) {
		l.start, l.count = now, 0
	}
	if l.count < l.n {
		l.count++
		l.peak = max(l.peak, l.count)
		return "", false
	}
	left := l.start.Add(l.per).Sub(now)
	secs := int((left + time.Second - 1) / time.Second) // rounded up: the block has expired then
	return strconv.Itoa(max(secs, 1)), true
}

// LimitRate makes the stand-in enforce a rate limit as Clerk's Backend API does: n requests
// per window (ProductionRate or DevelopmentRate per RateWindow, say), counted in fixed
// windows from the first request, every endpoint but GET /v1/jwks together; a request past
// the limit is answered 429 too_many_requests with Retry-After, the seconds until the window
// ends, as Clerk documents. n = 0 lifts the limit. The 429s RateLimit asks for come first and
// are not counted in the window.
func (s *Server) LimitRate(n int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rate = rateLimiter{n: max(n, 0), per: window}
}

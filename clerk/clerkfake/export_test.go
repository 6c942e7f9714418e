package clerkfake

import "time"

// SetClock makes the rate limit (LimitRate) read the time from now, so that the tests move
// the clock instead of waiting.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

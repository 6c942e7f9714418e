package webhook

import (
	"sync"
	"time"

	"clerksync/clerk/event"
)

// Metrics counts what the handler does with each request. The service implements it with
// Prometheus counters; a nil Metrics in Options counts nothing.
//
// Every verified request ends in exactly one of WebhookForwarded, WebhookForwardFailed,
// WebhookIgnored, WebhookRejected(RejectNotClerkEvent) and WebhookRejected(RejectBusy); a
// failed send refused by Inngest is also counted by WebhookRefusedByInngest.
type Metrics interface {
	// WebhookReceived counts a request that reached the handler.
	WebhookReceived()
	// WebhookVerified counts a request whose signature verified.
	WebhookVerified()
	// WebhookRejected counts a refused request, for one of the Reject* reasons.
	WebhookRejected(reason string)
	// WebhookForwarded counts an event Inngest accepted, elapsed after the send started.
	WebhookForwarded(elapsed time.Duration)
	// WebhookForwardFailed counts an event Inngest did not accept (an error, a refusal or the
	// timeout), elapsed after the send started.
	WebhookForwardFailed(elapsed time.Duration)
	// WebhookRefusedByInngest counts a send Inngest refused, for one of the Refused* reasons
	// (the same send is also counted by WebhookForwardFailed).
	WebhookRefusedByInngest(reason string)
	// WebhookIgnored counts a verified Clerk event of a type the handler does not forward
	// (see Options.ForwardTypes). eventType is its type when that has the shape of a Clerk
	// type (event.IsType) and is one of the first 64 such types ignored since the handler
	// was made, else IgnoredOtherType: a metric label with a bounded number of values.
	WebhookIgnored(eventType string)
}

// IgnoredOtherType is the type passed to Metrics.WebhookIgnored for an event whose type is
// not of a Clerk type's shape, or beyond the 64 distinct types counted under their own name.
const IgnoredOtherType = "other"

// maxIgnoredTypeLabels is how many distinct types Metrics.WebhookIgnored is given under their
// own name: Clerk has about 50 event types, and only a holder of the signing secret can send
// others.
const maxIgnoredTypeLabels = 64

// typeLabels bounds the types passed to Metrics.WebhookIgnored. Its zero value is ready.
type typeLabels struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

// label returns t when it has a Clerk type's shape and is among the first
// maxIgnoredTypeLabels such types seen, else IgnoredOtherType.
func (l *typeLabels) label(t string) string {
	if !event.IsType(t) {
		return IgnoredOtherType
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[t]; ok {
		return t
	}
	if len(l.seen) >= maxIgnoredTypeLabels {
		return IgnoredOtherType
	}
	if l.seen == nil {
		l.seen = make(map[string]struct{})
	}
	l.seen[t] = struct{}{}
	return t
}

// Why the handler refuses a request, as passed to Metrics.WebhookRejected.
const (
	// RejectSignature: missing or invalid signature (401).
	RejectSignature = "signature"
	// RejectTooLarge: body over Options.MaxBodyBytes (413, Svix stops retrying).
	RejectTooLarge = "too_large"
	// RejectNotClerkEvent: signed, but not a Clerk event (400, Svix stops retrying).
	RejectNotClerkEvent = "not_clerk_event"
	// RejectReadError: the body could not be read (400).
	RejectReadError = "read_error"
	// RejectBusy: verified, but Options.MaxInFlight sends to Inngest were already running, so
	// none was started (503, Svix retries).
	RejectBusy = "busy"
)

// RejectReasons returns every reason passed to Metrics.WebhookRejected.
func RejectReasons() []string {
	return []string{RejectSignature, RejectTooLarge, RejectNotClerkEvent, RejectReadError, RejectBusy}
}

// What Inngest refused, as passed to Metrics.WebhookRefusedByInngest.
const (
	// RefusedEvent: Inngest refused the event itself, too large or invalid (HTTP 400, 413, or
	// another 4xx but 401, 403, 408 and 429). The handler answers 422 and Svix stops retrying:
	// the same event would be refused again.
	RefusedEvent = "event"
	// RefusedKey: Inngest refused the event key (HTTP 401 or 403). The handler answers 503 and
	// Svix retries, which succeeds once INNGEST_EVENT_KEY is fixed.
	RefusedKey = "event_key"
)

// RefusedReasons returns every reason passed to Metrics.WebhookRefusedByInngest.
func RefusedReasons() []string {
	return []string{RefusedEvent, RefusedKey}
}

// nopMetrics counts nothing.
type nopMetrics struct{}

func (nopMetrics) WebhookReceived()                   {}
func (nopMetrics) WebhookVerified()                   {}
func (nopMetrics) WebhookRejected(string)             {}
func (nopMetrics) WebhookForwarded(time.Duration)     {}
func (nopMetrics) WebhookForwardFailed(time.Duration) {}
func (nopMetrics) WebhookRefusedByInngest(string)     {}
func (nopMetrics) WebhookIgnored(string)              {}

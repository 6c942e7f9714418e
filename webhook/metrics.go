package webhook

import "time"

// Metrics counts what the handler does with each request. The service implements it with
// Prometheus counters; a nil Metrics in Options counts nothing.
//
// Every verified request ends in exactly one of WebhookForwarded, WebhookForwardFailed,
// WebhookRejected(RejectNotClerkEvent) and WebhookRejected(RejectBusy); a failed send refused
// by Inngest is also counted by WebhookRefusedByInngest.
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

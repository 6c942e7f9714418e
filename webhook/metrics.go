package webhook

import "time"

// Metrics counts what the handler does with each request. The service implements it with
// Prometheus counters; a nil Metrics counts nothing.
type Metrics interface {
	// WebhookReceived counts a request that reached the handler.
	WebhookReceived()
	// WebhookVerified counts a request whose signature verified.
	WebhookVerified()
	// WebhookRejected counts a refused request, for one of the Reject* reasons.
	WebhookRejected(reason string)
	// WebhookForwarded counts an event Inngest accepted, elapsed after the send started.
	WebhookForwarded(elapsed time.Duration)
	// WebhookForwardFailed counts an event Inngest did not accept (an error or the timeout),
	// elapsed after the send started.
	WebhookForwardFailed(elapsed time.Duration)
}

// Why the handler refuses a request, as passed to Metrics.WebhookRejected.
const (
	// RejectSignature: missing or invalid signature (401).
	RejectSignature = "signature"
	// RejectTooLarge: body over MaxBodyBytes (413).
	RejectTooLarge = "too_large"
	// RejectNotClerkEvent: signed, but not a Clerk event (400).
	RejectNotClerkEvent = "not_clerk_event"
	// RejectReadError: the body could not be read (400).
	RejectReadError = "read_error"
)

// RejectReasons returns every reason passed to Metrics.WebhookRejected.
func RejectReasons() []string {
	return []string{RejectSignature, RejectTooLarge, RejectNotClerkEvent, RejectReadError}
}

// nopMetrics counts nothing.
type nopMetrics struct{}

func (nopMetrics) WebhookReceived()                   {}
func (nopMetrics) WebhookVerified()                   {}
func (nopMetrics) WebhookRejected(string)             {}
func (nopMetrics) WebhookForwarded(time.Duration)     {}
func (nopMetrics) WebhookForwardFailed(time.Duration) {}

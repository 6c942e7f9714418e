// Package webhook is the bridge from Clerk to Inngest. Its handler verifies each Svix-signed
// Clerk webhook on the raw body, then forwards the event to Inngest as clerk/<type>, with the
// Svix message id as the event id, and answers 200 only once Inngest has accepted it. It
// forwards only the types the service's functions handle (event.Handled) and those it is
// told to (Options.ForwardTypes, Options.ForwardAll); it answers other types 200 without
// forwarding them. It does no database work: the Inngest functions do that.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/inngest/inngestgo"
	"github.com/labstack/echo/v4"

	"clerksync/clerk/event"
)

const (
	// DefaultTimeout is how long the handler waits for Inngest to accept an event when
	// Options.Timeout is zero. Svix gives up on an answer after 15 s.
	DefaultTimeout = 8 * time.Second
	// DefaultMaxBodyBytes is the largest webhook body accepted when Options.MaxBodyBytes is
	// zero: 512 KiB, the default event size limit of the Inngest dev and self-hosted server.
	DefaultMaxBodyBytes = 512 << 10
	// DefaultMaxInFlight is how many sends to Inngest may run at once when
	// Options.MaxInFlight is zero.
	DefaultMaxInFlight = 256
)

const (
	// HeaderDeliveryControl is the response header through which an endpoint tells Svix what
	// to do with a failed delivery (https://docs.svix.com/receiving/delivery-control).
	HeaderDeliveryControl = "webhook-delivery"
	// DeliveryAbortMessage, as HeaderDeliveryControl's value, makes Svix stop retrying the
	// message. The handler sends it with answers that a retry of the same message can never
	// change: 413, 400 for a verified body that is not a Clerk event, and 422.
	DeliveryAbortMessage = "abort-message"
)

// ContextKeyVerifiedID is the echo.Context key under which the handler stores the Svix message
// id (a string), once the request's signature has verified it. It is unset for a request whose
// signature did not verify (or that was refused before verification): a logger that wants the
// message id without logging an unverified, attacker-chosen header reads it from here, with
// c.Get(ContextKeyVerifiedID), after the handler ran.
const ContextKeyVerifiedID = "clerk_sync.svix_id"

// Sender sends one event to Inngest and returns the id Inngest gave it. inngestgo.Client
// implements it. The handler tells a refusal by Inngest from a transient failure by the text
// of inngestgo's errors ("bad request: …", "unauthorized: …", "forbidden: …", "unknown status
// code sending event: <code>"), so a Sender that wraps the client must keep its error text at
// the start of the message.
type Sender interface {
	Send(ctx context.Context, event any) (string, error)
}

// Options configures Handler. The zero value of each field means its default.
type Options struct {
	// Timeout is how long a webhook waits for Inngest to accept its event before the handler
	// answers 503. Zero or negative: DefaultTimeout.
	Timeout time.Duration
	// MaxBodyBytes is the largest body accepted; a larger one gets 413 and Svix stops retrying
	// it. Set it to the largest event the Inngest server accepts (the service's
	// INNGEST_MAX_EVENT_BYTES), so that an event Inngest would refuse for its size is refused
	// up front. Zero or negative: DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxInFlight is how many sends to Inngest may run at once, counting sends that outlived
	// their webhook after its timeout (the SDK's retries do not stop when the webhook gives up).
	// When that many are running, a verified webhook gets 503 at once, without a send, so that
	// memory and goroutines stay bounded while Inngest is slow. Zero or negative:
	// DefaultMaxInFlight.
	MaxInFlight int
	// Metrics counts each request's fate; nil counts nothing.
	Metrics Metrics
	// ForwardTypes are Clerk event types (session.created) forwarded to Inngest besides the
	// ones the service's functions handle (event.Handled), for functions of your own.
	// A verified event of any other type is answered 200 {"status":"ignored"} and not
	// forwarded: Clerk's other events carry data this service has no use for (email.created
	// carries one-time codes), which would stay in Inngest's event history.
	ForwardTypes []string
	// ForwardAll forwards every event type, as ForwardTypes listing them all would.
	ForwardAll bool
}

// withDefaults returns o with every zero (or negative) field set to its default.
func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	o.MaxBodyBytes = min(o.MaxBodyBytes, math.MaxInt64-1) // ReadBody's buffer goes up to one byte more
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Metrics == nil {
		o.Metrics = nopMetrics{}
	}
	return o
}

// Response is the JSON body of every answer of the handler.
type Response struct {
	// Status is "forwarded" on success, "ignored" for a verified event of a type that is not
	// forwarded.
	Status string `json:"status,omitempty"`
	// EventID is the Inngest event id (clerk-<svix id>) on success.
	EventID string `json:"event_id,omitempty"`
	// Error says what went wrong and what to do about it.
	Error string `json:"error,omitempty"`
	// Detail says why an ignored event was not forwarded.
	Detail string `json:"detail,omitempty"`
}

// StatusIgnored is Response.Status for a verified event of a type that is not forwarded.
const StatusIgnored = "ignored"

// Handler returns the handler for POST /api/webhooks/clerk. It logs into logger (nil logs
// nothing) and answers:
//   - 200 once Inngest accepted the event;
//   - 200 {"status":"ignored"} for a correctly signed Clerk event of a type it does not
//     forward (see Options.ForwardTypes): nothing is forwarded and Svix does not retry it;
//   - 400 for a correctly signed body that is not a Clerk event (nothing is forwarded), with
//     the header webhook-delivery: abort-message so that Svix stops retrying it;
//   - 400 when the body could not be read (a broken connection; Svix retries);
//   - 401 for a missing or invalid signature (nothing is forwarded, the body is not logged;
//     Svix retries, so a corrected signing secret lets the delivery through);
//   - 413 for a body over Options.MaxBodyBytes, with webhook-delivery: abort-message;
//   - 422 when Inngest refused the event itself (too large, invalid: HTTP 400, 413 or another
//     4xx but 401, 403, 408 and 429), with webhook-delivery: abort-message;
//   - 503 when Inngest did not accept the event within Options.Timeout, failed, or refused the
//     event key (401, 403: fixing INNGEST_EVENT_KEY makes a retry succeed), or when
//     Options.MaxInFlight sends are already running; Svix retries.
//
// Every log line of a request refused before its signature verified carries at most 64 bytes
// of its message id header. Once the signature verified, the handler stores the message id in
// the echo.Context under ContextKeyVerifiedID.
func Handler(v *Verifier, s Sender, logger *slog.Logger, opts Options) echo.HandlerFunc {
	opts = opts.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := opts.Metrics
	forwarded := forwardedTypes(opts)
	var ignoredLabels typeLabels
	limit := opts.MaxBodyBytes
	f := newForwarder(s, opts.Timeout, opts.MaxInFlight)
	tooLarge := fmt.Sprintf("body larger than %d bytes, the largest event Inngest accepts here (INNGEST_MAX_EVENT_BYTES); "+
		"Svix will not retry it. Raise the Inngest server's event size limit and INNGEST_MAX_EVENT_BYTES with it, "+
		"then replay the message from the Clerk dashboard", limit)

	return func(c echo.Context) error {
		req := c.Request()
		m.WebhookReceived()

		if req.ContentLength > limit {
			logger.Warn("webhook rejected: body too large", "svix_id", LoggableID(req.Header), "content_length", req.ContentLength, "max_body_bytes", limit)
			m.WebhookRejected(RejectTooLarge)
			return abort(c, http.StatusRequestEntityTooLarge, Response{Error: tooLarge})
		}
		body, _, err := ReadBody(req.Body, req.ContentLength, limit, nil)
		if errors.Is(err, ErrBodyTooLarge) {
			logger.Warn("webhook rejected: body too large", "svix_id", LoggableID(req.Header), "bytes_read", len(body), "max_body_bytes", limit)
			m.WebhookRejected(RejectTooLarge)
			return abort(c, http.StatusRequestEntityTooLarge, Response{Error: tooLarge})
		}
		if err != nil {
			logger.Warn("webhook rejected: reading body failed", "svix_id", LoggableID(req.Header), "error", err)
			m.WebhookRejected(RejectReadError)
			return c.JSON(http.StatusBadRequest, Response{Error: "could not read the request body"})
		}

		if err := v.Verify(body, req.Header); err != nil {
			logger.Warn("webhook rejected: signature", "svix_id", LoggableID(req.Header), "error", err)
			m.WebhookRejected(RejectSignature)
			return c.JSON(http.StatusUnauthorized, Response{Error: err.Error() + "; check CLERK_WEBHOOK_SIGNING_SECRET against the endpoint's Signing Secret in the Clerk dashboard"})
		}
		svixID, sigTS := messageHeaders(req.Header)
		c.Set(ContextKeyVerifiedID, svixID)
		m.WebhookVerified()

		evt, err := decodeEvent(body, sigTS)
		if err != nil {
			logger.Warn("webhook rejected: not a Clerk event", "svix_id", svixID, "error", err)
			m.WebhookRejected(RejectNotClerkEvent)
			return abort(c, http.StatusBadRequest, Response{Error: err.Error() + "; Svix will not retry it"})
		}

		if forwarded != nil && !forwarded[evt.typ] {
			m.WebhookIgnored(ignoredLabels.label(evt.typ))
			// The request log line has the svix id and the status at info.
			if logger.Enabled(req.Context(), slog.LevelDebug) {
				logger.LogAttrs(req.Context(), slog.LevelDebug, "webhook ignored: event type not forwarded (CLERK_FORWARD_EVENTS)",
					slog.String("svix_id", svixID), slog.String("type", evt.typ))
			}
			return c.JSON(http.StatusOK, Response{Status: StatusIgnored, Detail: ignoredDetail})
		}

		id := event.ID(svixID)
		ie := inngestgo.GenericEvent[eventData]{
			ID:        &id,
			Name:      event.Name(evt.typ),
			Data:      eventData{raw: evt.data},
			Timestamp: evt.tsMS,
		}
		start := time.Now()
		err = f.send(req.Context(), ie)
		elapsed := time.Since(start)
		if err == nil {
			m.WebhookForwarded(elapsed)
			// The request log line has the svix id and the status at info.
			if logger.Enabled(req.Context(), slog.LevelDebug) {
				logger.LogAttrs(req.Context(), slog.LevelDebug, "webhook forwarded",
					slog.String("svix_id", svixID), slog.String("event_id", id), slog.String("type", evt.typ),
					slog.String("user_id", evt.userID), slog.Duration("elapsed", elapsed))
			}
			return c.JSONBlob(http.StatusOK, forwardedResponse(id))
		}
		if errors.Is(err, errBusy) {
			m.WebhookRejected(RejectBusy)
			logger.Warn("webhook rejected: too many events being sent to Inngest at once; answering 503 so that Svix retries",
				"svix_id", svixID, "event_id", id, "type", evt.typ, "user_id", evt.userID, "max_in_flight", cap(f.slots))
			return c.JSON(http.StatusServiceUnavailable, Response{Error: "too many events are being sent to Inngest at once; Svix will retry the delivery"})
		}

		m.WebhookForwardFailed(elapsed)
		switch reason, status := refusal(err); reason {
		case RefusedEvent:
			m.WebhookRefusedByInngest(RefusedEvent)
			logger.Error("Inngest refused the event; answering 422 so that Svix stops retrying it. "+
				"If it is too large, raise the Inngest server's event size limit (and INNGEST_MAX_EVENT_BYTES with it), "+
				"then replay the message from the Clerk dashboard",
				"svix_id", svixID, "event_id", id, "type", evt.typ, "user_id", evt.userID, "inngest_status", status, "error", err, "elapsed", elapsed)
			return abort(c, http.StatusUnprocessableEntity, Response{Error: fmt.Sprintf(
				"Inngest refused the event (HTTP %d: %v); Svix will not retry it. If it is too large, raise the Inngest server's "+
					"event size limit (and INNGEST_MAX_EVENT_BYTES with it), then replay the message from the Clerk dashboard", status, err)})
		case RefusedKey:
			m.WebhookRefusedByInngest(RefusedKey)
			logger.Error("Inngest refused the event key; fix INNGEST_EVENT_KEY (Inngest dashboard → Manage → Event Keys) and restart: "+
				"Svix retries the delivery for about 28 hours. Answering 503",
				"svix_id", svixID, "event_id", id, "type", evt.typ, "user_id", evt.userID, "inngest_status", status, "error", err, "elapsed", elapsed)
			return c.JSON(http.StatusServiceUnavailable, Response{Error: "Inngest refused the service's event key; Svix will retry the delivery"})
		}
		logger.Error("forwarding to Inngest failed; answering 503 so that Svix retries",
			"svix_id", svixID, "event_id", id, "type", evt.typ, "user_id", evt.userID, "error", err, "elapsed", elapsed)
		return c.JSON(http.StatusServiceUnavailable, Response{Error: "Inngest did not accept the event; Svix will retry the delivery"})
	}
}

// ignoredDetail is Response.Detail of an ignored event.
const ignoredDetail = "not forwarded to Inngest: this service forwards only the Clerk event types its functions handle; " +
	"CLERK_FORWARD_EVENTS forwards more"

// forwardedTypes returns the set of Clerk event types the handler forwards: those of
// event.Handled and opts.ForwardTypes. It returns nil when every type is forwarded
// (opts.ForwardAll).
func forwardedTypes(opts Options) map[string]bool {
	if opts.ForwardAll {
		return nil
	}
	set := make(map[string]bool)
	for _, name := range event.Handled() {
		set[strings.TrimPrefix(name, event.NamePrefix)] = true
	}
	for _, t := range opts.ForwardTypes {
		set[t] = true
	}
	return set
}

// abort answers status with resp, telling Svix not to retry the message.
func abort(c echo.Context, status int, resp Response) error {
	c.Response().Header().Set(HeaderDeliveryControl, DeliveryAbortMessage)
	return c.JSON(status, resp)
}

// maxLoggedIDBytes is the most of an unverified message id header a log line carries: Svix ids
// are "msg_" and 27 characters, while the header can hold tens of kilobytes.
const maxLoggedIDBytes = 64

// cutMark ends an id cut to maxLoggedIDBytes.
const cutMark = "…(cut)"

// LoggableID returns the request's message id header (MessageID) for a log line, cut to
// maxLoggedIDBytes (at a UTF-8 boundary) and marked with cutMark when longer: anyone can send
// the header, so before its signature verifies it is not trusted to be short.
func LoggableID(h http.Header) string {
	id := MessageID(h)
	if len(id) <= maxLoggedIDBytes {
		return id
	}
	n := maxLoggedIDBytes
	for n > 0 && !utf8.RuneStart(id[n]) {
		n--
	}
	return id[:n] + cutMark
}

// forwardedResponse is the JSON of Response{Status: "forwarded", EventID: id}, built without
// reflection: the handler's hot path.
func forwardedResponse(id string) []byte {
	var quoted []byte
	if plainJSON(id) {
		quoted = append(append(append(make([]byte, 0, len(id)+2), '"'), id...), '"')
	} else if q, err := json.Marshal(id); err == nil {
		quoted = q
	} else { // a string always marshals; keep the answer valid regardless
		quoted = []byte(`""`)
	}
	b := make([]byte, 0, len(`{"status":"forwarded","event_id":}`)+len(quoted))
	b = append(b, `{"status":"forwarded","event_id":`...)
	b = append(b, quoted...)
	return append(b, '}')
}

// plainJSON reports whether s is printable ASCII that JSON quotes as it is (json.Marshal also
// escapes <, > and &), as Svix ids are.
func plainJSON(s string) bool {
	for i := range len(s) {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

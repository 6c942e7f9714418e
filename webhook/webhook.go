// Package webhook is the bridge from Clerk to Inngest. Its handler verifies each Svix-signed
// Clerk webhook on the raw body, then forwards the event to Inngest as clerk/<type>, with the
// Svix message id as the event id, and answers 200 only once Inngest has accepted it. It does
// no database work: the Inngest functions do that.
package webhook

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/labstack/echo/v4"
)

// MaxBodyBytes is the largest webhook body accepted; a larger one gets 413.
const MaxBodyBytes = 1 << 20

// Sender sends one event to Inngest and returns the id Inngest gave it. inngestgo.Client
// implements it.
type Sender interface {
	Send(ctx context.Context, event any) (string, error)
}

// Response is the JSON body of every answer of the handler.
type Response struct {
	// Status is "forwarded" on success.
	Status string `json:"status,omitempty"`
	// EventID is the Inngest event id (clerk-<svix id>) on success.
	EventID string `json:"event_id,omitempty"`
	// Error says what went wrong and what to do about it.
	Error string `json:"error,omitempty"`
}

// Handler returns the handler for POST /api/webhooks/clerk. It answers:
//   - 200 once Inngest accepted the event;
//   - 400 for a correctly signed body that is not a Clerk event (nothing is forwarded);
//   - 401 for a missing or invalid signature (nothing is forwarded, the body is not logged);
//   - 413 for a body over MaxBodyBytes;
//   - 503 when Inngest did not accept the event within timeout, so that Svix retries.
func Handler(v *Verifier, s Sender, timeout time.Duration, logger *slog.Logger) echo.HandlerFunc {
	return HandlerWithMetrics(v, s, timeout, logger, nil)
}

// HandlerWithMetrics is Handler, also counting each request's fate in m (nil counts nothing).
func HandlerWithMetrics(v *Verifier, s Sender, timeout time.Duration, logger *slog.Logger, m Metrics) echo.HandlerFunc {
	if m == nil {
		m = nopMetrics{}
	}
	return func(c echo.Context) error {
		req := c.Request()
		svixID := MessageID(req.Header)
		log := logger.With("svix_id", svixID)
		m.WebhookReceived()

		if req.ContentLength > MaxBodyBytes {
			log.Warn("webhook rejected: body too large", "content_length", req.ContentLength)
			m.WebhookRejected(RejectTooLarge)
			return c.JSON(http.StatusRequestEntityTooLarge, Response{Error: "body larger than 1 MiB"})
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, MaxBodyBytes+1))
		if err != nil {
			log.Warn("webhook rejected: reading body failed", "error", err)
			m.WebhookRejected(RejectReadError)
			return c.JSON(http.StatusBadRequest, Response{Error: "could not read the request body"})
		}
		if len(body) > MaxBodyBytes {
			log.Warn("webhook rejected: body too large", "bytes_read", len(body))
			m.WebhookRejected(RejectTooLarge)
			return c.JSON(http.StatusRequestEntityTooLarge, Response{Error: "body larger than 1 MiB"})
		}

		if err := v.Verify(body, req.Header); err != nil {
			log.Warn("webhook rejected: signature", "error", err)
			m.WebhookRejected(RejectSignature)
			return c.JSON(http.StatusUnauthorized, Response{Error: err.Error() + "; check CLERK_WEBHOOK_SIGNING_SECRET against the endpoint's Signing Secret in the Clerk dashboard"})
		}
		m.WebhookVerified()

		evt, err := decodeEvent(body, messageTimestamp(req.Header))
		if err != nil {
			log.Warn("webhook rejected: not a Clerk event", "error", err)
			m.WebhookRejected(RejectNotClerkEvent)
			return c.JSON(http.StatusBadRequest, Response{Error: err.Error()})
		}

		id := IDPrefix + svixID
		log = log.With("event_id", id, "type", evt.typ, "user_id", evt.userID)
		ie := inngestgo.GenericEvent[eventData]{
			ID:        &id,
			Name:      EventPrefix + evt.typ,
			Data:      eventData{raw: evt.data},
			Timestamp: evt.tsMS,
		}
		start := time.Now()
		if err := send(req.Context(), s, ie, timeout); err != nil {
			m.WebhookForwardFailed(time.Since(start))
			log.Error("forwarding to Inngest failed; answering 503 so that Svix retries", "error", err, "elapsed", time.Since(start))
			return c.JSON(http.StatusServiceUnavailable, Response{Error: "Inngest did not accept the event; Svix will retry the delivery"})
		}
		elapsed := time.Since(start)
		m.WebhookForwarded(elapsed)
		log.Debug("webhook forwarded", "elapsed", elapsed) // the request log line has the svix id and status at info
		return c.JSON(http.StatusOK, Response{Status: "forwarded", EventID: id})
	}
}

// errSendTimeout means Inngest did not answer in time.
var errSendTimeout = errors.New("timed out waiting for the Inngest event API")

// send calls s.Send, but returns after timeout (or when ctx ends) even if the SDK is still
// retrying: its retries sleep without watching the context. The event id makes a send that
// completes late harmless: Svix retries with the same id and Inngest drops the duplicate.
func send(ctx context.Context, s Sender, evt any, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.Send(ctx, evt)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return errSendTimeout
		}
		return ctx.Err()
	}
}

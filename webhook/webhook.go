// Package webhook is the bridge from Clerk to Inngest. Its handler verifies each Svix-signed
// Clerk webhook on the raw body, then forwards the event to Inngest as clerk/<type>, with the
// Svix message id as the event id, and answers 200 only once Inngest has accepted it. It does
// no database work: the Inngest functions do that.
package webhook

import (
	"context"
	"encoding/json"
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
		m.WebhookReceived()

		if req.ContentLength > MaxBodyBytes {
			logger.Warn("webhook rejected: body too large", "svix_id", svixID, "content_length", req.ContentLength)
			m.WebhookRejected(RejectTooLarge)
			return c.JSON(http.StatusRequestEntityTooLarge, Response{Error: "body larger than 1 MiB"})
		}
		body, err := readBody(req.Body, req.ContentLength)
		if err != nil {
			logger.Warn("webhook rejected: reading body failed", "svix_id", svixID, "error", err)
			m.WebhookRejected(RejectReadError)
			return c.JSON(http.StatusBadRequest, Response{Error: "could not read the request body"})
		}
		if len(body) > MaxBodyBytes {
			logger.Warn("webhook rejected: body too large", "svix_id", svixID, "bytes_read", len(body))
			m.WebhookRejected(RejectTooLarge)
			return c.JSON(http.StatusRequestEntityTooLarge, Response{Error: "body larger than 1 MiB"})
		}

		if err := v.Verify(body, req.Header); err != nil {
			logger.Warn("webhook rejected: signature", "svix_id", svixID, "error", err)
			m.WebhookRejected(RejectSignature)
			return c.JSON(http.StatusUnauthorized, Response{Error: err.Error() + "; check CLERK_WEBHOOK_SIGNING_SECRET against the endpoint's Signing Secret in the Clerk dashboard"})
		}
		m.WebhookVerified()

		evt, err := decodeEvent(body, messageTimestamp(req.Header))
		if err != nil {
			logger.Warn("webhook rejected: not a Clerk event", "svix_id", svixID, "error", err)
			m.WebhookRejected(RejectNotClerkEvent)
			return c.JSON(http.StatusBadRequest, Response{Error: err.Error()})
		}

		id := IDPrefix + svixID
		ie := inngestgo.GenericEvent[eventData]{
			ID:        &id,
			Name:      EventPrefix + evt.typ,
			Data:      eventData{raw: evt.data},
			Timestamp: evt.tsMS,
		}
		start := time.Now()
		if err := send(req.Context(), s, ie, timeout); err != nil {
			m.WebhookForwardFailed(time.Since(start))
			logger.Error("forwarding to Inngest failed; answering 503 so that Svix retries",
				"svix_id", svixID, "event_id", id, "type", evt.typ, "user_id", evt.userID, "error", err, "elapsed", time.Since(start))
			return c.JSON(http.StatusServiceUnavailable, Response{Error: "Inngest did not accept the event; Svix will retry the delivery"})
		}
		elapsed := time.Since(start)
		m.WebhookForwarded(elapsed)
		// The request log line has the svix id and the status at info.
		logger.LogAttrs(req.Context(), slog.LevelDebug, "webhook forwarded",
			slog.String("svix_id", svixID), slog.String("event_id", id), slog.String("type", evt.typ),
			slog.String("user_id", evt.userID), slog.Duration("elapsed", elapsed))
		return c.JSONBlob(http.StatusOK, forwardedResponse(id))
	}
}

// readBody reads at most MaxBodyBytes+1 bytes of r (so that a larger body shows as one byte
// too many) into a buffer sized from contentLength when it is known, rather than grown from
// 512 bytes by doubling: the body is the handler's largest allocation.
func readBody(r io.Reader, contentLength int64) ([]byte, error) {
	size := int64(512)
	if contentLength >= 0 && contentLength <= MaxBodyBytes {
		size = contentLength + 1 // room for the read that reports EOF
	}
	buf := make([]byte, 0, size)
	limit := io.LimitReader(r, MaxBodyBytes+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow (a body longer than announced)
		}
		n, err := limit.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// forwardedResponse is the JSON of Response{Status: "forwarded", EventID: id}, built without
// reflection: the handler's hot path.
func forwardedResponse(id string) []byte {
	quoted, err := json.Marshal(id)
	if err != nil { // a string always marshals; keep the answer valid regardless
		quoted = []byte(`""`)
	}
	b := make([]byte, 0, len(`{"status":"forwarded","event_id":}`)+len(quoted))
	b = append(b, `{"status":"forwarded","event_id":`...)
	b = append(b, quoted...)
	return append(b, '}')
}

// errSendTimeout means Inngest did not answer in time.
var errSendTimeout = errors.New("timed out waiting for the Inngest event API")

// send calls s.Send, but returns after timeout (or when ctx ends) even if the SDK is still
// retrying: its retries sleep without watching the context. s gets ctx, which the server
// cancels once the handler has answered. The event id makes a send that completes late
// harmless: Svix retries with the same id and Inngest drops the duplicate.
func send(ctx context.Context, s Sender, evt any, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() {
		_, err := s.Send(ctx, evt)
		done <- err
	}()
	// A timer rather than context.WithTimeout: no child context to register with ctx on
	// every webhook.
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return errSendTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

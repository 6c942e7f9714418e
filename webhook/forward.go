package webhook

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

var (
	// errSendTimeout means Inngest did not answer in time.
	errSendTimeout = errors.New("timed out waiting for the Inngest event API")
	// errBusy means MaxInFlight sends were running: no send was started.
	errBusy = errors.New("too many sends to Inngest in flight")
)

// forwarder sends events to Inngest, at most cap(slots) at once.
type forwarder struct {
	s       Sender
	timeout time.Duration
	// slots holds one token per send running, including sends whose webhook has answered.
	slots chan struct{}
}

// send calls s.Send in a goroutine that holds one of f's slots until Send returns, and returns
// errBusy at once, starting nothing, when every slot is taken. It returns after f.timeout (or
// when ctx ends) even if the SDK is still retrying: its retries sleep without watching the
// context. s gets ctx, which the server cancels once the handler has answered. The event id
// makes a send that completes late harmless: Svix retries with the same id and Inngest drops
// the duplicate.
func (f *forwarder) send(ctx context.Context, evt any) error {
	select {
	case f.slots <- struct{}{}:
	default:
		return errBusy
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-f.slots }()
		_, err := f.s.Send(ctx, evt)
		done <- err
	}()
	// A timer rather than context.WithTimeout: no child context to register with ctx on
	// every webhook.
	timer := time.NewTimer(f.timeout)
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

// Prefixes of the errors inngestgo's Send returns when the event API answers 4xx
// (handleEventResponse in inngestgo v0.15.1; the SDK does not retry those).
const (
	errPrefixBadRequest    = "bad request: "                       // 400: the event is invalid or too large
	errPrefixUnauthorized  = "unauthorized: "                      // 401: the event key is rejected
	errPrefixForbidden     = "forbidden: "                         // 403: the event key may not send this event
	errPrefixUnknownStatus = "unknown status code sending event: " // any other status, e.g. 413 from Inngest Cloud
)

// refusal tells whether a Send error is Inngest refusing the event (RefusedEvent) or the event
// key (RefusedKey), with the status Inngest answered. It returns "" for anything else: 5xx
// (after the SDK's retries), 408, 429, timeouts, connection errors, which a retry may fix.
func refusal(err error) (reason string, status int) {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, errPrefixBadRequest):
		return RefusedEvent, http.StatusBadRequest
	case strings.HasPrefix(msg, errPrefixUnauthorized):
		return RefusedKey, http.StatusUnauthorized
	case strings.HasPrefix(msg, errPrefixForbidden):
		return RefusedKey, http.StatusForbidden
	}
	rest, ok := strings.CutPrefix(msg, errPrefixUnknownStatus)
	if !ok {
		return "", 0
	}
	code, convErr := strconv.Atoi(strings.TrimSpace(rest))
	if convErr != nil {
		return "", 0
	}
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return RefusedKey, code
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		return "", code
	case code >= 400 && code < 500:
		return RefusedEvent, code
	}
	return "", code
}

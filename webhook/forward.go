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

// forwarder sends events to Inngest, at most cap(slots) at once, on a pool of worker
// goroutines.
type forwarder struct {
	s       Sender
	timeout time.Duration
	// slots holds one token per send running, including sends whose webhook has answered.
	slots chan struct{}
	// jobs hands a send to an idle worker; it is unbuffered, so a send finds a worker waiting
	// on it or starts one.
	jobs chan *sendJob
}

// workerIdle is how long a worker waits for the next send before it exits. Workers outlive
// their send so that the next webhook reuses one (its stack already grown to what Send needs)
// instead of starting a goroutine and growing its stack on every webhook; there are never more
// than cap(slots), and a quiet service keeps none.
const workerIdle = 30 * time.Second

// sendJob is one send: the worker calls s.Send(ctx, evt) and puts the error in done.
type sendJob struct {
	ctx  context.Context
	evt  any
	done chan error // buffered: the worker never waits for a webhook that gave up
}

func newForwarder(s Sender, timeout time.Duration, maxInFlight int) *forwarder {
	return &forwarder{s: s, timeout: timeout, slots: make(chan struct{}, maxInFlight), jobs: make(chan *sendJob)}
}

// send calls s.Send on a worker goroutine that holds one of f's slots until Send returns, and
// returns errBusy at once, starting nothing, when every slot is taken. It returns after
// f.timeout (or when ctx ends) even if the SDK is still retrying: its retries sleep without
// watching the context, so only another goroutine bounds them. s gets ctx, which the server
// cancels once the handler has answered. The event id makes a send that completes late
// harmless: Svix retries with the same id and Inngest drops the duplicate.
func (f *forwarder) send(ctx context.Context, evt any) error {
	select {
	case f.slots <- struct{}{}:
	default:
		return errBusy
	}
	j := &sendJob{ctx: ctx, evt: evt, done: make(chan error, 1)}
	select {
	case f.jobs <- j: // an idle worker took it
	default:
		go f.work(j)
	}
	// A timer rather than context.WithTimeout: no child context to register with ctx on
	// every webhook.
	timer := time.NewTimer(f.timeout)
	defer timer.Stop()
	select {
	case err := <-j.done:
		return err
	case <-timer.C:
		return errSendTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

// work runs j, then the sends handed to it, until none came for workerIdle.
func (f *forwarder) work(j *sendJob) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		f.run(j)
		idle.Reset(workerIdle)
		select {
		case j = <-f.jobs:
		case <-idle.C:
			return
		}
	}
}

// run sends j's event and frees its slot.
func (f *forwarder) run(j *sendJob) {
	defer func() { <-f.slots }()
	_, err := f.s.Send(j.ctx, j.evt)
	j.done <- err
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

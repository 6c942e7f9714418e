package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"golang.org/x/sync/semaphore"
)

// Limits of the requests to /api/inngest, whose bodies the SDK would read whole before it
// checks their signature (docs/operations.md, "Limits").
const (
	// maxInngestBodyBytes caps one request: Inngest pushes at most 4 MiB of event and step
	// state to an SDK (beyond that it asks the SDK to fetch the state, which inngestgo v0.15
	// does not do), plus room for the run's context.
	maxInngestBodyBytes = 5 << 20
	// inngestBodyBudget bounds the buffered bytes of all the requests being read or run at
	// once: two requests of the largest size, or thousands of the usual few kilobytes. A
	// request that would go beyond it gets 503, which Inngest retries. The SDK's copy of each
	// body and its decoding come on top: allow about three times the budget.
	inngestBodyBudget = 2 * maxInngestBodyBytes
)

var (
	errBodyTooLarge = errors.New("request body too large")
	errBodyBudget   = errors.New("too many request bytes in flight")
)

// limitInngestBodies wraps the SDK's handler so that hostile bodies cannot exhaust memory.
// It reads each body itself before the SDK sees it: a body announced or found larger than limit
// gets 413; the buffer grows only as bytes arrive, each growth reserved from a budget shared
// by every request in flight (a stalled upload holds only what it sent), and a request whose
// next growth does not fit gets 503 at once. A request keeps its reservation until the SDK has
// answered it, since the SDK holds its own copy of the body meanwhile.
func limitInngestBodies(next http.Handler, limit, budget int64, logger *slog.Logger) http.Handler {
	sem := semaphore.NewWeighted(budget)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			logger.Warn("Inngest request refused: body too large", "method", r.Method, "content_length", r.ContentLength, "max", limit)
			http.Error(w, "request body larger than "+strconv.FormatInt(limit, 10)+" bytes", http.StatusRequestEntityTooLarge)
			return
		}
		body, reserved, err := readReserved(r.Body, limit, sem)
		defer sem.Release(reserved)
		switch {
		case errors.Is(err, errBodyTooLarge):
			logger.Warn("Inngest request refused: body too large", "method", r.Method, "bytes_read", len(body), "max", limit)
			http.Error(w, "request body larger than "+strconv.FormatInt(limit, 10)+" bytes", http.StatusRequestEntityTooLarge)
			return
		case errors.Is(err, errBodyBudget):
			logger.Warn("Inngest request refused: too many request bytes in flight; Inngest retries it", "method", r.Method, "bytes_read", len(body), "budget", budget)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy: too many large requests in flight; retry", http.StatusServiceUnavailable)
			return
		case err != nil:
			logger.Warn("Inngest request refused: reading the body failed", "method", r.Method, "bytes_read", len(body), "error", err)
			http.Error(w, "could not read the request body", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// readReserved reads r whole into a buffer that starts small and doubles as bytes arrive, never
// past limit+1 bytes, reserving each growth from sem without waiting. It returns what it read
// and how many bytes it reserved (which the caller releases, also on error); the error wraps
// errBodyTooLarge past limit bytes, errBodyBudget when sem has no room for the next growth, or
// is the reader's.
func readReserved(r io.Reader, limit int64, sem *semaphore.Weighted) ([]byte, int64, error) {
	const first = 16 << 10
	var (
		buf      []byte
		reserved int64
	)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return buf, reserved, errBodyTooLarge
			}
			size := min(max(int64(first), 2*int64(cap(buf))), limit+1)
			if !sem.TryAcquire(size - int64(cap(buf))) {
				return buf, reserved, errBodyBudget
			}
			reserved += size - int64(cap(buf))
			grown := make([]byte, len(buf), size)
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if int64(len(buf)) > limit {
				return buf, reserved, errBodyTooLarge
			}
			return buf, reserved, nil
		}
		if err != nil {
			return buf, reserved, err
		}
	}
}

package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// callLog is an HTTP proxy between the dev server and the service's /api/inngest that records
// every call of a function (a POST): which run, which attempt, which events, and what the SDK
// answered. The dev server's own REST API does not say how often it called a run, so this is
// how a test counts a run's attempts, whatever the service does with the call.
type callLog struct {
	url string // the proxy's base URL, http://127.0.0.1:<port>

	mu     sync.Mutex
	target *url.URL
	calls  []fnCall
}

// fnCall is one call of a function, as the SDK's request body and answer show it.
type fnCall struct {
	RunID    string
	Attempt  int
	EventIDs []string // the run's events (several for a batch)
	Status   int      // the SDK's answer
	NoRetry  bool     // the answer's X-Inngest-No-Retry: true
}

// String shows a call for failure messages.
func (c fnCall) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// startCallLog starts the proxy on a free loopback port; setTarget tells it where the service
// listens. It stops when the test ends.
func startCallLog(t *testing.T) *callLog {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &callLog{url: "http://" + ln.Addr().String()}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		c.mu.Lock()
		target := c.target
		c.mu.Unlock()
		r.SetURL(target)
	}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		ready := c.target != nil
		c.mu.Unlock()
		if !ready {
			http.Error(w, "the service is not up yet", http.StatusServiceUnavailable)
			return
		}
		if r.Method != http.MethodPost {
			proxy.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			Ctx struct {
				RunID   string `json:"run_id"`
				Attempt int    `json:"attempt"`
			} `json:"ctx"`
			Event struct {
				ID string `json:"id"`
			} `json:"event"`
			Events []struct {
				ID string `json:"id"`
			} `json:"events"`
		}
		_ = json.Unmarshal(body, &req) // a call that does not read as one is recorded empty
		call := fnCall{RunID: req.Ctx.RunID, Attempt: req.Ctx.Attempt}
		for _, e := range req.Events {
			call.EventIDs = append(call.EventIDs, e.ID)
		}
		if len(call.EventIDs) == 0 && req.Event.ID != "" {
			call.EventIDs = []string{req.Event.ID}
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		proxy.ServeHTTP(rec, r)
		call.Status, call.NoRetry = rec.status, rec.Header().Get("X-Inngest-No-Retry") == "true"
		c.mu.Lock()
		c.calls = append(c.calls, call)
		c.mu.Unlock()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return c
}

// setTarget points the proxy at the service's base URL.
func (c *callLog) setTarget(t *testing.T, base string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.target = u
	c.mu.Unlock()
}

// forRun returns the calls of the run runID, in the order they ended.
func (c *callLog) forRun(runID string) []fnCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []fnCall
	for _, call := range c.calls {
		if call.RunID == runID {
			out = append(out, call)
		}
	}
	return out
}

// runsWith returns the ids of the runs that were called with the event eventID among their
// events, each once, in the order of their first call.
func (c *callLog) runsWith(eventID string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, call := range c.calls {
		for _, id := range call.EventIDs {
			if id == eventID && !seen[call.RunID] {
				seen[call.RunID] = true
				out = append(out, call.RunID)
			}
		}
	}
	return out
}

// statusRecorder remembers the status code written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

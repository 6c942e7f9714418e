package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// balancer is a round-robin reverse proxy in front of the replicas, for the webhooks and (in
// serve mode) Inngest's calls to /api/inngest alike, with passive health checks: a replica that refuses
// a connection is skipped for a second, and a request whose attempt fails (refused, reset,
// closed mid-request) is retried on a replica it has not tried yet; with none left it answers
// 502, which Svix (here the poster) and Inngest retry. Both kinds of request are idempotent by
// design (a webhook's event id is its svix id; a step is a guarded write), so a retry after a
// replica died mid-request is safe; a real load balancer does the same (nginx's
// proxy_next_upstream).
type balancer struct {
	backends []*backend
	next     atomic.Uint64
	tr       *http.Transport
	// hold is how long a request keeps waiting for a replica while every replica is down
	// (0, the default: it fails at once with 502, as nginx does when no upstream is left).
	hold time.Duration
	// downFor is how long a replica is skipped after a failed connection.
	downFor time.Duration

	retries atomic.Int64 // attempts whose connection failed
	failed  atomic.Int64 // requests answered 502: no replica answered
	errMu   sync.Mutex
	errs    map[string]int // the failed attempts' errors, by kind
	samples []string       // the first requests answered 502, with their attempts' errors
	srv     *http.Server
	url     string
}

type backend struct {
	host      string // 127.0.0.1:<port>
	downUntil atomic.Int64
	webhooks  atomic.Int64 // requests to the webhook route this replica answered
	inngest   atomic.Int64 // requests to /api/inngest this replica answered
}

func (b *backend) down() bool { return time.Now().UnixNano() < b.downUntil.Load() }

// startBalancer listens on a free loopback port and proxies to hosts.
func startBalancer(hosts []string, hold time.Duration) (*balancer, error) {
	l := &balancer{hold: hold, downFor: time.Second, errs: map[string]int{}}
	for _, h := range hosts {
		l.backends = append(l.backends, &backend{host: h})
	}
	l.tr = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     30 * time.Second,
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "replica" // chosen in RoundTrip
			pr.Out.Host = pr.In.Host    // the SDK sees the balancer's address, as behind a real one
			pr.SetXForwarded()
		},
		Transport: l,
		ErrorLog:  log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if l.failed.Add(1) <= 5 {
				l.errMu.Lock()
				l.samples = append(l.samples, fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path, strings.ReplaceAll(err.Error(), "\n", "; ")))
				l.errMu.Unlock()
			}
			http.Error(w, "scale-test balancer: no replica answered: "+err.Error(), http.StatusBadGateway)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l.url = "http://" + ln.Addr().String()
	l.srv = &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = l.srv.Serve(ln) }()
	return l, nil
}

func (l *balancer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.srv.Shutdown(ctx)
	l.tr.CloseIdleConnections()
}

// pick returns the index of the next replica not yet tried by this request, preferring those
// not marked down; -1 when every replica has been tried.
func (l *balancer) pick(tried []bool) int {
	n := len(l.backends)
	start := int(l.next.Add(1) % uint64(n))
	fallback := -1
	for k := range n {
		i := (start + k) % n
		if tried[i] {
			continue
		}
		if !l.backends[i].down() {
			return i
		}
		if fallback < 0 {
			fallback = i
		}
	}
	return fallback
}

// RoundTrip sends req to the next healthy replica, retrying on another one when the
// attempt fails, trying each replica at most once; then it fails (or, with hold, tries them
// all again every 100 ms until hold has passed).
func (l *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(l.hold)
	var errs []error
	tried := make([]bool, len(l.backends))
	for {
		if err := req.Context().Err(); err != nil {
			return nil, err
		}
		i := l.pick(tried)
		if i < 0 {
			if !time.Now().Before(deadline) {
				return nil, errors.Join(errs...)
			}
			select {
			case <-req.Context().Done():
			case <-time.After(100 * time.Millisecond):
			}
			clear(tried)
			continue
		}
		tried[i] = true
		b := l.backends[i]
		out := req.Clone(req.Context())
		out.URL.Host = b.host
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			out.ContentLength = int64(len(body))
		}
		resp, err := l.tr.RoundTrip(out)
		if err == nil {
			if strings.HasPrefix(req.URL.Path, "/api/inngest") {
				b.inngest.Add(1)
			} else {
				b.webhooks.Add(1)
			}
			return resp, nil
		}
		if req.Context().Err() != nil {
			return nil, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", b.host, err))
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			// Nothing listens (or answers) there: skip the replica for a while. Errors on an
			// open connection (a replica killed mid-request, a keep-alive connection the
			// replica closed) are retried without marking it.
			b.downUntil.Store(time.Now().Add(l.downFor).UnixNano())
		}
		l.retries.Add(1)
		kind := err.Error()
		if i := strings.LastIndex(kind, ": "); i >= 0 {
			kind = kind[i+2:] // "connection refused", "EOF"...: without the addresses
		}
		l.errMu.Lock()
		l.errs[kind]++
		l.errMu.Unlock()
	}
}

// errorSummary renders the failed attempts' errors, e.g. "connection refused ×12, EOF ×3".
func (l *balancer) errorSummary() string {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	if len(l.errs) == 0 {
		return "none"
	}
	kinds := make([]string, 0, len(l.errs))
	for k := range l.errs {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return l.errs[kinds[i]] > l.errs[kinds[j]] })
	var out []string
	for _, k := range kinds {
		out = append(out, fmt.Sprintf("%s ×%d", k, l.errs[k]))
	}
	return strings.Join(out, ", ")
}

// resetStats forgets what the balancer counted so far (the app's sync before the replicas
// were up), so that the report covers the load alone.
func (l *balancer) resetStats() {
	l.retries.Store(0)
	l.failed.Store(0)
	l.errMu.Lock()
	l.errs, l.samples = map[string]int{}, nil
	l.errMu.Unlock()
	for _, b := range l.backends {
		b.webhooks.Store(0)
		b.inngest.Store(0)
	}
}

package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// allRoutes is every route the service serves with every dependency set. The root's
// attack-surface tests try each of them with every credential state: a route added here goes
// into their table (attackRoutes) too.
var allRoutes = []string{
	"GET /", "GET /healthz", "GET /readyz", "GET /metrics",
	"POST /api/webhooks/clerk",
	"POST /api/sync/users/:id",
	"GET /api/inngest", "POST /api/inngest", "PUT /api/inngest",
}

// routesOf returns the routes d serves, as "METHOD /path", sorted.
func routesOf(d Deps) []string {
	var got []string
	for _, r := range newRouter(d).Routes() {
		got = append(got, r.Method+" "+r.Path)
	}
	slices.Sort(got)
	return slices.Compact(got)
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	got := routesOf(fullDeps(t, nil, newSecret(t), &fakeSDK{}, &fakeSDK{}))
	if want := slices.Sorted(slices.Values(allRoutes)); !slices.Equal(got, want) {
		t.Errorf("NewHandler with every dependency serves %q;\nwant %q: add a new route to allRoutes and to the root's attackRoutes and attackCases", got, want)
	}
}

// TestRouteOffWithoutItsDependency: each dependency left nil takes its route, and only its
// route, away: 404, as a path the service never served.
func TestRouteOffWithoutItsDependency(t *testing.T) {
	t.Parallel()
	inngest := []string{"GET /api/inngest", "POST /api/inngest", "PUT /api/inngest"}
	tests := []struct {
		name string
		drop func(d *Deps)
		gone []string
	}{
		{"DB", func(d *Deps) { d.DB = nil }, []string{"GET /readyz"}},
		{"Metrics", func(d *Deps) { d.Metrics = nil }, []string{"GET /metrics"}},
		{"Webhook", func(d *Deps) { d.Webhook = nil }, []string{"POST /api/webhooks/clerk"}},
		{"SyncUser", func(d *Deps) { d.SyncUser = nil }, []string{"POST /api/sync/users/:id"}},
		{"Inngest", func(d *Deps) { d.Inngest = nil }, inngest},
		{"everything", func(d *Deps) { *d = Deps{} }, []string{"GET /readyz", "GET /metrics", "POST /api/webhooks/clerk", "POST /api/sync/users/:id", "GET /api/inngest", "POST /api/inngest", "PUT /api/inngest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := fullDeps(t, nil, newSecret(t), &fakeSDK{}, &fakeSDK{})
			tt.drop(&d)
			var want []string
			for _, r := range allRoutes {
				if !slices.Contains(tt.gone, r) {
					want = append(want, r)
				}
			}
			slices.Sort(want)
			if got := routesOf(d); !slices.Equal(got, want) {
				t.Errorf("NewHandler without %s serves %q; want %q", tt.name, got, want)
			}
			h := NewHandler(d)
			for _, r := range tt.gone {
				method, path, _ := strings.Cut(r, " ")
				path = strings.Replace(path, ":id", "user_2abc", 1)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
				if rec.Code != http.StatusNotFound {
					t.Errorf("%s %s without %s = %d; want 404", method, path, tt.name, rec.Code)
				}
			}
		})
	}
}

// TestMetricsHandler: METRICS_ADDR's listener serves GET /metrics and nothing else.
func TestMetricsHandler(t *testing.T) {
	t.Parallel()
	logger, logs := textLogger()
	h := NewMetricsHandler(logger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "clerksync_webhooks_received_total 0\n")
	}))
	tests := []struct {
		method, path string
		want         int
		wantBody     string
	}{
		{http.MethodGet, "/metrics", http.StatusOK, "clerksync_webhooks_received_total"},
		{http.MethodGet, "/", http.StatusNotFound, ""},
		{http.MethodGet, "/healthz", http.StatusNotFound, ""},
		{http.MethodGet, "/readyz", http.StatusNotFound, ""},
		{http.MethodPost, "/api/webhooks/clerk", http.StatusNotFound, ""},
		{http.MethodPut, "/api/inngest", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.wantBody) {
			t.Errorf("%s %s on the metrics listener = %d %q; want %d containing %q", tt.method, tt.path, rec.Code, rec.Body, tt.want, tt.wantBody)
		}
	}
	if want := "msg=request method=POST path=/api/webhooks/clerk status=404"; !strings.Contains(logs.String(), want) {
		t.Errorf("the metrics listener's log has no %q; want a request line per request:\n%s", want, logs)
	}
}

// TestPanicAnswers500: a handler's panic is answered with a bare 500 and logged once, with its
// value.
func TestPanicAnswers500(t *testing.T) {
	t.Parallel()
	logger, logs := textLogger()
	boom := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom-7f3a") })
	d := Deps{Logger: logger, Inngest: &Inngest{Serve: boom, Sync: boom, Dev: true}}
	rec := httptest.NewRecorder()
	NewHandler(d).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/inngest", nil))
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "boom") {
		t.Errorf("POST /api/inngest whose handler panics = %d %q; want 500 without the panic's value", rec.Code, rec.Body)
	}
	if got := strings.Count(logs.String(), "panic in handler"); got != 1 || !strings.Contains(logs.String(), "boom-7f3a") {
		t.Errorf("log lines about the panic = %d; want 1 with its value:\n%s", got, logs)
	}
	if !strings.Contains(logs.String(), "msg=request method=POST path=/api/inngest status=500") {
		t.Errorf("the request line does not say 500:\n%s", logs)
	}
}

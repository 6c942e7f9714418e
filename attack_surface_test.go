package main

import (
	"log/slog"
	"net/http"
	"slices"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"clerksync/webhook"
)

// attackRoutes is every route the service can serve (all of them on: SYNC_API_TOKEN set,
// /metrics on PORT). TestAttackSurfaceListsEveryRoute holds addRoutes to it; the attack tests
// in e2e/attack_surface_test.go try every route of their copy of this list with every
// credential state: a route added here goes there too.
var attackRoutes = []string{
	"GET /", "GET /healthz", "GET /readyz", "GET /metrics",
	"POST /api/webhooks/clerk",
	"POST /api/sync/users/:id",
	"GET /api/inngest", "POST /api/inngest", "PUT /api/inngest",
}

func TestAttackSurfaceListsEveryRoute(t *testing.T) {
	t.Parallel()
	e := echo.New()
	v, err := webhook.NewVerifier(newSecret(t))
	if err != nil {
		t.Fatal(err)
	}
	addRoutes(e, slog.New(slog.DiscardHandler), v, nil, http.NotFoundHandler(), nil, webhook.Options{},
		newMetrics(prometheus.NewRegistry()), true, func(echo.Context) error { return nil })
	var got []string
	for _, r := range e.Routes() {
		got = append(got, r.Method+" "+r.Path)
	}
	slices.Sort(got)
	got = slices.Compact(got)
	want := slices.Sorted(slices.Values(attackRoutes))
	if !slices.Equal(got, want) {
		t.Errorf("addRoutes serves %q;\nthe attack-surface tests try %q: add the new route to attackRoutes here and in e2e/attack_surface_test.go, and to attackCases", got, want)
	}
}

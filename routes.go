package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"clerksync/webhook"
)

// pinger is what /readyz needs of the database.
type pinger interface {
	Ping(ctx context.Context) error
}

// addRoutes registers every route of the service, and is the one list of them (the
// attack-surface test holds it to its table). /metrics is served here unless metricsHere is
// false (METRICS_ADDR gives it a listener of its own, see addMetricsRoutes); the on-demand sync
// only when syncUser is not nil (SYNC_API_TOKEN set, see handleSyncUser). inngest is the guard
// of the SDK's handlers (newInngestGuard).
func addRoutes(e *echo.Echo, logger *slog.Logger, v *webhook.Verifier, sender webhook.Sender, inngest http.Handler, db pinger, hook webhook.Options, m *metrics, metricsHere bool, syncUser echo.HandlerFunc) {
	e.GET("/", handleRoot())
	e.GET("/healthz", handleHealthz())
	e.GET("/readyz", handleReadyz(db, logger))
	if metricsHere {
		addMetricsRoutes(e, m, logger)
	}
	e.POST("/api/webhooks/clerk", webhook.Handler(v, sender, logger, hook))
	if syncUser != nil {
		e.POST("/api/sync/users/:id", syncUser)
	}
	e.Match([]string{http.MethodGet, http.MethodPost, http.MethodPut}, inngestPath, echo.WrapHandler(inngest))
}

// addMetricsRoutes registers GET /metrics, on the main listener or on METRICS_ADDR's.
func addMetricsRoutes(e *echo.Echo, m *metrics, logger *slog.Logger) {
	e.GET("/metrics", echo.WrapHandler(m.handler(logger)))
}

// newEcho returns an Echo instance that logs one line per request (requestLogger) and
// recovers from panics (logging them once, answering a bare 500).
func newEcho(logger *slog.Logger) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Use(requestLogger(logger))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			logger.Error("panic in handler", "path", c.Path(), "error", err, "stack", string(stack))
			return echo.NewHTTPError(http.StatusInternalServerError)
		},
	}))
	return e
}

func handleRoot() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.String(http.StatusOK, "clerk-user-sync is running. Clerk webhooks: POST /api/webhooks/clerk; Inngest: /api/inngest\n")
	}
}

func handleHealthz() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}
}

func handleReadyz(db pinger, logger *slog.Logger) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := db.Ping(ctx); err != nil {
			logger.Warn("readiness check failed", "error", err)
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "the database does not answer"})
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	}
}

// Package httpapi is the service's HTTP edge: every route, the request log, the guard of
// /api/inngest, the on-demand sync and the health checks. NewHandler builds the handler of the
// service's port from Deps, in which a nil dependency turns its route off; NewMetricsHandler
// builds the one of METRICS_ADDR's listener.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"clerksync/webhook"
)

// Deps is what the routes need. Each route but / and /healthz has its dependency here, and a
// nil one leaves its route out (404).
type Deps struct {
	// Logger receives the request log and every handler's lines; nil discards them.
	Logger *slog.Logger
	// Webhook is POST /api/webhooks/clerk.
	Webhook *Webhook
	// Inngest is /api/inngest (GET, POST, PUT), behind the guard.
	Inngest *Inngest
	// DB is what GET /readyz asks.
	DB Pinger
	// Worker is the Inngest Connect worker, which GET /readyz also asks in Connect mode; nil
	// when the service serves /api/inngest (then Inngest is nil).
	Worker Readier
	// Metrics is GET /metrics; nil when the metrics have a listener of their own
	// (NewMetricsHandler).
	Metrics http.Handler
	// SyncUser is POST /api/sync/users/{id}; nil without SYNC_API_TOKEN.
	SyncUser *SyncUser
}

// Webhook is what POST /api/webhooks/clerk needs: Clerk's webhooks are verified by Verifier
// and their events sent to Inngest through Sender (webhook.Handler).
type Webhook struct {
	Verifier *webhook.Verifier
	Sender   webhook.Sender
	Options  webhook.Options
}

// Pinger is what GET /readyz needs of the database.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Readier is what GET /readyz needs of the Inngest Connect worker: Ready returns nil while it
// is connected, else an error that /readyz answers as it is.
type Readier interface {
	Ready() error
}

// NewHandler returns the handler of every route of d, with the request log and a recovery
// from panics (logged once, answered with a bare 500). It does not fail: a route without its
// dependency is left out.
func NewHandler(d Deps) http.Handler { return newRouter(d) }

// NewMetricsHandler returns the handler of METRICS_ADDR's listener: GET /metrics alone, served
// by metrics, with the request log.
func NewMetricsHandler(logger *slog.Logger, metrics http.Handler) http.Handler {
	e := newEcho(orDiscard(logger))
	e.GET("/metrics", echo.WrapHandler(metrics))
	return e
}

// newRouter registers the routes of d, and is the one list of them (TestRoutes holds it to
// its table).
func newRouter(d Deps) *echo.Echo {
	logger := orDiscard(d.Logger)
	e := newEcho(logger)
	e.GET("/", handleRoot())
	e.GET("/healthz", handleHealthz())
	if d.DB != nil {
		e.GET("/readyz", handleReadyz(d.DB, d.Worker, logger))
	}
	if d.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(d.Metrics))
	}
	if d.Webhook != nil {
		e.POST("/api/webhooks/clerk", webhook.Handler(d.Webhook.Verifier, d.Webhook.Sender, logger, d.Webhook.Options))
	}
	if d.SyncUser != nil {
		e.POST("/api/sync/users/:id", handleSyncUser(*d.SyncUser, logger))
	}
	if d.Inngest != nil {
		e.Match([]string{http.MethodGet, http.MethodPost, http.MethodPut}, InngestPath, echo.WrapHandler(newInngestGuard(*d.Inngest, logger)))
	}
	return e
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

// orDiscard returns logger, or a logger that discards everything when it is nil.
func orDiscard(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return logger
}

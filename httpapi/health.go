package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// readyTimeout bounds the database's answer to GET /readyz.
const readyTimeout = 2 * time.Second

// handleRoot is GET /: what the service is and where its routes are.
func handleRoot() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.String(http.StatusOK, "clerk-user-sync is running. Clerk webhooks: POST /api/webhooks/clerk; Inngest: /api/inngest\n")
	}
}

// handleHealthz is GET /healthz: 200 while the process serves.
func handleHealthz() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}
}

// handleReadyz is GET /readyz: 200 when db answers a ping within readyTimeout and worker (when
// not nil) is connected to Inngest, else 503. The worker's error is answered; the database's
// is logged, not answered.
func handleReadyz(db Pinger, worker Readier, logger *slog.Logger) echo.HandlerFunc {
	return func(c echo.Context) error {
		if worker != nil {
			if err := worker.Ready(); err != nil {
				return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			}
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
		defer cancel()
		if err := db.Ping(ctx); err != nil {
			logger.Warn("readiness check failed", "error", err)
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "the database does not answer"})
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	}
}

package main

import (
	"log/slog"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"clerksync/webhook"
)

// isProbe reports whether a request is a poll: health checks, scrapers, and the dev server's
// app sync (PUT /api/inngest, every few seconds). Their request lines are logged at debug, so
// that they do not drown the rest at info.
func isProbe(method, path string) bool {
	if method == "PUT" && path == "/api/inngest" {
		return true
	}
	switch path {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return false
}

// requestLogger returns the middleware that logs one line per request into logger: method,
// path (without the query), status, latency and, for webhooks, the Svix message id (as
// verified, or else cut by webhook.LoggableID: anyone can send the header). It never logs a body, a signature or any
// other header.
func requestLogger(logger *slog.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogMethod:   true,
		LogURIPath:  true,
		LogStatus:   true,
		LogLatency:  true,
		HandleError: true, // let Echo's error handler set the status (404, 405, 500) before logging
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelInfo
			if isProbe(v.Method, v.URIPath) {
				level = slog.LevelDebug
			}
			attrs := []slog.Attr{
				slog.String("method", v.Method),
				slog.String("path", v.URIPath),
				slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency),
			}
			if id, ok := c.Get(webhook.ContextKeyVerifiedID).(string); ok {
				attrs = append(attrs, slog.String("svix_id", id))
			} else if id := webhook.LoggableID(c.Request().Header); id != "" {
				attrs = append(attrs, slog.String("svix_id", id))
			}
			logger.LogAttrs(c.Request().Context(), level, "request", attrs...)
			return nil
		},
	})
}

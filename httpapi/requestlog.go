package httpapi

import (
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

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

// maxLoggedPathBytes is the most of a request's path a log line carries: the service's routes
// are under 30 bytes, while anyone can send a path of tens of kilobytes.
const maxLoggedPathBytes = 256

// pathCutMark ends a string cut by cutForLog.
const pathCutMark = "…(cut)"

// loggablePath returns path for a log line: unchanged up to maxLoggedPathBytes, else cut to
// that many bytes (at a UTF-8 boundary) and marked with pathCutMark.
func loggablePath(path string) string { return cutForLog(path, maxLoggedPathBytes) }

// cutForLog returns s for a log line: whole when it is at most n bytes, else its first n
// bytes at most (to a UTF-8 boundary) marked with pathCutMark. What a caller sends is not
// trusted to be short.
func cutForLog(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + pathCutMark
}

// requestLogger returns the middleware that logs one line per request into logger: method,
// path (without the query, cut to 256 bytes by loggablePath), status, latency and, for
// webhooks, the Svix message id (as verified, or else cut by webhook.LoggableID: anyone can
// send the header). It never logs a body, a signature or any other header.
//
// A handler's error goes to Echo's error handler first, so that the line has the status it
// set (404, 405, 500). The line goes straight to the logger's handler, without the call-site
// look-up (runtime.Callers) that slog.Logger makes for every record and that no handler of the
// service uses.
func requestLogger(logger *slog.Logger) echo.MiddlewareFunc {
	h := logger.Handler()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			latency := time.Since(start)
			req := c.Request()
			path := req.URL.Path
			if path == "" {
				path = "/"
			}
			level := slog.LevelInfo
			if isProbe(req.Method, path) {
				level = slog.LevelDebug
			}
			ctx := req.Context()
			if !h.Enabled(ctx, level) {
				return err
			}
			r := slog.NewRecord(time.Now(), level, "request", 0)
			r.AddAttrs(
				slog.String("method", req.Method),
				slog.String("path", loggablePath(path)),
				slog.Int("status", c.Response().Status),
				slog.Duration("latency", latency),
			)
			if id, ok := c.Get(webhook.ContextKeyVerifiedID).(string); ok {
				r.AddAttrs(slog.String("svix_id", id))
			} else if id := webhook.LoggableID(req.Header); id != "" {
				r.AddAttrs(slog.String("svix_id", id))
			}
			_ = h.Handle(ctx, r)
			// The error was handled above; Echo's error handler ignores it once the response
			// is committed, and middleware above this one still sees it.
			return err
		}
	}
}

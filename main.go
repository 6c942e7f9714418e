// Command clerk-user-sync keeps an application's MongoDB users collection in sync with Clerk.
// Clerk's webhooks are verified and forwarded to Inngest, whose functions write each user to
// MongoDB (or to an embedded FerretDB, in dev mode or with MONGODB_URI=embedded).
//
// Run it with `go run .`; `go run . --help` lists every setting.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/prometheus/client_golang/prometheus"

	"clerksync/functions"
	"clerksync/webhook"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "clerk-user-sync: %v\n", err)
		os.Exit(1)
	}
}

// Timeouts of the HTTP server: a slow or stalled client cannot hold a connection for long.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 2 * time.Minute
	idleTimeout       = time.Minute
	// sendAttemptTimeout bounds each HTTP attempt of the Inngest SDK's Send.
	sendAttemptTimeout = 3 * time.Second
)

// run starts the service and blocks until ctx ends or SIGINT/SIGTERM arrives, then shuts down
// gracefully. It returns an error when the configuration is incomplete or a dependency cannot
// start; the error says what to set or fix.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if len(args) > 1 {
		switch args[1] {
		case "-h", "-help", "--help", "help":
			printHelp(stdout)
			return nil
		case "send":
			return runSend(ctx, args[2:], getenv, stdout, stderr)
		case "healthcheck":
			return runHealthcheck(ctx, getenv, stdout)
		case "backfill":
			return runBackfill(ctx, args[2:], getenv, stdout, stderr)
		case "forget-clerk-instance":
			return runForgetInstance(ctx, args[2:], getenv, stdout, stderr)
		case "version", "-version", "--version":
			return runVersion(stdout)
		default:
			return fmt.Errorf("unknown command %q; run with --help to see the settings", strings.Join(args[1:], " "))
		}
	}

	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg)

	verifier, err := webhook.NewVerifier(cfg.secrets...)
	if err != nil {
		return fmt.Errorf("CLERK_WEBHOOK_SIGNING_SECRET: %w; copy it from Clerk Dashboard -> Webhooks -> your endpoint -> Signing Secret", err)
	}

	// Database: MongoDB, or FerretDB embedded in this process when chosen.
	users, closeDB, err := openDatabase(ctx, cfg, logger, stderr,
		"using the embedded FerretDB database (SQLite) in DATA_DIR; set MONGODB_URI to a mongodb:// connection string to use MongoDB")
	if err != nil {
		return err
	}
	defer closeDB()

	// Inngest: the client sends the webhook events and serves the functions.
	client, err := inngestgo.NewClient(inngestOptions(cfg, logger))
	if err != nil {
		return fmt.Errorf("inngest client: %w", err)
	}
	// Metrics: a registry of this run's own, served at /metrics.
	m := newMetrics(prometheus.NewRegistry())
	if err := functions.New(users, users, logger, functions.Config{AppID: client.AppID(), BatchSize: cfg.batchSize, Metrics: m}).Register(client); err != nil {
		return fmt.Errorf("inngest functions: %w", err)
	}
	// record-sync-failure: the sync functions' permanent failures, in sync_failures.
	if err := functions.NewFailureRecorder(users, logger, functions.Config{Metrics: m}).Register(client); err != nil {
		return fmt.Errorf("inngest functions: %w", err)
	}
	// reconcile-users-with-clerk: only with CLERK_SECRET_KEY.
	if err := registerReconciliation(client, cfg, users, logger, m); err != nil {
		return fmt.Errorf("inngest functions: %w", err)
	}

	e := newEcho(logger)
	hook := webhook.Options{Timeout: cfg.forwardTimeout, MaxBodyBytes: cfg.maxEventBytes, Metrics: m}
	addRoutes(e, logger, verifier, keyRedactingClient{Client: client, eventKey: cfg.eventKey}, users, hook, m, cfg.metricsAddr == "")

	addr := net.JoinHostPort(cfg.host, cfg.port)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w; set PORT (and HOST) to a free port on this machine", addr, err)
	}
	srv := newHTTPServer(e, logger)
	servers := []*http.Server{srv}
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	if cfg.metricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.metricsAddr)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("listen on METRICS_ADDR=%s: %w; set METRICS_ADDR to a free address such as 127.0.0.1:9090", cfg.metricsAddr, err)
		}
		me := newEcho(logger)
		addMetricsRoutes(me, m, logger)
		msrv := newHTTPServer(me, logger)
		servers = append(servers, msrv)
		go func() { serveErr <- msrv.Serve(mln) }()
		logger.Info("serving /metrics on its own listener", "addr", mln.Addr().String())
	}

	port := ln.Addr().(*net.TCPAddr).Port
	mode := "Inngest Cloud"
	switch {
	case cfg.devURL != "":
		mode = "Inngest dev server at " + cfg.devURL
		logger.Warn("dev mode (INNGEST_DEV): /api/inngest runs any unsigned request, so anyone who reaches this port can write and delete users; "+
			"never expose it to a network others use, and unset INNGEST_DEV in production", "listen", ln.Addr().String())
	case cfg.inngestBaseURL != "":
		mode = "self-hosted Inngest at " + cfg.inngestBaseURL
	}
	logger.Info("listening", "addr", ln.Addr().String(), "inngest", mode, "app_id", cfg.appID)
	fmt.Fprintf(stdout, "clerk-user-sync listening on http://localhost:%d (webhook: /api/webhooks/clerk, Inngest: /api/inngest)\n", port)

	select {
	case err := <-serveErr:
		shutdown(servers, cfg.shutdownTimeout, logger)
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	// From here a second SIGINT or SIGTERM ends the process at once (Go's default action).
	stop()
	logger.Info("shutting down: draining in-flight requests before closing the database; a second signal exits at once", "timeout", cfg.shutdownTimeout)
	shutdown(servers, cfg.shutdownTimeout, logger)
	// closeDB (deferred) runs now, after the drain: in-flight steps finished their writes.
	return nil
}

// newHTTPServer returns the HTTP server of handler h, with the timeouts that cut slow or
// stalled clients.
func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// shutdown drains servers together within timeout: they stop accepting, and in-flight
// requests finish. Requests still running at the deadline are cut (Inngest retries their
// steps, Svix their webhooks), with a warning; the shutdown itself is not an error.
func shutdown(servers []*http.Server, timeout time.Duration, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Warn("in-flight requests outlived the shutdown timeout and were cut; Inngest retries their steps and Svix their webhooks",
					"timeout", timeout, "error", err)
				_ = srv.Close()
			}
		}()
	}
	wg.Wait()
}

// inngestOptions turns the configuration into the SDK's options, leaving nothing for the SDK
// to read from the environment on its own.
func inngestOptions(cfg config, logger *slog.Logger) inngestgo.ClientOpts {
	opts := inngestgo.ClientOpts{
		AppID:              cfg.appID,
		Logger:             logger,
		HTTPClient:         &http.Client{Timeout: sendAttemptTimeout, Transport: eventTransport()},
		Dev:                inngestgo.BoolPtr(cfg.devURL != ""),
		EventKey:           &cfg.eventKey,
		SigningKey:         &cfg.signingKey,
		SigningKeyFallback: &cfg.signingKeyFallback,
		Env:                &cfg.inngestEnv,
		MaxBodySize:        maxInngestBodyBytes,
	}
	base := cfg.inngestBaseURL
	if cfg.devURL != "" {
		base = cfg.devURL
		opts.EventKey = inngestgo.StrPtr("dev") // loadConfig refuses real keys in dev mode
	}
	if base != "" {
		opts.APIBaseURL = &base
		opts.EventAPIBaseURL = &base
	}
	return opts
}

// keyRedactingClient is the Inngest client with the event key taken out of Send's errors,
// which are logged: when the event API cannot be reached, the SDK returns the HTTP client's
// error, which quotes the event API's URL, and the key is that URL's last segment.
type keyRedactingClient struct {
	inngestgo.Client
	eventKey string
}

// Send sends evt through the SDK; its error, if any, has the event key replaced.
func (c keyRedactingClient) Send(ctx context.Context, evt any) (string, error) {
	id, err := c.Client.Send(ctx, evt)
	if err != nil && c.eventKey != "" && strings.Contains(err.Error(), c.eventKey) {
		err = errors.New(strings.ReplaceAll(err.Error(), c.eventKey, "<INNGEST_EVENT_KEY>"))
	}
	return id, err
}

// eventTransport is the HTTP transport for sending events: like the default one, but keeping
// enough idle connections to Inngest for a burst of concurrent webhooks (the default keeps 2
// per host, so a burst would open a new connection for most events).
func eventTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	return t
}

// newLogger returns the service's logger, writing to w in the configured format and level.
func newLogger(w io.Writer, cfg config) *slog.Logger {
	o := &slog.HandlerOptions{Level: cfg.logLevel}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// quietLogger is for the embedded database, whose informational messages and warnings (for
// example about the driver's endSessions, which FerretDB does not implement) are noise here.
func quietLogger(w io.Writer, cfg config) *slog.Logger {
	c := cfg
	if c.logLevel < slog.LevelError {
		c.logLevel = slog.LevelError
	}
	return newLogger(w, c).With("component", "ferretdb")
}

// printHelp lists every setting with its default.
func printHelp(w io.Writer) {
	fmt.Fprintln(w, "clerk-user-sync: keeps a MongoDB users collection in sync with Clerk, through Inngest.")
	fmt.Fprint(w, `
Usage:
  clerk-user-sync              start the service
  clerk-user-sync send EVENT   sign a Clerk example event (user.created, user.updated,
                               user.deleted) or a JSON file and post it to the service
  clerk-user-sync healthcheck  exit 0 when the local service answers GET /readyz with 200
                               (for container health checks)
  clerk-user-sync backfill     import every Clerk user once, from the Backend API
                               (CLERK_SECRET_KEY) or --from-export FILE.csv; safe to rerun
  clerk-user-sync forget-clerk-instance
                               forget which Clerk instance the database follows, so that
                               the next reconciliation or backfill records its key's
  clerk-user-sync version      print the version, VCS revision and Go version
  clerk-user-sync --help       this text

Settings (environment variables):
`)
	for _, s := range settingsHelp() {
		def := s.def
		if def == "" {
			def = "unset"
		}
		fmt.Fprintf(w, "  %-30s default: %s\n      %s\n", s.name, def, s.help)
	}
}

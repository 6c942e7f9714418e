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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"clerksync/httpapi"
	"clerksync/metrics"
	"clerksync/store"
	"clerksync/webhook"
)

// Timeouts of the HTTP server: a slow or stalled client cannot hold a connection for long.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 2 * time.Minute
	idleTimeout       = time.Minute
)

// runServer starts the service and blocks until ctx ends, then drains in-flight requests and
// closes the database. stop ends run's signal handling, so that a second signal exits at
// once. It returns an error when the configuration is incomplete or a dependency cannot
// start; the error says what to set or fix.
func runServer(ctx context.Context, stop context.CancelFunc, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := readConfig(getenv)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.log)

	verifier, err := webhook.NewVerifier(cfg.webhook.secrets...)
	if err != nil {
		return fmt.Errorf("CLERK_WEBHOOK_SIGNING_SECRET: %w; copy it from Clerk Dashboard -> Webhooks -> your endpoint -> Signing Secret", err)
	}
	db, closeDB, err := openDatabase(ctx, cfg.db, cfg.log, logger, stderr)
	if err != nil {
		return err
	}
	defer closeDB() // after the drain below: in-flight steps finish their writes first
	m := metrics.New(prometheus.NewRegistry())
	app, err := newInngest(cfg.inngest, cfg.clerk, db, m, logger)
	if err != nil {
		return err
	}
	deps := edgeDeps(cfg, verifier, db, app, m, logger)
	var worker *connectWorker
	if cfg.inngest.connect {
		id, err := connectInstanceID(cfg.inngest, os.Hostname)
		if err != nil {
			return err
		}
		worker = newConnectWorker(dialConnect(app, id), id, logger)
		deps.Worker = worker
	}
	handler := httpapi.NewHandler(deps)

	addr := net.JoinHostPort(cfg.http.host, cfg.http.port)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w; set PORT (and HOST) to a free port on this machine", addr, err)
	}
	srv := newHTTPServer(handler, logger)
	servers := []*http.Server{srv}
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	if cfg.http.metricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.http.metricsAddr)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("listen on METRICS_ADDR=%s: %w; set METRICS_ADDR to a free address such as 127.0.0.1:9090", cfg.http.metricsAddr, err)
		}
		msrv := newHTTPServer(httpapi.NewMetricsHandler(logger, m.Handler(logger)), logger)
		servers = append(servers, msrv)
		go func() { serveErr <- msrv.Serve(mln) }()
		logger.Info("serving /metrics on its own listener", "addr", mln.Addr().String())
	}

	inngestRoute := "/api/inngest"
	workerDone := make(chan struct{})
	if worker != nil {
		inngestRoute = "Connect worker " + worker.id + ", no /api/inngest"
		go func() {
			defer close(workerDone)
			worker.run(ctx)
		}()
	} else {
		close(workerDone)
	}
	if cfg.inngest.devURL != "" && worker == nil {
		logger.Warn("dev mode (INNGEST_DEV): /api/inngest runs any unsigned request, so anyone who reaches this port can write and delete users; "+
			"never expose it to a network others use, and unset INNGEST_DEV in production", "listen", ln.Addr().String())
	}
	serveURL := "taken from the dev server's sync"
	switch {
	case worker != nil:
		serveURL = "none: Connect mode (INNGEST_CONNECT)"
	case cfg.inngest.serveURL != nil:
		serveURL = cfg.inngest.serveURL.String()
	}
	logger.Info("listening", "addr", ln.Addr().String(), "inngest", cfg.inngest.mode(), "app_id", cfg.inngest.appID, "serve_url", serveURL)
	fmt.Fprintf(stdout, "clerk-user-sync listening on http://localhost:%d (webhook: /api/webhooks/clerk, Inngest: %s)\n", ln.Addr().(*net.TCPAddr).Port, inngestRoute)

	// drain stops the Connect worker's dialling, then drains the HTTP servers and the
	// worker's runs in flight together within the shutdown timeout.
	drain := func() {
		var wg sync.WaitGroup
		wg.Go(func() { shutdown(servers, cfg.http.shutdownTimeout, logger) })
		if worker != nil {
			wg.Go(func() {
				<-workerDone
				worker.close(cfg.http.shutdownTimeout)
			})
		}
		wg.Wait()
	}
	select {
	case err := <-serveErr:
		stop() // ends ctx, and with it the worker's dialling
		drain()
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	stop() // from here a second SIGINT or SIGTERM ends the process at once (Go's default action)
	logger.Info("shutting down: draining in-flight requests and runs before closing the database; a second signal exits at once", "timeout", cfg.http.shutdownTimeout)
	drain()
	return nil
}

// edgeDeps returns what the service's routes need, as cfg turns them on: the webhook, the
// guarded /api/inngest (not in Connect mode), /readyz on db, /metrics unless METRICS_ADDR gives it a listener of its
// own, and the on-demand sync with SYNC_API_TOKEN. It logs which Clerk event types are
// forwarded besides the handled ones.
func edgeDeps(cfg config, v *webhook.Verifier, db *store.Store, app inngestApp, m *metrics.Prometheus, logger *slog.Logger) httpapi.Deps {
	switch {
	case cfg.webhook.forwardAll:
		logger.Info("CLERK_FORWARD_EVENTS=*: every Clerk event type is forwarded to Inngest with its data, which stays in Inngest's event history (email.created carries one-time codes)")
	case len(cfg.webhook.forwardTypes) > 0:
		logger.Info("CLERK_FORWARD_EVENTS: forwarding these Clerk event types besides the handled ones", "types", cfg.webhook.forwardTypes)
	}
	d := httpapi.Deps{
		Logger: logger,
		Webhook: &httpapi.Webhook{
			Verifier: v,
			Sender:   keyRedactingClient{Client: app.client, eventKey: cfg.inngest.eventKey},
			Options: webhook.Options{Timeout: cfg.webhook.forwardTimeout, MaxBodyBytes: cfg.webhook.maxEventBytes, Metrics: m,
				ForwardTypes: cfg.webhook.forwardTypes, ForwardAll: cfg.webhook.forwardAll},
		},
		DB: db,
	}
	if !cfg.inngest.connect { // in Connect mode Inngest reaches the functions over the worker's connection
		d.Inngest = &httpapi.Inngest{Serve: app.serve, Sync: app.sync, Dev: cfg.inngest.devURL != "",
			SigningKey: cfg.inngest.signingKey, SigningKeyFallback: cfg.inngest.signingKeyFallback}
	}
	if cfg.http.metricsAddr == "" {
		d.Metrics = m.Handler(logger)
	}
	if cfg.clerk.syncToken != "" {
		d.SyncUser = &httpapi.SyncUser{Token: cfg.clerk.syncToken, Clerk: newClerkAPI(cfg.clerk, 0, logger), Store: db, Metrics: m}
	}
	return d
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
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Warn("in-flight requests outlived the shutdown timeout and were cut; Inngest retries their steps and Svix their webhooks",
					"timeout", timeout, "error", err)
				_ = srv.Close()
			}
		})
	}
	wg.Wait()
}

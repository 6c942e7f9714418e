package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/connect"

	"clerksync/functions"
	"clerksync/httpapi"
	"clerksync/metrics"
	"clerksync/reconcile"
	"clerksync/store"
)

// defaultDevServerURL is where `inngest dev` listens unless told otherwise.
const defaultDevServerURL = "http://127.0.0.1:8288"

// sendAttemptTimeout bounds each HTTP attempt of the Inngest SDK's Send.
const sendAttemptTimeout = 3 * time.Second

// inngestConfig is how the service reaches Inngest: the dev server (devURL set) or Inngest
// Cloud or a self-hosted server (keys, and baseURL for self-hosted).
type inngestConfig struct {
	appID string
	// devURL is the Inngest dev server's URL in dev mode, empty otherwise.
	devURL             string
	eventKey           string
	signingKey         string
	signingKeyFallback string
	env                string
	baseURL            string
	batchSize          int
	// events turns on the events emitted after each applied change (SYNC_EVENTS).
	events bool
	// serveURL is the URL of /api/inngest as Inngest reaches it (INNGEST_SERVE_URL): the URL a
	// sync registers. Required outside dev mode; nil in dev mode when unset, where the SDK
	// takes it from the dev server's request.
	serveURL *url.URL
	// connect makes the service dial Inngest's Connect gateway instead of serving
	// /api/inngest (INNGEST_CONNECT).
	connect bool
	// instanceID is the Connect worker's id (INNGEST_INSTANCE_ID); empty means this machine's
	// hostname, read when the worker starts.
	instanceID string
}

// inngestSettings are the Inngest settings, for --help.
var inngestSettings = []setting{
	{name: "INNGEST_DEV", help: "1 (dev server on " + defaultDevServerURL + ") or the dev server's URL: local development only. /api/inngest then runs any unsigned request, so it is refused with INNGEST_EVENT_KEY or INNGEST_SIGNING_KEY and listens on loopback unless HOST is set."},
	{name: "INNGEST_EVENT_KEY", help: "Inngest event key (required with INNGEST_SIGNING_KEY unless INNGEST_DEV is set)."},
	{name: "INNGEST_SIGNING_KEY", help: "Inngest signing key (signkey-<env>-<hex>); every request to /api/inngest must carry its signature, or it is refused before its body is read."},
	{name: "INNGEST_SIGNING_KEY_FALLBACK", help: "Previous signing key, accepted while rotating keys."},
	{name: "INNGEST_CONNECT", def: "unset: serve /api/inngest", help: "1: the service dials Inngest's Connect gateway and runs the functions over that connection, and /api/inngest is not served (404); for workers Inngest cannot reach. Needs INNGEST_SIGNING_KEY outside dev mode; refused with INNGEST_SERVE_URL. See the README's Connect mode."},
	{name: "INNGEST_INSTANCE_ID", def: "the hostname", help: "With INNGEST_CONNECT: this replica's worker id in Inngest, stable across restarts and unique per replica."},
	{name: "INNGEST_SERVE_URL", def: "required unless INNGEST_DEV or INNGEST_CONNECT", help: "The URL Inngest calls to run the functions, as Inngest reaches it (https://sync.example.com/api/inngest). A sync (a signed PUT /api/inngest) registers this URL, never one taken from the request. Optional in dev mode."},
	{name: "INNGEST_ENV", help: "Inngest branch environment name, for branch deploys."},
	{name: "INNGEST_BASE_URL", help: "Self-hosted Inngest server URL (API and event API); needs both keys, and /api/inngest requires the server's signature as with Inngest Cloud."},
	{name: "INNGEST_APP_ID", value: "clerk-user-sync", help: "The app's id in Inngest; function ids are <app id>-<function id>."},
	{name: "SYNC_EVENTS", def: "unset: off", help: "1: after each change applied to the database, send Inngest an event (clerk-sync/user.created, .updated, .deleted; the same for organization and organizationMembership) for workflows of your own, with a deterministic id, inside the step that writes (no extra run or step). Off by default: each is one more event in your Inngest plan's count, and nothing listens until you write a workflow."},
	{name: "INNGEST_BATCH_SIZE", value: "0", help: "Above 1: up to this many create/update events per Inngest run (each still a guarded upsert, which also stands in for Inngest's event-id deduplication: Inngest does not apply it to batches); for bursts. 0: one run per event."},
}

// devMode reports whether INNGEST_DEV asks for dev mode.
func (s *settings) devMode() bool {
	switch strings.ToLower(s.get("INNGEST_DEV")) {
	case "", "0", "false", "no":
		return false
	}
	return true
}

// inngest reads the INNGEST_* settings. Dev mode needs no keys and refuses them: it runs any
// unsigned request to /api/inngest, so it must never run where Inngest keys are set. Without
// dev mode both keys are required.
func (s *settings) inngest() inngestConfig {
	c := inngestConfig{
		appID:              s.get("INNGEST_APP_ID"),
		eventKey:           s.get("INNGEST_EVENT_KEY"),
		signingKey:         s.get("INNGEST_SIGNING_KEY"),
		signingKeyFallback: s.get("INNGEST_SIGNING_KEY_FALLBACK"),
		env:                s.get("INNGEST_ENV"),
		baseURL:            s.get("INNGEST_BASE_URL"),
		connect:            s.flag("INNGEST_CONNECT"),
		instanceID:         s.get("INNGEST_INSTANCE_ID"),
	}
	if c.connect && s.value("INNGEST_SERVE_URL") != "" {
		s.fail(errors.New("INNGEST_SERVE_URL is set together with INNGEST_CONNECT: in Connect mode Inngest reaches the functions over the connection the service opens, " +
			"and /api/inngest is not served; unset INNGEST_SERVE_URL, or unset INNGEST_CONNECT to serve /api/inngest at that URL"))
	}
	if c.instanceID != "" && !c.connect {
		s.fail(errors.New("INNGEST_INSTANCE_ID is set without INNGEST_CONNECT: it names a Connect worker; set INNGEST_CONNECT=1, or unset INNGEST_INSTANCE_ID"))
	}
	if raw := s.get("INNGEST_SERVE_URL"); raw != "" {
		u, err := parseServeURL(raw)
		if err != nil {
			s.fail(err)
		}
		c.serveURL = u
	}
	c.events = s.flag("SYNC_EVENTS")
	if n, err := strconv.Atoi(s.get("INNGEST_BATCH_SIZE")); err != nil || n < 0 || n > 1000 {
		s.fail(errors.New("INNGEST_BATCH_SIZE must be a whole number from 0 to 1000"))
	} else {
		c.batchSize = n
	}
	if !s.devMode() {
		var missing []string
		if c.eventKey == "" {
			missing = append(missing, "INNGEST_EVENT_KEY")
		}
		if c.signingKey == "" {
			missing = append(missing, "INNGEST_SIGNING_KEY")
		}
		if len(missing) > 0 {
			s.fail(fmt.Errorf("Inngest is not configured (%s missing). Either set INNGEST_DEV=1 (or INNGEST_DEV=<dev server URL>) to use the Inngest dev server locally, "+
				"or set both INNGEST_EVENT_KEY and INNGEST_SIGNING_KEY (Inngest dashboard -> your environment -> Manage -> Event Keys / Signing Key) for Inngest Cloud", strings.Join(missing, " and ")))
		}
		for _, k := range []struct{ name, value string }{
			{"INNGEST_SIGNING_KEY", c.signingKey},
			{"INNGEST_SIGNING_KEY_FALLBACK", c.signingKeyFallback},
		} {
			if k.value != "" && !validSigningKey(k.value) {
				s.fail(fmt.Errorf("%s is not an Inngest signing key: copy it whole from the Inngest dashboard -> your environment -> Manage -> Signing Key "+
					"(signkey-<env>-<hex>); for a self-hosted server, signkey-prod-<the hex key given to inngest start --signing-key>", k.name))
			}
		}
		if c.serveURL == nil && !c.connect {
			s.fail(errors.New("INNGEST_SERVE_URL is not set: set it to the URL at which Inngest reaches this service's /api/inngest, " +
				"for example https://sync.example.com/api/inngest (Inngest Cloud) or http://clerk-user-sync:3000/api/inngest (a self-hosted server on the same network). " +
				"A sync registers that URL with Inngest; outside dev mode it is never taken from a request. " +
				"Or set INNGEST_CONNECT=1 for the service to dial Inngest instead"))
		}
		return c
	}
	switch dev := s.get("INNGEST_DEV"); strings.ToLower(dev) {
	case "1", "true", "yes":
		c.devURL = defaultDevServerURL
	default:
		u, err := url.Parse(dev)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			s.fail(fmt.Errorf("INNGEST_DEV=%q is neither 1 nor a URL such as %s", dev, defaultDevServerURL))
		}
		c.devURL = strings.TrimRight(dev, "/")
	}
	var keys []string
	for _, k := range []struct{ name, value string }{
		{"INNGEST_EVENT_KEY", c.eventKey},
		{"INNGEST_SIGNING_KEY", c.signingKey},
		{"INNGEST_SIGNING_KEY_FALLBACK", c.signingKeyFallback},
	} {
		if k.value != "" {
			keys = append(keys, k.name)
		}
	}
	if len(keys) > 0 {
		s.fail(fmt.Errorf("INNGEST_DEV is set together with %s: dev mode runs any unsigned request to /api/inngest, so it must never run where Inngest keys are set. "+
			"In production unset INNGEST_DEV (the keys make /api/inngest require Inngest's signature); for local development unset the keys", strings.Join(keys, " and ")))
	}
	return c
}

// signingKeyRE is the shape of an Inngest signing key: an optional signkey-<env>- prefix
// (which the SDK strips, as inngestgo's keyRegexp does) and the key itself, in hex.
var signingKeyRE = regexp.MustCompile(`^(signkey-\w+-)?([0-9a-fA-F]{2})+$`)

// validSigningKey reports whether key has the shape of an Inngest signing key. The SDK signs
// with any string but sends the key's hash to Inngest after decoding its hex part, so a key
// that is not hex would fail only later, at the first sync.
func validSigningKey(key string) bool { return signingKeyRE.MatchString(key) }

// parseServeURL reads INNGEST_SERVE_URL: an absolute http(s) URL with a host, no user, query or
// fragment. A URL with no path (or "/") means the service's own /api/inngest. It returns an
// error saying what is wrong.
func parseServeURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("INNGEST_SERVE_URL=%q is not a URL such as https://sync.example.com/api/inngest", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("INNGEST_SERVE_URL=%q must have no user, query or fragment: only scheme, host and path, such as https://sync.example.com/api/inngest", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = httpapi.InngestPath
	}
	return u, nil
}

// mode names where the service sends its events, for the start-up log line.
func (c inngestConfig) mode() string {
	switch {
	case c.devURL != "":
		return "Inngest dev server at " + c.devURL
	case c.baseURL != "":
		return "self-hosted Inngest at " + c.baseURL
	}
	return "Inngest Cloud"
}

// inngestApp is the service's side of Inngest: the client that sends the webhook events, and
// two SDK handlers with the same functions. serve runs the invocations (POST) and answers
// inspections (GET); sync answers syncs (PUT). The SDK holds a handler's write lock for the
// whole of a sync's registration with Inngest, on an HTTP client without a timeout, and every
// invocation takes that lock to find its function: with a handler of its own, a sync that
// hangs holds no invocation back. In Connect mode serve and sync are nil: the functions are
// run over the Connect worker's connection (connectWorker), from client's registrations.
type inngestApp struct {
	client      inngestgo.Client
	serve, sync http.Handler
}

// newInngest returns the Inngest side of c, with every function of the service registered on
// both handlers: the user, organization and membership functions, record-sync-failure, and
// reconcile-users-with-clerk and reconcile-organizations-with-clerk when clerkc has a secret
// key (on its schedule, and on reconcile.RequestEvent, which the reconcile command sends).
// Both handlers register c.serveURL, never a URL taken from a request (in dev mode without
// INNGEST_SERVE_URL, the dev server's). It returns an error when the SDK refuses a client or a
// function.
func newInngest(c inngestConfig, clerkc clerkConfig, db *store.Store, m *metrics.Prometheus, logger *slog.Logger) (inngestApp, error) {
	var app inngestApp
	handlers := make([]http.Handler, 2)
	if c.connect {
		handlers = handlers[:1] // only the client: there is no /api/inngest to serve
	}
	for i := range handlers {
		client, err := inngestgo.NewClient(inngestOptions(c, logger))
		if err != nil {
			return inngestApp{}, fmt.Errorf("inngest client: %w", err)
		}
		if err := registerFunctions(client, c, clerkc, db, m, logger); err != nil {
			return inngestApp{}, fmt.Errorf("inngest functions: %w", err)
		}
		if c.connect {
			// nothing to serve: connectWorker runs client's functions
		} else if c.serveURL == nil {
			handlers[i] = client.Serve()
		} else {
			origin, path := c.serveURL.Scheme+"://"+c.serveURL.Host, c.serveURL.Path
			handlers[i] = client.ServeWithOpts(inngestgo.ServeOpts{Origin: &origin, Path: &path})
		}
		if i == 0 {
			app.client = client
		}
	}
	if !c.connect {
		app.serve, app.sync = handlers[0], handlers[1]
	}
	if c.events {
		logger.Info("SYNC_EVENTS is on: each change applied to the database sends its event", "names", "clerk-sync/<user|organization|organizationMembership>.<created|updated|deleted>")
	}
	if clerkc.secretKey == "" {
		logger.Info("CLERK_SECRET_KEY is not set: no scheduled reconciliation with Clerk")
	} else {
		logger.Info("reconciliation with Clerk scheduled", "functions", []string{reconcile.FunctionID, reconcile.OrganizationsFunctionID},
			"full_schedule", clerkc.schedule, "incremental_schedule", clerkc.incremental, "organizations_schedule", clerkc.organizations, "max_delete_share", clerkc.maxDeleteShare, "on_demand_event", reconcile.RequestEvent)
	}
	return app, nil
}

// registerFunctions registers every function of the service on client: the user, organization
// and membership functions (sending their events through client when c.events is set),
// record-sync-failure, and the two reconciliations when clerkc has a secret key. It returns the
// SDK's error when it refuses one.
func registerFunctions(client inngestgo.Client, c inngestConfig, clerkc clerkConfig, db *store.Store, m *metrics.Prometheus, logger *slog.Logger) error {
	fcfg := functions.Config{AppID: client.AppID(), BatchSize: c.batchSize, Metrics: m}
	if c.events {
		fcfg.Events = keyRedactingClient{Client: client, eventKey: c.eventKey}
	}
	if err := functions.New(db, db, logger, fcfg).Register(client); err != nil {
		return err
	}
	// record-sync-failure: the sync functions' permanent failures, in sync_failures.
	if err := functions.NewFailureRecorder(db, logger, functions.Config{Metrics: m}).Register(client); err != nil {
		return err
	}
	if clerkc.secretKey == "" {
		return nil
	}
	// Each function its own client, within its own share of Clerk's rate limit.
	cfg := reconcile.Config{MaxDeleteShare: clerkc.maxDeleteShare, MaxRunSteps: clerkc.maxRunSteps, Metrics: m}
	usersCfg, schedule := cfg, clerkc.schedule
	if clerkc.incremental != "" {
		// Incremental runs on their schedule, full passes on RECONCILE_SCHEDULE.
		usersCfg.FullSchedule, schedule = clerkc.schedule, clerkc.incremental
	}
	users := newClerkAPI(clerkc, clerkc.usersShare, logger)
	if err := reconcile.New(db, users, logger.With("function", reconcile.FunctionID), usersCfg).Register(client, schedule); err != nil {
		return err
	}
	orgs := newClerkAPI(clerkc, clerkc.orgsShare, logger)
	return reconcile.New(db, orgs, logger.With("function", reconcile.OrganizationsFunctionID), cfg).RegisterOrganizations(client, clerkc.organizations)
}

// inngestOptions turns the configuration into the SDK's options, leaving nothing for the SDK
// to read from the environment on its own.
func inngestOptions(c inngestConfig, logger *slog.Logger) inngestgo.ClientOpts {
	opts := inngestgo.ClientOpts{
		AppID:              c.appID,
		Logger:             logger,
		HTTPClient:         &http.Client{Timeout: sendAttemptTimeout, Transport: eventTransport()},
		Dev:                inngestgo.BoolPtr(c.devURL != ""),
		EventKey:           &c.eventKey,
		SigningKey:         &c.signingKey,
		SigningKeyFallback: &c.signingKeyFallback,
		Env:                &c.env,
		MaxBodySize:        httpapi.MaxInngestBodyBytes,
		// Syncs register out of band, on the guard's sync handler (httpapi/inngestguard.go), the path
		// the tests run against the real server; nil would let the SDK read
		// INNGEST_ALLOW_IN_BAND_SYNC from the environment.
		AllowInBandSync: inngestgo.BoolPtr(false),
	}
	base := c.baseURL
	if c.devURL != "" {
		base = c.devURL
		opts.EventKey = inngestgo.StrPtr("dev") // the settings refuse real keys in dev mode
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

// Connect mode's constants. connectMaxConcurrency caps the runs the gateway sends this
// replica at once (and the SDK's worker pool), set here so that the SDK does not read
// INNGEST_CONNECT_MAX_WORKER_CONCURRENCY from the environment. connectStaleAfter is how long
// the connection may stay other than active before the worker dials anew: inngestgo v0.15.1
// gives up reconnecting after 5 attempts, and at once when the connection drops without a
// close reason (a gateway restarted or unreachable), and then stays RECONNECTING for good.
const (
	connectMaxConcurrency = 100
	connectStaleAfter     = 15 * time.Second
	connectRetryMax       = 30 * time.Second
	connectDialTimeout    = 40 * time.Second // the SDK's start-up gives up at 30s
	connectWatchInterval  = time.Second
)

// dialConnect returns how the service's Connect worker dials Inngest: the functions of
// app.client, as worker instanceID, reading WebSocket messages up to the size /api/inngest
// accepts: Inngest sends at most 4 MiB of event and step state. ConnectOpts' documentation
// gives 32 KB as the default, which Clerk payloads exceed; v0.15.1's code uses 10 MB. Set, the
// limit is the same in both modes whatever the SDK's default. The dial blocks until the
// connection is active, ctx ends, or the SDK gives up (30s at most); ctx is the connection's
// lifetime, not only the dial's (the SDK's worker pool stops with it).
func dialConnect(app inngestApp, instanceID string) func(ctx context.Context) (connect.WorkerConnection, error) {
	readLimit := int64(httpapi.MaxInngestBodyBytes)
	concurrency := int64(connectMaxConcurrency)
	return func(ctx context.Context) (connect.WorkerConnection, error) {
		return inngestgo.Connect(ctx, inngestgo.ConnectOpts{
			Apps:                 []inngestgo.Client{app.client},
			InstanceID:           &instanceID,
			MaxWorkerConcurrency: &concurrency,
			MessageReadLimit:     &readLimit,
		})
	}
}

// connectInstanceID returns the Connect worker's id: INNGEST_INSTANCE_ID, else hostname's
// answer. It returns an error saying to set INNGEST_INSTANCE_ID when there is no hostname.
func connectInstanceID(c inngestConfig, hostname func() (string, error)) (string, error) {
	if c.instanceID != "" {
		return c.instanceID, nil
	}
	h, err := hostname()
	if err != nil || h == "" {
		return "", fmt.Errorf("INNGEST_CONNECT: this machine has no hostname to name the worker (%v); set INNGEST_INSTANCE_ID to a name stable across restarts and unique per replica", err)
	}
	return h, nil
}

// connectWorker keeps the service's Connect worker connected to Inngest: run dials until the
// connection is active, and dials anew when it stays inactive for staleAfter; Ready
// reports the connection to /readyz; close ends it at shutdown.
type connectWorker struct {
	dial   func(ctx context.Context) (connect.WorkerConnection, error)
	id     string
	logger *slog.Logger
	// staleAfter, dialTimeout and watchEvery are connectStaleAfter, connectDialTimeout and
	// connectWatchInterval (newConnectWorker), shorter in tests.
	staleAfter, dialTimeout, watchEvery time.Duration

	mu      sync.Mutex
	conn    connect.WorkerConnection // nil until connected, and while dialling anew
	cancel  context.CancelFunc       // ends conn's lifetime, after its Close
	stopped bool
}

// newConnectWorker returns the worker that dials with dial, as instance id, logging to logger.
func newConnectWorker(dial func(ctx context.Context) (connect.WorkerConnection, error), id string, logger *slog.Logger) *connectWorker {
	return &connectWorker{dial: dial, id: id, logger: logger,
		staleAfter: connectStaleAfter, dialTimeout: connectDialTimeout, watchEvery: connectWatchInterval}
}

// run dials Inngest and watches the connection until ctx ends; it logs each failed dial and
// each change of the connection's state. It returns when ctx ends; close then ends the
// connection.
func (w *connectWorker) run(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		// The connection outlives ctx: close drains it at shutdown. Only the dial stops with ctx.
		connCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		conn, err := w.dialOnce(ctx, connCtx, cancel)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return
			}
			w.logger.Warn("cannot connect to Inngest (INNGEST_CONNECT); retrying: check that INNGEST_DEV or INNGEST_BASE_URL reaches Inngest and that its Connect gateway is reachable from here",
				"instance_id", w.id, "error", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, connectRetryMax)
			continue
		}
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			_ = conn.Close()
			cancel()
			return
		}
		w.conn, w.cancel = conn, cancel
		w.mu.Unlock()
		w.logger.Info("connected to Inngest: running the functions over the Connect gateway", "instance_id", w.id)
		backoff = time.Second
		if !w.watch(ctx, conn) {
			return
		}
		w.mu.Lock()
		w.conn, w.cancel = nil, nil
		w.mu.Unlock()
		w.logger.Warn("the Inngest connection stayed down; dialling anew", "instance_id", w.id, "state", conn.State(), "after", w.staleAfter)
		_ = conn.Close()
		cancel()
	}
}

// dialOnce dials with connCtx as the connection's lifetime, and gives up on the dial when ctx
// ends or after dialTimeout. inngestgo v0.15.1's Connect never returns when its
// start-up ends (its 30s limit, or connCtx cancelled) while it waits to retry: its retry loop
// blocks on a channel no one reads any more. Such a dial is left behind (cancel stops its
// worker pool), and the connection it might still return is closed.
func (w *connectWorker) dialOnce(ctx, connCtx context.Context, cancel context.CancelFunc) (connect.WorkerConnection, error) {
	type dialed struct {
		conn connect.WorkerConnection
		err  error
	}
	res := make(chan dialed, 1)
	go func() {
		conn, err := w.dial(connCtx)
		res <- dialed{conn, err}
	}()
	abandon := func() {
		cancel()
		go func() {
			if d := <-res; d.conn != nil {
				_ = d.conn.Close()
			}
		}()
	}
	timer := time.NewTimer(w.dialTimeout)
	defer timer.Stop()
	select {
	case d := <-res:
		return d.conn, d.err
	case <-ctx.Done():
		abandon()
		return nil, ctx.Err()
	case <-timer.C:
		abandon()
		return nil, fmt.Errorf("no connection within %v", w.dialTimeout)
	}
}

// watch logs conn's changes of state until ctx ends (false) or conn has not been active for
// staleAfter, or was closed by the SDK (true: dial anew).
func (w *connectWorker) watch(ctx context.Context, conn connect.WorkerConnection) bool {
	t := time.NewTicker(w.watchEvery)
	defer t.Stop()
	last, lastActive := connect.ConnectionStateActive, time.Now()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		st := conn.State()
		if st != last {
			w.logger.Info("Inngest connection", "state", st, "was", last, "instance_id", w.id)
			last = st
		}
		switch {
		case st == connect.ConnectionStateActive:
			lastActive = time.Now()
		case st == connect.ConnectionStateClosed, time.Since(lastActive) > w.staleAfter:
			return true
		}
	}
}

// Ready returns nil while the worker's connection is active, else an error saying what it is
// doing (for /readyz, which answers it).
func (w *connectWorker) Ready() error {
	w.mu.Lock()
	conn := w.conn
	w.mu.Unlock()
	if conn == nil {
		return errors.New("not connected to Inngest yet (INNGEST_CONNECT)")
	}
	if st := conn.State(); st != connect.ConnectionStateActive {
		return fmt.Errorf("the Inngest connection is %s (INNGEST_CONNECT)", strings.ToLower(string(st)))
	}
	return nil
}

// close ends the worker after run has returned: the connection stops taking work, the runs in
// flight finish and send their results, and the connection closes, within timeout. inngestgo
// v0.15.1's Close waits for runs in flight for 5s at most; runs still going then, or at
// timeout, are retried by Inngest once their lease lapses. close logs a warning then.
func (w *connectWorker) close(timeout time.Duration) {
	w.mu.Lock()
	w.stopped = true
	conn, cancel := w.conn, w.cancel
	w.mu.Unlock()
	if conn == nil {
		return
	}
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- conn.Close() }()
	select {
	case err := <-done:
		if err != nil {
			w.logger.Warn("closing the Inngest connection", "error", err)
		}
	case <-time.After(timeout):
		w.logger.Warn("runs in flight outlived the shutdown timeout; Inngest retries their steps", "timeout", timeout)
	}
}

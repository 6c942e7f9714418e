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
	"time"

	"github.com/inngest/inngestgo"

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
}

// inngestSettings are the Inngest settings, for --help.
var inngestSettings = []setting{
	{name: "INNGEST_DEV", help: "1 (dev server on " + defaultDevServerURL + ") or the dev server's URL: local development only. /api/inngest then runs any unsigned request, so it is refused with INNGEST_EVENT_KEY or INNGEST_SIGNING_KEY and listens on loopback unless HOST is set."},
	{name: "INNGEST_EVENT_KEY", help: "Inngest event key (required with INNGEST_SIGNING_KEY unless INNGEST_DEV is set)."},
	{name: "INNGEST_SIGNING_KEY", help: "Inngest signing key (signkey-<env>-<hex>); every request to /api/inngest must carry its signature, or it is refused before its body is read."},
	{name: "INNGEST_SIGNING_KEY_FALLBACK", help: "Previous signing key, accepted while rotating keys."},
	{name: "INNGEST_SERVE_URL", def: "required unless INNGEST_DEV", help: "The URL Inngest calls to run the functions, as Inngest reaches it (https://sync.example.com/api/inngest). A sync (a signed PUT /api/inngest) registers this URL, never one taken from the request. Optional in dev mode."},
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
		if c.serveURL == nil {
			s.fail(errors.New("INNGEST_SERVE_URL is not set: set it to the URL at which Inngest reaches this service's /api/inngest, " +
				"for example https://sync.example.com/api/inngest (Inngest Cloud) or http://clerk-user-sync:3000/api/inngest (a self-hosted server on the same network). " +
				"A sync registers that URL with Inngest; outside dev mode it is never taken from a request"))
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
// hangs holds no invocation back.
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
	var handlers [2]http.Handler
	for i := range handlers {
		client, err := inngestgo.NewClient(inngestOptions(c, logger))
		if err != nil {
			return inngestApp{}, fmt.Errorf("inngest client: %w", err)
		}
		if err := registerFunctions(client, c, clerkc, db, m, logger); err != nil {
			return inngestApp{}, fmt.Errorf("inngest functions: %w", err)
		}
		if c.serveURL == nil {
			handlers[i] = client.Serve()
		} else {
			origin, path := c.serveURL.Scheme+"://"+c.serveURL.Host, c.serveURL.Path
			handlers[i] = client.ServeWithOpts(inngestgo.ServeOpts{Origin: &origin, Path: &path})
		}
		if i == 0 {
			app.client = client
		}
	}
	app.serve, app.sync = handlers[0], handlers[1]
	if c.events {
		logger.Info("SYNC_EVENTS is on: each change applied to the database sends its event", "names", "clerk-sync/<user|organization|organizationMembership>.<created|updated|deleted>")
	}
	if clerkc.secretKey == "" {
		logger.Info("CLERK_SECRET_KEY is not set: no scheduled reconciliation with Clerk")
	} else {
		logger.Info("reconciliation with Clerk scheduled", "functions", []string{reconcile.FunctionID, reconcile.OrganizationsFunctionID},
			"schedule", clerkc.schedule, "max_delete_share", clerkc.maxDeleteShare, "on_demand_event", reconcile.RequestEvent)
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
	api := newClerkAPI(clerkc, logger)
	cfg := reconcile.Config{MaxDeleteShare: clerkc.maxDeleteShare, Metrics: m}
	if err := reconcile.New(db, api, logger.With("function", reconcile.FunctionID), cfg).Register(client, clerkc.schedule); err != nil {
		return err
	}
	return reconcile.New(db, api, logger.With("function", reconcile.OrganizationsFunctionID), cfg).RegisterOrganizations(client, clerkc.schedule)
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

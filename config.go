package main

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"clerksync/clerk/event"
)

// config is every setting of the service, one struct per concern, read once from the
// environment by readConfig. The other commands read the concerns they need through the
// same reader (settings), so that a setting means the same to every command.
type config struct {
	http    httpConfig
	webhook webhookConfig
	db      dbConfig
	inngest inngestConfig
	clerk   clerkConfig
	log     logConfig
}

// httpConfig is where the service listens and how it shuts down.
type httpConfig struct {
	port string
	// host is the interface to listen on: empty for all, 127.0.0.1 by default in dev mode.
	host string
	// metricsAddr is the address of the separate /metrics listener; empty serves /metrics on
	// the main port.
	metricsAddr string
	// shutdownTimeout bounds the drain of in-flight requests at shutdown.
	shutdownTimeout time.Duration
}

// webhookConfig is what the Clerk webhook endpoint needs.
type webhookConfig struct {
	// secrets are the endpoint's Svix signing secrets (several while rotating).
	secrets []string
	// maxEventBytes caps webhook bodies: no larger than what the Inngest event API accepts.
	maxEventBytes int64
	// forwardTimeout bounds the wait for Inngest to accept an event.
	forwardTimeout time.Duration
	// forwardTypes are the Clerk event types forwarded to Inngest besides the ones the
	// functions handle; forwardAll forwards every type.
	forwardTypes []string
	forwardAll   bool
}

// setting documents one environment variable; settingsHelp lists them all, for --help (and
// the README's settings table, which a test holds to the same names and defaults), and the
// settings reader takes each default from there.
type setting struct {
	name string
	// value is the default the settings reader uses when name is unset or blank ("": none).
	value string
	// def is the default as --help and the README say it: value, or "unset" when value is
	// empty, unless the table says it in words ("required", "all interfaces; ...").
	def  string
	help string
}

// settingsHelp lists every setting, with its default and what it does.
func settingsHelp() []setting {
	s := []setting{
		{name: "CLERK_WEBHOOK_SIGNING_SECRET", def: "required", help: "Svix signing secret(s) of the Clerk webhook endpoint (whsec_...), separated by spaces, commas or newlines to rotate without downtime. Clerk Dashboard -> Webhooks -> your endpoint -> Signing Secret."},
		{name: "PORT", value: "3000", help: "HTTP port to listen on (0 picks a free one)."},
		{name: "HOST", def: "all interfaces; 127.0.0.1 with INNGEST_DEV", help: "Interface to listen on. In dev mode /api/inngest runs unsigned requests, so it listens on loopback unless HOST says otherwise (HOST=0.0.0.0 in a dev container)."},
		{name: "METRICS_ADDR", def: "unset: /metrics on PORT", help: "Serve /metrics on its own listener instead, for example 127.0.0.1:9090, so that it need not share a public port."},
		{name: "SHUTDOWN_TIMEOUT", value: "15s", help: "How long a shutdown (SIGTERM, Ctrl-C) lets in-flight requests finish before cutting them; keep it under your orchestrator's grace period (Kubernetes: 30s). A second signal exits at once."},
		{name: "INNGEST_MAX_EVENT_BYTES", value: "512KiB", help: "Largest webhook body accepted (bytes, or with KiB/MiB): no larger than your Inngest event size limit (512KiB on the dev and self-hosted server, 256KiB on Inngest Cloud's free plan). Larger bodies get 413 and Svix stops retrying them."},
		{name: "WEBHOOK_FORWARD_TIMEOUT", value: "8s", help: "How long a webhook waits for Inngest to accept its event before answering 503 (Svix gives up at 15s)."},
		{name: "CLERK_FORWARD_EVENTS", def: "unset: the handled types only", help: "Clerk event types forwarded to Inngest besides the user, organization and organizationMembership events the functions handle, separated by commas or spaces (session.created,email.created), for functions of your own; * forwards every type. Other types are answered 200 and counted in clerksync_webhooks_ignored_total, not forwarded: email.created carries one-time codes, which would stay in Inngest's event history."},
	}
	s = append(s, databaseSettings...)
	s = append(s, inngestSettings...)
	s = append(s, logSettings...)
	s = append(s, clerkSettings...)
	for i := range s {
		switch {
		case s[i].def != "":
		case s[i].value != "":
			s[i].def = s[i].value
		default:
			s[i].def = "unset"
		}
	}
	return s
}

// settings reads the environment for every command: each method reads one concern's
// settings, keeps an error per malformed one, and err returns them all at once.
type settings struct {
	getenv func(string) string
	errs   []error
	// defaults maps each setting's name to its default (settingsHelp), on the first get.
	defaults map[string]string
}

// get returns the trimmed value of name, or its default (def) when it is unset or blank.
func (s *settings) get(name string) string {
	if v := s.value(name); v != "" {
		return v
	}
	return s.def(name)
}

// def returns the default of name from settingsHelp ("" for none). It panics when
// settingsHelp does not list name: every setting read with a default is one --help lists.
func (s *settings) def(name string) string {
	if s.defaults == nil {
		s.defaults = map[string]string{}
		for _, st := range settingsHelp() {
			s.defaults[st.name] = st.value
		}
	}
	def, ok := s.defaults[name]
	if !ok {
		panic("settings: " + name + " is not listed in settingsHelp")
	}
	return def
}

// value returns the trimmed value of name as set, "" when it is unset or blank: for a setting
// whose being set matters, not its default.
func (s *settings) value(name string) string {
	return strings.TrimSpace(s.getenv(name))
}

// fail records a malformed or missing setting.
func (s *settings) fail(err error) { s.errs = append(s.errs, err) }

// duration reads name as a positive duration; the error gives its default as an example.
func (s *settings) duration(name string) time.Duration {
	d, err := time.ParseDuration(s.get(name))
	if err != nil || d <= 0 {
		s.fail(fmt.Errorf("%s must be a positive duration such as %s", name, s.def(name)))
	}
	return d
}

// flag reads name as a yes/no setting: 1, true or yes; unset, 0, false or no.
func (s *settings) flag(name string) bool {
	switch v := strings.ToLower(s.value(name)); v {
	case "", "0", "false", "no":
		return false
	case "1", "true", "yes":
		return true
	default:
		s.fail(fmt.Errorf("%s=%q must be 1 or unset", name, v))
		return false
	}
}

// err returns one error listing every malformed or missing setting read so far, or nil.
func (s *settings) err() error {
	if len(s.errs) == 0 {
		return nil
	}
	return fmt.Errorf("configuration: %w", errors.Join(s.errs...))
}

// readConfig reads and checks every setting of the service through getenv. It returns one
// error listing every missing or malformed setting and what to do about it.
func readConfig(getenv func(string) string) (config, error) {
	s := &settings{getenv: getenv}
	var cfg config
	cfg.log = s.logging()
	cfg.http = s.http()
	cfg.webhook = s.webhook()
	cfg.inngest = s.inngest()
	cfg.db = s.database(cfg.inngest.devURL != "")
	cfg.clerk = s.clerk()
	if cfg.inngest.devURL != "" && cfg.http.host == "" {
		cfg.http.host = "127.0.0.1" // dev mode's /api/inngest is unauthenticated
	}
	if err := s.err(); err != nil {
		return config{}, err
	}
	return cfg, nil
}

// http reads PORT, HOST, METRICS_ADDR and SHUTDOWN_TIMEOUT.
func (s *settings) http() httpConfig {
	h := httpConfig{
		port:            s.get("PORT"),
		host:            s.get("HOST"),
		metricsAddr:     s.get("METRICS_ADDR"),
		shutdownTimeout: s.duration("SHUTDOWN_TIMEOUT"),
	}
	if n, err := strconv.Atoi(h.port); err != nil || n < 0 || n > 65535 {
		s.fail(fmt.Errorf("PORT=%q is not a port number (0-65535)", h.port))
	}
	if h.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(h.metricsAddr); err != nil {
			s.fail(fmt.Errorf("METRICS_ADDR=%q is not an address such as 127.0.0.1:9090", h.metricsAddr))
		}
	}
	return h
}

// localURL returns the base URL of the service on this machine, as the send and healthcheck
// commands reach it: HOST (loopback when it listens on every interface) and PORT. It returns
// an error when PORT is 0, which picks a free port only at start.
func (h httpConfig) localURL() (string, error) {
	if h.port == "0" {
		return "", errors.New("PORT=0 picks a free port when the service starts: set PORT to the port it listens on")
	}
	host := h.host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, h.port), nil
}

// webhook reads CLERK_WEBHOOK_SIGNING_SECRET, INNGEST_MAX_EVENT_BYTES,
// WEBHOOK_FORWARD_TIMEOUT and CLERK_FORWARD_EVENTS.
func (s *settings) webhook() webhookConfig {
	w := webhookConfig{
		secrets:        s.secrets(),
		forwardTimeout: s.duration("WEBHOOK_FORWARD_TIMEOUT"),
	}
	w.forwardTypes, w.forwardAll = s.forwardEvents()
	if n, err := parseBytes(s.get("INNGEST_MAX_EVENT_BYTES")); err != nil || n < 1024 || n > 64<<20 {
		s.fail(errors.New("INNGEST_MAX_EVENT_BYTES must be a size from 1KiB to 64MiB, such as 512KiB or 262144: the largest event your Inngest server accepts"))
	} else {
		w.maxEventBytes = n
	}
	return w
}

// forwardEvents reads CLERK_FORWARD_EVENTS: Clerk event types separated by commas or white
// space, or * (also all) for every type. It returns the types, and all when every type is
// forwarded; it records an error naming each value that is not a Clerk event type.
func (s *settings) forwardEvents() (types []string, all bool) {
	values := strings.FieldsFunc(s.get("CLERK_FORWARD_EVENTS"), func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	var bad []string
	for _, v := range values {
		switch {
		case v == "*" || strings.EqualFold(v, "all"):
			all = true
		case event.IsType(v):
			if !slices.Contains(types, v) {
				types = append(types, v)
			}
		default:
			bad = append(bad, strconv.Quote(v))
		}
	}
	if len(bad) > 0 {
		what := "is not a Clerk event type"
		if len(bad) > 1 {
			what = "are not Clerk event types"
		}
		s.fail(fmt.Errorf("CLERK_FORWARD_EVENTS: %s %s; list types as Clerk names them, such as "+
			"session.created,email.created (without clerk/), or set * to forward every type", strings.Join(bad, ", "), what))
	}
	return types, all
}

// secrets reads CLERK_WEBHOOK_SIGNING_SECRET: one or more secrets separated by spaces,
// commas, tabs or newlines. The service verifies with each; send signs with the last.
func (s *settings) secrets() []string {
	secrets := strings.FieldsFunc(s.get("CLERK_WEBHOOK_SIGNING_SECRET"), func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	if len(secrets) == 0 {
		s.fail(errors.New("CLERK_WEBHOOK_SIGNING_SECRET is not set: copy the Signing Secret (whsec_...) from Clerk Dashboard -> Webhooks -> your endpoint"))
	}
	return secrets
}

// parseBytes reads a size: a whole number of bytes, or one followed by KiB or MiB (KB and MB
// are read as the same powers of two). It returns an error for anything else.
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	upper := strings.ToUpper(strings.TrimSpace(s))
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"K", 1 << 10}, {"M", 1 << 20}, {"B", 1}} {
		if strings.HasSuffix(upper, u.suffix) {
			upper, mult = strings.TrimSpace(strings.TrimSuffix(upper, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(upper, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is not a size such as 512KiB", s)
	}
	return n * mult, nil
}

// readDatabaseConfig reads the settings of the commands that work on the database without
// serving (backfill, forget-clerk-instance): logging, the database (embedded only in dev mode
// or with MONGODB_URI=embedded, as for the service) and Clerk's Backend API. It returns one
// error listing every malformed setting.
func readDatabaseConfig(getenv func(string) string) (config, error) {
	s := &settings{getenv: getenv}
	var cfg config
	cfg.log = s.logging()
	cfg.db = s.database(s.devMode())
	cfg.clerk = s.clerk()
	if err := s.err(); err != nil {
		return config{}, err
	}
	return cfg, nil
}

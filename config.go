package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"clerksync/reconcile"
	"clerksync/store"
)

// defaultDevServerURL is where `inngest dev` listens unless told otherwise.
const defaultDevServerURL = "http://127.0.0.1:8288"

// config is every setting of the service, read once from the environment by loadConfig.
type config struct {
	port string
	// host is the interface to listen on: empty for all, 127.0.0.1 by default in dev mode.
	host string
	// metricsAddr is the address of the separate /metrics listener; empty serves /metrics on
	// the main port.
	metricsAddr string
	secrets     []string
	// maxEventBytes caps webhook bodies: no larger than what the Inngest event API accepts.
	maxEventBytes int64
	// mongoURI is MongoDB's connection string; empty when embedded is set.
	mongoURI string
	// embedded runs FerretDB in-process under dataDir instead of connecting to MongoDB.
	embedded       bool
	database       string
	dataDir        string
	writeMode      store.WriteMode
	forwardTimeout time.Duration
	// shutdownTimeout bounds the drain of in-flight requests at shutdown.
	shutdownTimeout time.Duration
	batchSize       int

	appID string
	// devURL is the Inngest dev server's URL in dev mode, empty in cloud mode.
	devURL             string
	eventKey           string
	signingKey         string
	signingKeyFallback string
	inngestEnv         string
	inngestBaseURL     string

	logLevel  slog.Level
	logFormat string

	// clerk is the Clerk Backend API access for reconciliation and backfill.
	clerk clerkConfig
}

// setting documents one environment variable; settingsHelp lists them all, for --help.
type setting struct {
	name, def, help string
}

func settingsHelp() []setting {
	return []setting{
		{"CLERK_WEBHOOK_SIGNING_SECRET", "(required)", "Svix signing secret(s) of the Clerk webhook endpoint (whsec_...), separated by spaces or commas to rotate without downtime. Clerk Dashboard -> Webhooks -> your endpoint -> Signing Secret."},
		{"PORT", "3000", "HTTP port to listen on (0 picks a free one)."},
		{"HOST", "all interfaces; 127.0.0.1 with INNGEST_DEV", "Interface to listen on. In dev mode /api/inngest runs unsigned requests, so it listens on loopback unless HOST says otherwise (HOST=0.0.0.0 in a dev container)."},
		{"METRICS_ADDR", "(the main port)", "Serve /metrics on its own listener instead, for example 127.0.0.1:9090, so that it need not share a public port."},
		{"MONGODB_URI", "(required unless INNGEST_DEV)", "MongoDB connection string (mongodb:// or mongodb+srv://), or `embedded` for a FerretDB (SQLite) run in-process under DATA_DIR: one replica only, its data lives in DATA_DIR. Unset: embedded in dev mode; refused otherwise."},
		{"MONGODB_DATABASE", "app", "Database to use when MONGODB_URI names none in its path."},
		{"DATA_DIR", "./data", "Where the embedded database keeps its files (MONGODB_URI=embedded, or unset in dev mode); put it on a persistent volume."},
		{"INNGEST_MAX_EVENT_BYTES", "512KiB", "Largest webhook body accepted (bytes, or with KiB/MiB): no larger than your Inngest event size limit (512KiB on the dev and self-hosted server, 256KiB on Inngest Cloud's free plan). Larger bodies get 413 and Svix stops retrying them."},
		{"STORE_WRITE_MODE", "auto", "auto: atomic conditional writes on MongoDB, writes by _id under a per-process lock on FerretDB (whose conditional updates are neither atomic nor indexed). conditional: MongoDB's mode on any server (the tests use it to run MongoDB's write path on FerretDB)."},
		{"INNGEST_DEV", "", "1 (dev server on " + defaultDevServerURL + ") or the dev server's URL: local development only. /api/inngest then runs any unsigned request, so it is refused with INNGEST_EVENT_KEY or INNGEST_SIGNING_KEY and listens on loopback unless HOST is set."},
		{"INNGEST_EVENT_KEY", "", "Inngest Cloud event key (required with INNGEST_SIGNING_KEY unless INNGEST_DEV is set)."},
		{"INNGEST_SIGNING_KEY", "", "Inngest Cloud signing key (signkey-...); requests to /api/inngest must be signed with it."},
		{"INNGEST_SIGNING_KEY_FALLBACK", "", "Previous signing key, accepted while rotating keys."},
		{"INNGEST_ENV", "", "Inngest branch environment name, for branch deploys."},
		{"INNGEST_BASE_URL", "", "Self-hosted Inngest server URL (API and event API); needs both keys, and /api/inngest requires the server's signature as with Inngest Cloud."},
		{"INNGEST_APP_ID", "clerk-user-sync", "The app's id in Inngest; function ids are <app id>-<function id>."},
		{"WEBHOOK_FORWARD_TIMEOUT", "8s", "How long a webhook waits for Inngest to accept its event before answering 503 (Svix gives up at 15s)."},
		{"SHUTDOWN_TIMEOUT", "15s", "How long a shutdown (SIGTERM, Ctrl-C) lets in-flight requests finish before cutting them; keep it under your orchestrator's grace period (Kubernetes: 30s). A second signal exits at once."},
		{"INNGEST_BATCH_SIZE", "0", "Above 1: up to this many create/update events per Inngest run (each still a guarded upsert); for bursts. 0: one run per event."},
		{"LOG_LEVEL", "info", "debug, info, warn or error."},
		{"LOG_FORMAT", "text", "text or json."},
		{"CLERK_SECRET_KEY", "", "Clerk secret key (sk_live_... or sk_test_...), Clerk Dashboard -> API keys. Set: the reconcile-users-with-clerk cron function runs, and `backfill` can read the API. The first of them to write records the key's Clerk instance (sync_metadata); a key for another instance is refused."},
		{"CLERK_API_URL", defaultClerkAPIURL, "Clerk Backend API base URL."},
		{"RECONCILE_SCHEDULE", reconcile.DefaultSchedule, "Cron schedule (UTC; or TZ=Area/City ...) of the reconciliation with Clerk."},
		{"RECONCILE_MAX_DELETE_SHARE", "0.1", "Largest share (0 to 1) of live users one reconciliation may delete; above it nothing is deleted and the run reports the refusal."},
		{"RECONCILE_ALLOW_MASS_DELETE", "", "1 lets a reconciliation delete more than RECONCILE_MAX_DELETE_SHARE, and a reconciliation or backfill write users although Clerk's list has fewer than half the database's live users (set it for one run, then unset it)."},
	}
}

// loadConfig reads and checks every setting through getenv. It returns one error listing every
// missing or malformed setting and what to do about it.
func loadConfig(getenv func(string) string) (config, error) {
	get := envGetter(getenv)
	cfg := config{
		port:               get("PORT", "3000"),
		host:               get("HOST", ""),
		metricsAddr:        get("METRICS_ADDR", ""),
		mongoURI:           get("MONGODB_URI", ""),
		dataDir:            get("DATA_DIR", "./data"),
		appID:              get("INNGEST_APP_ID", "clerk-user-sync"),
		eventKey:           get("INNGEST_EVENT_KEY", ""),
		signingKey:         get("INNGEST_SIGNING_KEY", ""),
		signingKeyFallback: get("INNGEST_SIGNING_KEY_FALLBACK", ""),
		inngestEnv:         get("INNGEST_ENV", ""),
		inngestBaseURL:     get("INNGEST_BASE_URL", ""),
		logFormat:          get("LOG_FORMAT", "text"),
	}
	var errs []error

	if n, err := strconv.Atoi(cfg.port); err != nil || n < 0 || n > 65535 {
		errs = append(errs, fmt.Errorf("PORT=%q is not a port number (0-65535)", cfg.port))
	}

	secret := get("CLERK_WEBHOOK_SIGNING_SECRET", "")
	cfg.secrets = strings.FieldsFunc(secret, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	if len(cfg.secrets) == 0 {
		errs = append(errs, errors.New("CLERK_WEBHOOK_SIGNING_SECRET is not set: copy the Signing Secret (whsec_...) from Clerk Dashboard -> Webhooks -> your endpoint"))
	}

	errs = append(errs, loadStoreAndClerkSettings(getenv, &cfg)...)

	d, err := time.ParseDuration(get("WEBHOOK_FORWARD_TIMEOUT", "8s"))
	if err != nil || d <= 0 {
		errs = append(errs, errors.New("WEBHOOK_FORWARD_TIMEOUT must be a positive duration such as 8s"))
	}
	cfg.forwardTimeout = d
	d, err = time.ParseDuration(get("SHUTDOWN_TIMEOUT", "15s"))
	if err != nil || d <= 0 {
		errs = append(errs, errors.New("SHUTDOWN_TIMEOUT must be a positive duration such as 15s"))
	}
	cfg.shutdownTimeout = d

	if n, err := strconv.Atoi(get("INNGEST_BATCH_SIZE", "0")); err != nil || n < 0 || n > 1000 {
		errs = append(errs, errors.New("INNGEST_BATCH_SIZE must be a whole number from 0 to 1000"))
	} else {
		cfg.batchSize = n
	}

	switch dev := get("INNGEST_DEV", ""); strings.ToLower(dev) {
	case "", "0", "false", "no": // see devModeSet
		var missing []string
		if cfg.eventKey == "" {
			missing = append(missing, "INNGEST_EVENT_KEY")
		}
		if cfg.signingKey == "" {
			missing = append(missing, "INNGEST_SIGNING_KEY")
		}
		if len(missing) > 0 {
			errs = append(errs, fmt.Errorf("Inngest is not configured (%s missing). Either set INNGEST_DEV=1 (or INNGEST_DEV=<dev server URL>) to use the Inngest dev server locally, "+
				"or set both INNGEST_EVENT_KEY and INNGEST_SIGNING_KEY (Inngest dashboard -> your environment -> Manage -> Event Keys / Signing Key) for Inngest Cloud", strings.Join(missing, " and ")))
		}
	case "1", "true", "yes":
		cfg.devURL = defaultDevServerURL
	default:
		u, err := url.Parse(dev)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("INNGEST_DEV=%q is neither 1 nor a URL such as %s", dev, defaultDevServerURL))
		}
		cfg.devURL = strings.TrimRight(dev, "/")
	}
	errs = append(errs, checkDevMode(&cfg)...)
	errs = append(errs, checkDatabaseChoice(&cfg, cfg.devURL != "")...)

	if n, err := parseBytes(get("INNGEST_MAX_EVENT_BYTES", "512KiB")); err != nil || n < 1024 || n > 64<<20 {
		errs = append(errs, errors.New("INNGEST_MAX_EVENT_BYTES must be a size from 1KiB to 64MiB, such as 512KiB or 262144: the largest event your Inngest server accepts"))
	} else {
		cfg.maxEventBytes = n
	}
	if cfg.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(cfg.metricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("METRICS_ADDR=%q is not an address such as 127.0.0.1:9090", cfg.metricsAddr))
		}
	}

	errs = append(errs, loadLogSettings(get, &cfg)...)
	if len(errs) > 0 {
		return config{}, fmt.Errorf("configuration: %w", errors.Join(errs...))
	}
	return cfg, nil
}

// defaultClerkAPIURL is Clerk's Backend API.
const defaultClerkAPIURL = "https://api.clerk.com/v1"

// clerkConfig is the Clerk Backend API access of reconciliation and backfill.
type clerkConfig struct {
	// secretKey is empty when reconciliation is off.
	secretKey       string
	apiURL          string
	schedule        string
	maxDeleteShare  float64
	allowMassDelete bool
}

// loadClerkConfig reads the CLERK_SECRET_KEY, CLERK_API_URL and RECONCILE_* settings through
// getenv. It returns one error per malformed setting, saying what to set.
func loadClerkConfig(getenv func(string) string) (clerkConfig, []error) {
	get := envGetter(getenv)
	c := clerkConfig{
		secretKey: get("CLERK_SECRET_KEY", ""),
		apiURL:    strings.TrimRight(get("CLERK_API_URL", defaultClerkAPIURL), "/"),
		schedule:  get("RECONCILE_SCHEDULE", reconcile.DefaultSchedule),
	}
	var errs []error
	if c.secretKey != "" && !strings.HasPrefix(c.secretKey, "sk_") {
		errs = append(errs, errors.New("CLERK_SECRET_KEY must be a Clerk secret key (sk_live_... or sk_test_...), from Clerk Dashboard -> API keys; not the publishable key (pk_...) or the webhook secret"))
	}
	if u, err := url.Parse(c.apiURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("CLERK_API_URL=%q is not a URL such as %s", c.apiURL, defaultClerkAPIURL))
	}
	fields := strings.Fields(c.schedule)
	if len(fields) > 0 && (strings.HasPrefix(fields[0], "TZ=") || strings.HasPrefix(fields[0], "CRON_TZ=")) {
		fields = fields[1:]
	}
	if len(fields) != 5 && len(fields) != 6 {
		errs = append(errs, fmt.Errorf("RECONCILE_SCHEDULE=%q is not a cron schedule such as %q (minute hour day month weekday)", c.schedule, reconcile.DefaultSchedule))
	}
	share, err := strconv.ParseFloat(get("RECONCILE_MAX_DELETE_SHARE", "0.1"), 64)
	if err != nil || share < 0 || share > 1 {
		errs = append(errs, errors.New("RECONCILE_MAX_DELETE_SHARE must be a number from 0 to 1, such as 0.1 (10% of the live users)"))
	}
	c.maxDeleteShare = share
	switch v := strings.ToLower(get("RECONCILE_ALLOW_MASS_DELETE", "")); v {
	case "", "0", "false", "no":
	case "1", "true", "yes":
		c.allowMassDelete = true
	default:
		errs = append(errs, fmt.Errorf("RECONCILE_ALLOW_MASS_DELETE=%q must be 1 or unset", v))
	}
	return c, errs
}

// devModeSet reports whether INNGEST_DEV asks for dev mode, as loadConfig reads it.
func devModeSet(get func(name, def string) string) bool {
	switch strings.ToLower(get("INNGEST_DEV", "")) {
	case "", "0", "false", "no":
		return false
	}
	return true
}

// checkDevMode enforces the dev-mode rules on cfg, whose devURL and keys are read: dev mode
// never runs with Inngest keys (it would run unsigned requests in an environment that has
// production keys), and it listens on loopback unless HOST is set. It returns an error per
// broken rule, saying what to change.
func checkDevMode(cfg *config) []error {
	if cfg.devURL == "" {
		return nil
	}
	var keys []string
	for _, k := range []struct{ name, value string }{
		{"INNGEST_EVENT_KEY", cfg.eventKey},
		{"INNGEST_SIGNING_KEY", cfg.signingKey},
		{"INNGEST_SIGNING_KEY_FALLBACK", cfg.signingKeyFallback},
	} {
		if k.value != "" {
			keys = append(keys, k.name)
		}
	}
	if cfg.host == "" {
		cfg.host = "127.0.0.1"
	}
	if len(keys) > 0 {
		return []error{fmt.Errorf("INNGEST_DEV is set together with %s: dev mode runs any unsigned request to /api/inngest, so it must never run where Inngest keys are set. "+
			"In production unset INNGEST_DEV (the keys make /api/inngest require Inngest's signature); for local development unset the keys", strings.Join(keys, " and "))}
	}
	return nil
}

// checkDatabaseChoice reads MONGODB_URI's choice into cfg: `embedded` (or unset in dev mode)
// runs the embedded database; unset outside dev mode is refused, since an embedded database
// inside a container loses its data at the next restart and differs per replica. It returns
// the error saying what to set.
func checkDatabaseChoice(cfg *config, devMode bool) []error {
	switch {
	case strings.EqualFold(cfg.mongoURI, "embedded"):
		cfg.mongoURI, cfg.embedded = "", true
	case cfg.mongoURI == "" && devMode:
		cfg.embedded = true
	case cfg.mongoURI == "":
		return []error{errors.New("MONGODB_URI is not set: set it to your MongoDB connection string (mongodb://... or mongodb+srv://...), " +
			"or to `embedded` to run the embedded FerretDB under DATA_DIR on purpose (one replica only; keep DATA_DIR on a persistent volume)")}
	}
	return nil
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

// databaseName returns the database to use: the one MONGODB_URI names in its path, else
// fallback (MONGODB_DATABASE). It returns an error when mongoURI is set but is not a
// mongodb:// or mongodb+srv:// connection string.
func databaseName(mongoURI, fallback string) (string, error) {
	if mongoURI == "" || strings.EqualFold(mongoURI, "embedded") {
		return fallback, nil
	}
	u, err := url.Parse(mongoURI)
	if err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") {
		return fallback, errors.New("MONGODB_URI must be a mongodb:// or mongodb+srv:// connection string, or `embedded` for the embedded database")
	}
	if name := strings.Trim(u.Path, "/"); name != "" {
		return name, nil
	}
	return fallback, nil
}

// envGetter returns a lookup of the settings through getenv: the trimmed value, or def when
// it is unset or blank.
func envGetter(getenv func(string) string) func(name, def string) string {
	return func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
}

// loadLogSettings reads LOG_LEVEL and LOG_FORMAT into cfg. It returns an error for each
// malformed one.
func loadLogSettings(get func(name, def string) string, cfg *config) []error {
	var errs []error
	if err := cfg.logLevel.UnmarshalText([]byte(get("LOG_LEVEL", "info"))); err != nil {
		errs = append(errs, errors.New("LOG_LEVEL must be debug, info, warn or error"))
	}
	cfg.logFormat = get("LOG_FORMAT", "text")
	if cfg.logFormat != "text" && cfg.logFormat != "json" {
		errs = append(errs, errors.New("LOG_FORMAT must be text or json"))
	}
	return errs
}

// loadStoreAndClerkSettings reads the database name (from MONGODB_URI's path, else
// MONGODB_DATABASE), STORE_WRITE_MODE and the Clerk Backend API settings into cfg, whose mongoURI is already
// set. It returns an error for each malformed setting.
func loadStoreAndClerkSettings(getenv func(string) string, cfg *config) []error {
	var errs []error
	db, err := databaseName(cfg.mongoURI, envGetter(getenv)("MONGODB_DATABASE", "app"))
	if err != nil {
		errs = append(errs, err)
	}
	cfg.database = db
	switch mode := strings.ToLower(envGetter(getenv)("STORE_WRITE_MODE", "auto")); mode {
	case "auto":
		cfg.writeMode = store.WritesAuto
	case "conditional":
		cfg.writeMode = store.WritesConditional
	default:
		errs = append(errs, fmt.Errorf("STORE_WRITE_MODE=%q must be auto or conditional (or unset)", mode))
	}
	var clerkErrs []error
	cfg.clerk, clerkErrs = loadClerkConfig(getenv)
	return append(errs, clerkErrs...)
}

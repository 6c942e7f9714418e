package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// defaultDevServerURL is where `inngest dev` listens unless told otherwise.
const defaultDevServerURL = "http://127.0.0.1:8288"

// config is every setting of the service, read once from the environment by loadConfig.
type config struct {
	port           string
	secrets        []string
	mongoURI       string
	database       string
	dataDir        string
	forwardTimeout time.Duration
	batchSize      int

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
}

// setting documents one environment variable; settingsHelp lists them all, for --help.
type setting struct {
	name, def, help string
}

func settingsHelp() []setting {
	return []setting{
		{"CLERK_WEBHOOK_SIGNING_SECRET", "(required)", "Svix signing secret(s) of the Clerk webhook endpoint (whsec_...), separated by spaces or commas to rotate without downtime. Clerk Dashboard -> Webhooks -> your endpoint -> Signing Secret."},
		{"PORT", "3000", "HTTP port to listen on (0 picks a free one)."},
		{"MONGODB_URI", "(embedded FerretDB)", "MongoDB connection string. Unset: an embedded FerretDB (SQLite) runs in-process under DATA_DIR."},
		{"MONGODB_DATABASE", "app", "Database to use when MONGODB_URI names none in its path."},
		{"DATA_DIR", "./data", "Where the embedded database keeps its files (only without MONGODB_URI)."},
		{"INNGEST_DEV", "", "1 (dev server on " + defaultDevServerURL + ") or the dev server's URL: local development, no keys needed."},
		{"INNGEST_EVENT_KEY", "", "Inngest Cloud event key (required with INNGEST_SIGNING_KEY unless INNGEST_DEV is set)."},
		{"INNGEST_SIGNING_KEY", "", "Inngest Cloud signing key (signkey-...); requests to /api/inngest must be signed with it."},
		{"INNGEST_SIGNING_KEY_FALLBACK", "", "Previous signing key, accepted while rotating keys."},
		{"INNGEST_ENV", "", "Inngest branch environment name, for branch deploys."},
		{"INNGEST_BASE_URL", "", "Self-hosted Inngest server URL (API and event API)."},
		{"INNGEST_APP_ID", "clerk-user-sync", "The app's id in Inngest; function ids are <app id>-<function id>."},
		{"WEBHOOK_FORWARD_TIMEOUT", "8s", "How long a webhook waits for Inngest to accept its event before answering 503 (Svix gives up at 15s)."},
		{"INNGEST_BATCH_SIZE", "0", "Above 1: up to this many create/update events per Inngest run (each still a guarded upsert); for bursts. 0: one run per event."},
		{"LOG_LEVEL", "info", "debug, info, warn or error."},
		{"LOG_FORMAT", "text", "text or json."},
	}
}

// loadConfig reads and checks every setting through getenv. It returns one error listing every
// missing or malformed setting and what to do about it.
func loadConfig(getenv func(string) string) (config, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	cfg := config{
		port:               get("PORT", "3000"),
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

	cfg.database = get("MONGODB_DATABASE", "app")
	if cfg.mongoURI != "" {
		u, err := url.Parse(cfg.mongoURI)
		if err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") {
			errs = append(errs, errors.New("MONGODB_URI must be a mongodb:// or mongodb+srv:// connection string (unset it to use the embedded database)"))
		} else if name := strings.Trim(u.Path, "/"); name != "" {
			cfg.database = name
		}
	}

	d, err := time.ParseDuration(get("WEBHOOK_FORWARD_TIMEOUT", "8s"))
	if err != nil || d <= 0 {
		errs = append(errs, errors.New("WEBHOOK_FORWARD_TIMEOUT must be a positive duration such as 8s"))
	}
	cfg.forwardTimeout = d

	if n, err := strconv.Atoi(get("INNGEST_BATCH_SIZE", "0")); err != nil || n < 0 || n > 1000 {
		errs = append(errs, errors.New("INNGEST_BATCH_SIZE must be a whole number from 0 to 1000"))
	} else {
		cfg.batchSize = n
	}

	switch dev := get("INNGEST_DEV", ""); strings.ToLower(dev) {
	case "", "0", "false", "no":
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

	if err := cfg.logLevel.UnmarshalText([]byte(get("LOG_LEVEL", "info"))); err != nil {
		errs = append(errs, errors.New("LOG_LEVEL must be debug, info, warn or error"))
	}
	if cfg.logFormat != "text" && cfg.logFormat != "json" {
		errs = append(errs, errors.New("LOG_FORMAT must be text or json"))
	}
	if len(errs) > 0 {
		return config{}, fmt.Errorf("configuration: %w", errors.Join(errs...))
	}
	return cfg, nil
}

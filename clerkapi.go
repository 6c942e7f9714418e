package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"

	"github.com/robfig/cron/v3"

	"clerksync/clerk"
	"clerksync/reconcile"
)

// defaultClerkAPIURL is Clerk's Backend API.
const defaultClerkAPIURL = "https://api.clerk.com/v1"

// clerkConfig is the Clerk Backend API access of reconciliation and backfill.
type clerkConfig struct {
	// secretKey is empty when reconciliation is off.
	secretKey string
	apiURL    string
	// schedule is the users' full pass's; incremental is the users' incremental runs' ("":
	// none, every run is a full pass); organizations is reconcile-organizations-with-clerk's.
	schedule       string
	incremental    string
	organizations  string
	maxDeleteShare float64
	// maxRunSteps is RECONCILE_MAX_RUN_STEPS.
	maxRunSteps int
	// rateLimit is the Clerk instance's Backend API rate limit, in requests per
	// clerk.RateWindow (10 s); usersShare and orgsShare are the shares of it each
	// reconciliation function (usersShare: backfill too) keeps within.
	rateLimit             int
	usersShare, orgsShare float64
	// syncToken is the bearer token of POST /api/sync/users/:id; empty turns the route off.
	syncToken string
}

// clerkSettings are the Clerk Backend API settings, for --help.
var clerkSettings = []setting{
	{name: "CLERK_SECRET_KEY", help: "Clerk secret key (sk_live_... or sk_test_...), Clerk Dashboard -> API keys. Set: the reconcile-users-with-clerk and reconcile-organizations-with-clerk cron functions run, and `backfill` can read the API. The first of them to write records the key's Clerk instance (sync_metadata); a key for another instance is refused."},
	{name: "CLERK_API_URL", value: defaultClerkAPIURL, help: "Clerk Backend API base URL."},
	{name: "RECONCILE_SCHEDULE", value: reconcile.DefaultSchedule, help: "Cron schedule (UTC; or TZ=Area/City ...) of the users' full reconciliation pass with Clerk: it reads every user, and is what finds the users deleted in Clerk."},
	{name: "RECONCILE_INCREMENTAL_SCHEDULE", value: reconcile.DefaultIncrementalSchedule, help: "Cron schedule of the users' incremental reconciliation runs, between the full passes: each reads only the users updated in Clerk since the last run or pass (order_by=-updated_at), and deletes none. `off`: none, every run is a full pass. The same schedule as RECONCILE_SCHEDULE: the same."},
	{name: "RECONCILE_ORGANIZATIONS_SCHEDULE", value: reconcile.DefaultOrganizationsSchedule, help: "Cron schedule of the reconciliation of organizations and memberships; by default half an hour after the users' full pass, so that the two do not start together (each keeps within its own share of Clerk's rate limit even when they do)."},
	{name: "RECONCILE_MAX_DELETE_SHARE", value: "0.1", help: "Largest share (0 to 1) of live users (organizations, memberships) one reconciliation may delete; above it none of them is deleted and the run reports the refusal. To let one run past it: `clerk-user-sync reconcile --allow-mass-delete`."},
	{name: "RECONCILE_MAX_RUN_STEPS", value: "800", help: "Most steps one run of reconcile-users-with-clerk, or of reconcile-organizations-with-clerk, takes (10 to 950; Inngest allows 1,000 per run); a pass that needs more goes on in a next run, which the run sends itself (clerk-sync/reconcile.users.continue, clerk-sync/reconcile.organizations.continue). Lower it only if your Inngest plan allows fewer steps per run."},
	{name: "CLERK_RATE_LIMIT", def: "1000 with an sk_live_ key, 100 with sk_test_", help: "The Clerk instance's Backend API rate limit, in requests per 10 s: 1000 on a production instance, 100 on a development one, shared by everything that uses the instance's secret key (your application too). The reconciliation functions and backfill each keep within a share of it (RECONCILE_*_RATE_SHARE); a 429 from Clerk is still waited out."},
	{name: "RECONCILE_USERS_RATE_SHARE", value: "0.3", help: "Share (above 0, up to 1) of CLERK_RATE_LIMIT that reconcile-users-with-clerk, and `backfill`, keep their Clerk requests within: at most share x limit requests per 10 s per run (0.3 of 1000: 300), waiting when over it. With several replicas, a run whose steps change replicas may send up to twice that in the 10 s around the change."},
	{name: "RECONCILE_ORGANIZATIONS_RATE_SHARE", value: "0.2", help: "Share (above 0, up to 1) of CLERK_RATE_LIMIT that reconcile-organizations-with-clerk keeps its Clerk requests within, as RECONCILE_USERS_RATE_SHARE. The two defaults leave half the limit to your application when both run at once."},
	{name: "SYNC_API_TOKEN", help: "Bearer token of POST /api/sync/users/{id}, which syncs one user from Clerk now (for an application that finds a signed-in user missing); at least 32 characters; needs CLERK_SECRET_KEY. Unset: the route is off."},
}

// clerk reads CLERK_SECRET_KEY, CLERK_API_URL and the RECONCILE_* settings. It refuses
// RECONCILE_ALLOW_MASS_DELETE, which earlier versions read: it lifted the safety checks of every
// run until the next deploy; the reconcile command and backfill's flag now do it for one run.
func (s *settings) clerk() clerkConfig {
	c := clerkConfig{
		secretKey:     s.get("CLERK_SECRET_KEY"),
		apiURL:        strings.TrimRight(s.get("CLERK_API_URL"), "/"),
		schedule:      s.get("RECONCILE_SCHEDULE"),
		incremental:   s.get("RECONCILE_INCREMENTAL_SCHEDULE"),
		organizations: s.get("RECONCILE_ORGANIZATIONS_SCHEDULE"),
	}
	if strings.EqualFold(c.incremental, "off") || c.incremental == c.schedule {
		c.incremental = ""
	}
	if v := s.value("RECONCILE_ALLOW_MASS_DELETE"); v != "" {
		s.fail(fmt.Errorf("RECONCILE_ALLOW_MASS_DELETE=%q is no longer read: it let every reconciliation past its safety checks until the next deploy. "+
			"Unset it, and let one run through with `clerk-user-sync reconcile --allow-mass-delete` (for a backfill: `clerk-user-sync backfill --allow-mass-delete`)", v))
	}
	if c.secretKey != "" && !strings.HasPrefix(c.secretKey, "sk_") {
		s.fail(errors.New("CLERK_SECRET_KEY must be a Clerk secret key (sk_live_... or sk_test_...), from Clerk Dashboard -> API keys; not the publishable key (pk_...) or the webhook secret"))
	}
	if u, err := url.Parse(c.apiURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		s.fail(fmt.Errorf("CLERK_API_URL=%q is not a URL such as %s", c.apiURL, defaultClerkAPIURL))
	}
	schedules := []struct{ name, value, example string }{
		{"RECONCILE_SCHEDULE", c.schedule, reconcile.DefaultSchedule},
		{"RECONCILE_INCREMENTAL_SCHEDULE", c.incremental, reconcile.DefaultIncrementalSchedule},
		{"RECONCILE_ORGANIZATIONS_SCHEDULE", c.organizations, reconcile.DefaultOrganizationsSchedule},
	}
	for _, sc := range schedules {
		if sc.value == "" && sc.name == "RECONCILE_INCREMENTAL_SCHEDULE" {
			continue
		}
		if err := validCron(sc.value); err != nil {
			s.fail(fmt.Errorf("%s=%q is not a schedule Inngest accepts (%v): five fields, minute hour day month weekday, optionally after TZ=Area/City, such as %q; "+
				"Inngest would refuse the whole app's sync for it", sc.name, sc.value, err, sc.example))
		}
	}
	share, err := strconv.ParseFloat(s.get("RECONCILE_MAX_DELETE_SHARE"), 64)
	if err != nil || share < 0 || share > 1 {
		s.fail(errors.New("RECONCILE_MAX_DELETE_SHARE must be a number from 0 to 1, such as 0.1 (10% of the live users)"))
	}
	c.maxDeleteShare = share
	steps, err := strconv.Atoi(s.get("RECONCILE_MAX_RUN_STEPS"))
	if err != nil || steps < 10 || steps > 950 {
		s.fail(errors.New("RECONCILE_MAX_RUN_STEPS must be a whole number from 10 to 950, such as 800 (Inngest allows 1,000 steps per run)"))
	}
	c.maxRunSteps = steps
	c.rateLimit = 1000 // a production instance's
	if strings.HasPrefix(c.secretKey, "sk_test_") {
		c.rateLimit = 100 // a development instance's
	}
	if v := s.value("CLERK_RATE_LIMIT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.fail(fmt.Errorf("CLERK_RATE_LIMIT=%q must be a whole number of requests per 10 s, at least 1: the Clerk instance's limit, 1000 on a production instance, 100 on a development one", v))
		}
		c.rateLimit = n
	}
	c.usersShare = s.rateShare("RECONCILE_USERS_RATE_SHARE")
	c.orgsShare = s.rateShare("RECONCILE_ORGANIZATIONS_RATE_SHARE")
	if c.syncToken = s.get("SYNC_API_TOKEN"); c.syncToken != "" {
		if len(c.syncToken) < 32 {
			s.fail(errors.New("SYNC_API_TOKEN must be at least 32 characters (for example: openssl rand -hex 32)"))
		}
		if c.secretKey == "" {
			s.fail(errors.New("SYNC_API_TOKEN needs CLERK_SECRET_KEY: the on-demand sync reads the user from Clerk's Backend API"))
		}
	}
	return c
}

// rateShare reads the share of CLERK_RATE_LIMIT the setting name gives, recording an error
// when it is not a number above 0 and up to 1.
func (s *settings) rateShare(name string) float64 {
	v := s.get(name)
	share, err := strconv.ParseFloat(v, 64)
	if err != nil || !(share > 0 && share <= 1) {
		s.fail(fmt.Errorf("%s=%q must be a number above 0 and up to 1, such as %s (that share of CLERK_RATE_LIMIT)", name, v, s.def(name)))
	}
	return share
}

// inngestCron parses schedules as the Inngest server does when an app syncs
// (inngest.CronTrigger.Validate, pkg/inngest/trigger.go): five fields, an optional TZ= or
// CRON_TZ= prefix, no descriptors such as @daily.
var inngestCron = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// validCron returns the parser's error when Inngest would refuse schedule, or nil.
func validCron(schedule string) error {
	_, err := inngestCron.Parse(schedule)
	return err
}

// newClerkAPI returns a Clerk Backend API client of c that keeps within share of c's rate
// limit (at least one request per window); share 0 sets no limit of its own (the on-demand
// sync: one request per call, for the application).
func newClerkAPI(c clerkConfig, share float64, logger *slog.Logger) *clerk.API {
	cfg := clerk.APIConfig{SecretKey: c.secretKey, APIURL: c.apiURL}
	if share > 0 {
		cfg.RateLimit = max(1, int(float64(c.rateLimit)*share))
	}
	return clerk.NewAPI(cfg, logger)
}

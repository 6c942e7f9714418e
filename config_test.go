package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMESettingsMatchHelp holds the README's settings table to --help (settingsHelp): the
// same variables, each once, with the same defaults.
func TestREADMESettingsMatchHelp(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(raw)
	start := strings.Index(section, "\n## Settings\n")
	if start < 0 {
		t.Fatal("README.md has no ## Settings section")
	}
	section = section[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Z0-9_]+)` \\| ([^|]*) \\|")
	readme := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		if _, dup := readme[m[1]]; dup {
			t.Errorf("README settings table lists %s twice", m[1])
		}
		readme[m[1]] = strings.TrimSpace(strings.ReplaceAll(m[2], "`", ""))
	}
	for _, s := range settingsHelp() {
		got, ok := readme[s.name]
		if !ok {
			t.Errorf("README settings table lacks %s (in --help)", s.name)
			continue
		}
		if got != s.def {
			t.Errorf("README default of %s = %q; --help says %q", s.name, got, s.def)
		}
		delete(readme, s.name)
	}
	for name := range readme {
		t.Errorf("README settings table lists %s, which --help does not know", name)
	}
}

func TestClerkSettings(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		want    clerkConfig
		wantErr string
	}{
		{"defaults", nil, clerkConfig{apiURL: "https://api.clerk.com/v1", schedule: "0 3 * * *", incremental: "15 * * * *", organizations: "30 3 * * *", maxDeleteShare: 0.1, rateLimit: 1000, usersShare: 0.3, orgsShare: 0.2, maxRunSteps: 800}, ""},
		{"all set", map[string]string{
			"CLERK_SECRET_KEY": "sk_live_x", "CLERK_API_URL": "http://localhost:9000/v1/", "RECONCILE_SCHEDULE": "*/15 * * * *",
			"RECONCILE_INCREMENTAL_SCHEDULE": "5 * * * *", "RECONCILE_ORGANIZATIONS_SCHEDULE": "7 4 * * *",
			"RECONCILE_MAX_DELETE_SHARE": "0.25", "CLERK_RATE_LIMIT": "500", "RECONCILE_USERS_RATE_SHARE": "1", "RECONCILE_ORGANIZATIONS_RATE_SHARE": "0.05", "RECONCILE_MAX_RUN_STEPS": "100",
		}, clerkConfig{secretKey: "sk_live_x", apiURL: "http://localhost:9000/v1", schedule: "*/15 * * * *", incremental: "5 * * * *", organizations: "7 4 * * *", maxDeleteShare: 0.25, rateLimit: 500, usersShare: 1, orgsShare: 0.05, maxRunSteps: 100}, ""},
		// A development instance's key: its limit is 100 per 10 s, unless set.
		{"development key", map[string]string{"CLERK_SECRET_KEY": "sk_test_x"},
			clerkConfig{secretKey: "sk_test_x", apiURL: "https://api.clerk.com/v1", schedule: "0 3 * * *", incremental: "15 * * * *", organizations: "30 3 * * *", maxDeleteShare: 0.1, rateLimit: 100, usersShare: 0.3, orgsShare: 0.2, maxRunSteps: 800}, ""},
		{"development key, limit set", map[string]string{"CLERK_SECRET_KEY": "sk_test_x", "CLERK_RATE_LIMIT": "1000"},
			clerkConfig{secretKey: "sk_test_x", apiURL: "https://api.clerk.com/v1", schedule: "0 3 * * *", incremental: "15 * * * *", organizations: "30 3 * * *", maxDeleteShare: 0.1, rateLimit: 1000, usersShare: 0.3, orgsShare: 0.2, maxRunSteps: 800}, ""},
		{"rate limit 0", map[string]string{"CLERK_RATE_LIMIT": "0"}, clerkConfig{}, "CLERK_RATE_LIMIT=\"0\" must be a whole number of requests per 10 s, at least 1"},
		{"rate limit per second", map[string]string{"CLERK_RATE_LIMIT": "100/s"}, clerkConfig{}, "CLERK_RATE_LIMIT"},
		{"users' share 0", map[string]string{"RECONCILE_USERS_RATE_SHARE": "0"}, clerkConfig{}, "RECONCILE_USERS_RATE_SHARE=\"0\" must be a number above 0 and up to 1, such as 0.3"},
		{"organizations' share above 1", map[string]string{"RECONCILE_ORGANIZATIONS_RATE_SHARE": "1.5"}, clerkConfig{}, "RECONCILE_ORGANIZATIONS_RATE_SHARE=\"1.5\" must be a number above 0 and up to 1, such as 0.2"},
		{"share in percent", map[string]string{"RECONCILE_USERS_RATE_SHARE": "30%"}, clerkConfig{}, "RECONCILE_USERS_RATE_SHARE"},
		{"run steps past Inngest's limit", map[string]string{"RECONCILE_MAX_RUN_STEPS": "1000"}, clerkConfig{}, "RECONCILE_MAX_RUN_STEPS"},
		{"run steps not a number", map[string]string{"RECONCILE_MAX_RUN_STEPS": "many"}, clerkConfig{}, "RECONCILE_MAX_RUN_STEPS"},
		{"incremental off", map[string]string{"RECONCILE_INCREMENTAL_SCHEDULE": "off"},
			clerkConfig{apiURL: "https://api.clerk.com/v1", schedule: "0 3 * * *", organizations: "30 3 * * *", maxDeleteShare: 0.1, rateLimit: 1000, usersShare: 0.3, orgsShare: 0.2, maxRunSteps: 800}, ""},
		{"incremental the full schedule", map[string]string{"RECONCILE_SCHEDULE": "0 2 * * *", "RECONCILE_INCREMENTAL_SCHEDULE": "0 2 * * *"},
			clerkConfig{apiURL: "https://api.clerk.com/v1", schedule: "0 2 * * *", organizations: "30 3 * * *", maxDeleteShare: 0.1, rateLimit: 1000, usersShare: 0.3, orgsShare: 0.2, maxRunSteps: 800}, ""},
		{"incremental not cron", map[string]string{"RECONCILE_INCREMENTAL_SCHEDULE": "hourly"}, clerkConfig{}, "RECONCILE_INCREMENTAL_SCHEDULE"},
		{"organizations not cron", map[string]string{"RECONCILE_ORGANIZATIONS_SCHEDULE": "0 0 3 * * *"}, clerkConfig{}, "RECONCILE_ORGANIZATIONS_SCHEDULE"},
		// A schedule the organizations' default meets (03:30 UTC in winter) is no error: each
		// function keeps within its own share of Clerk's rate limit.
		{"full pass at the organizations' minute", map[string]string{"RECONCILE_SCHEDULE": "TZ=Europe/Paris 30 4 * * *"},
			clerkConfig{apiURL: "https://api.clerk.com/v1", schedule: "TZ=Europe/Paris 30 4 * * *", incremental: "15 * * * *", organizations: "30 3 * * *", maxDeleteShare: 0.1, rateLimit: 1000, usersShare: 0.3, orgsShare: 0.2, maxRunSteps: 800}, ""},
		{"webhook secret as key", map[string]string{"CLERK_SECRET_KEY": "whsec_abc"}, clerkConfig{}, "CLERK_SECRET_KEY"},
		{"share above 1", map[string]string{"RECONCILE_MAX_DELETE_SHARE": "10"}, clerkConfig{}, "RECONCILE_MAX_DELETE_SHARE"},
		{"share not a number", map[string]string{"RECONCILE_MAX_DELETE_SHARE": "10%"}, clerkConfig{}, "RECONCILE_MAX_DELETE_SHARE"},
		{"schedule not cron", map[string]string{"RECONCILE_SCHEDULE": "daily"}, clerkConfig{}, "RECONCILE_SCHEDULE"},
		// It lifted the checks of every run until the next deploy: refused, whatever its value.
		{"mass-delete override in the environment", map[string]string{"RECONCILE_ALLOW_MASS_DELETE": "1"}, clerkConfig{}, "clerk-user-sync reconcile --allow-mass-delete"},
		{"mass-delete override set to 0", map[string]string{"RECONCILE_ALLOW_MASS_DELETE": "0"}, clerkConfig{}, "Unset it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &settings{getenv: env(tt.vars)}
			got, errs := s.clerk(), s.errs
			if tt.wantErr != "" {
				if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.wantErr) {
					t.Fatalf("settings.clerk errors = %v; want one about %s", errs, tt.wantErr)
				}
				return
			}
			if len(errs) > 0 || got != tt.want {
				t.Errorf("settings.clerk = %+v, %v; want %+v", got, errs, tt.want)
			}
		})
	}
}

func TestForwardEventsSettings(t *testing.T) {
	tests := []struct {
		name      string
		value     string
		wantTypes []string
		wantAll   bool
		wantErr   string
	}{
		{"unset", "", nil, false, ""},
		{"commas", "session.created,email.created", []string{"session.created", "email.created"}, false, ""},
		{"spaces, newlines and repeats", " session.created  email.created\nsession.created, ", []string{"session.created", "email.created"}, false, ""},
		{"a handled type", "user.created", []string{"user.created"}, false, ""},
		{"star", "*", nil, true, ""},
		{"all", "ALL", nil, true, ""},
		{"star with types", "*,session.created", []string{"session.created"}, true, ""},
		{"not a type", "session", nil, false, `"session" is not a Clerk event type`},
		{"Inngest name", "clerk/session.created", nil, false, "without clerk/"},
		{"two bad among good", "email.created,user.*,sms created", nil, false, `"user.*", "sms", "created" are not Clerk event types`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &settings{getenv: env(map[string]string{"CLERK_FORWARD_EVENTS": tt.value})}
			types, all := s.forwardEvents()
			if tt.wantErr != "" {
				if len(s.errs) != 1 || !strings.Contains(s.errs[0].Error(), tt.wantErr) || !strings.Contains(s.errs[0].Error(), "CLERK_FORWARD_EVENTS") {
					t.Fatalf("CLERK_FORWARD_EVENTS=%q: errors %v; want one naming the setting and containing %q", tt.value, s.errs, tt.wantErr)
				}
				return
			}
			if len(s.errs) > 0 || !slices.Equal(types, tt.wantTypes) || all != tt.wantAll {
				t.Errorf("CLERK_FORWARD_EVENTS=%q: types %q, all %v, errors %v; want %q, %v, none", tt.value, types, all, s.errs, tt.wantTypes, tt.wantAll)
			}
		})
	}
}

// TestSyncEventsSetting: SYNC_EVENTS is off unless set to 1 (true, yes), and a value that is
// neither yes nor no is refused with its name.
func TestSyncEventsSetting(t *testing.T) {
	for _, tt := range []struct {
		value   string
		want    bool
		wantErr bool
	}{{"", false, false}, {"0", false, false}, {"1", true, false}, {"yes", true, false}, {"on", false, true}} {
		s := &settings{getenv: env(map[string]string{"INNGEST_DEV": "1", "SYNC_EVENTS": tt.value})}
		c := s.inngest()
		gotErr := s.err() != nil
		if c.events != tt.want || gotErr != tt.wantErr || (gotErr && !strings.Contains(s.err().Error(), "SYNC_EVENTS")) {
			t.Errorf("SYNC_EVENTS=%q: events %v, error %v; want %v, error %v", tt.value, c.events, s.err(), tt.want, tt.wantErr)
		}
	}
}

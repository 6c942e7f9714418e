package reconcile_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/inngest/inngest/pkg/enums"
	"github.com/inngest/inngestgo"

	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
)

// The mass-delete override is for one run: only the run that a reconcile.RequestEvent with
// allow_mass_delete: true starts lifts the deletion cap and the overlap check. A cron run
// keeps them, whatever the Reconciler's Config says (RECONCILE_ALLOW_MASS_DELETE used to set
// it for every run until the next deploy).

// TestMassDeleteOnlyForTheRequestedRun: reconcile-users-with-clerk, with a Config that asks
// for mass deletion, refuses one on a cron run, and on a request without allow_mass_delete
// true; the run a request with it starts deletes; the next cron run refuses again.
func TestMassDeleteOnlyForTheRequestedRun(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	seed(t, st, fakeUsers(10, 1000)...)
	fake := clerkfake.New(t, testKey, fakeUsers(5, 1000)...) // user_06 to user_10 are gone
	r := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 0.1, AllowMassDelete: true})
	live := func() []string {
		t.Helper()
		ids, err := st.LiveUserIDs(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	all := []string{"user_01", "user_02", "user_03", "user_04", "user_05", "user_06", "user_07", "user_08", "user_09", "user_10"}
	refused := reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 5, Skipped: 5, Refused: 5}}
	steps := []struct {
		name     string
		evt      map[string]any
		want     reconcile.Summary
		wantLive []string
	}{
		{"cron run", cronEvent(), refused, all},
		{"request without allow_mass_delete", requestEvent(map[string]any{}), refused, all},
		{"request with allow_mass_delete false", requestEvent(map[string]any{"allow_mass_delete": false}), refused, all},
		{`request with allow_mass_delete "true" (not a boolean)`, requestEvent(map[string]any{"allow_mass_delete": "true"}), refused, all},
		{"another event with allow_mass_delete true", map[string]any{"name": "inngest/function.invoked", "data": map[string]any{"allow_mass_delete": true}}, refused, all},
		{"request with allow_mass_delete true", requestEvent(map[string]any{"allow_mass_delete": true}),
			reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 5, Skipped: 5, Deleted: 5}}, all[:5]},
	}
	for _, s := range steps {
		if _, got := driveRunOn(t, r, s.evt, 30); got != s.want {
			t.Errorf("%s = %+v; want %+v", s.name, got, s.want)
		}
		if got := live(); !slices.Equal(got, s.wantLive) {
			t.Fatalf("live users after the %s = %q; want %q", s.name, got, s.wantLive)
		}
	}

	// Two of the five left leave Clerk: the next cron run is capped again.
	for _, id := range all[3:5] {
		fake.Remove(id)
	}
	if _, got := driveRun(t, r, 30); got != (reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 3, Skipped: 3, Refused: 2}}) {
		t.Errorf("cron run after the requested one = %+v; want the 2 deletions refused", got)
	}
	if got := live(); !slices.Equal(got, all[:5]) {
		t.Errorf("live users after the cron run = %q; want %q", got, all[:5])
	}
}

// TestOrganizationsOverrideOnlyForTheRequestedRun: reconcile-organizations-with-clerk, with a
// Config that asks for the override, refuses a list that shares too few organizations with
// the database on a cron run; the run a request with allow_mass_delete true starts goes
// through the overlap check and the deletion cap; the next cron run is capped again.
func TestOrganizationsOverrideOnlyForTheRequestedRun(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	stored := fakeOrgs(10, 1000)
	seedOrgs(t, st, stored, fakeMembers(stored, 1, 1000))
	inClerk := stored[:2] // org_03 to org_10 are gone: 2 of 10 shared, below half
	fake := newOrgFake(t, inClerk, fakeMembers(inClerk, 1, 1000))
	r := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 0.1, AllowMassDelete: true})
	var all []string
	for _, o := range stored {
		all = append(all, o.ID)
	}

	steps := []struct {
		name     string
		evt      map[string]any
		want     reconcile.OrganizationsSummary
		wantLive []string
	}{
		{"cron run", cronEvent(), reconcile.OrganizationsSummary{RefusedForeign: true}, all},
		{"request with allow_mass_delete true", requestEvent(map[string]any{"allow_mass_delete": true}),
			reconcile.OrganizationsSummary{Pages: 1,
				Organizations: reconcile.Counts{Seen: 2, Skipped: 2, Deleted: 8}, Memberships: reconcile.Counts{Seen: 2, Skipped: 2}},
			all[:2]},
	}
	for _, s := range steps {
		if _, got := driveOrgRunOn(t, r, s.evt, 40); got != s.want {
			t.Errorf("%s = %+v; want %+v", s.name, got, s.want)
		}
		if got := liveOrgIDs(t, st); !slices.Equal(got, s.wantLive) {
			t.Fatalf("live organizations after the %s = %q; want %q", s.name, got, s.wantLive)
		}
	}

	// One of the two left leaves Clerk: half of them, above the cap.
	fake.RemoveOrganization("org_02")
	want := reconcile.OrganizationsSummary{Pages: 1, Organizations: reconcile.Counts{Seen: 1, Skipped: 1, Refused: 1}, Memberships: reconcile.Counts{Seen: 1, Skipped: 1}}
	if _, got := driveOrgRun(t, r, 40); got != want {
		t.Errorf("cron run after the requested one = %+v; want %+v", got, want)
	}
	if got := liveOrgIDs(t, st); !slices.Equal(got, all[:2]) {
		t.Errorf("live organizations after the cron run = %q; want %q", got, all[:2])
	}
}

// TestRequestTrigger: both functions are told to Inngest with their cron schedule and
// reconcile.RequestEvent as triggers, and keep one run at a time (singleton, skip), with no
// batching (Inngest ignores event ids for batched functions).
func TestRequestTrigger(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	r := newReconciler(t, st, clerkfake.New(t, testKey), reconcile.Config{})
	client, err := inngestgo.NewClient(inngestgo.ClientOpts{AppID: testAppID, Logger: slog.New(slog.DiscardHandler),
		Dev: inngestgo.BoolPtr(true), AllowInBandSync: inngestgo.BoolPtr(true)})
	if err != nil {
		t.Fatal(err)
	}
	const schedule = "TZ=Europe/Paris 30 4 * * *"
	if err := r.Register(client, schedule); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterOrganizations(client, schedule); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPut, "http://app.test/api/inngest", strings.NewReader(`{"url":"http://app.test/api/inngest"}`))
	req.Header.Set(inngestgo.HeaderKeySyncKind, inngestgo.SyncKindInBand)
	rec := httptest.NewRecorder()
	client.Serve().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("in-band sync = %d %s", rec.Code, rec.Body)
	}
	type trigger struct {
		Event string `json:"event,omitempty"`
		Cron  string `json:"cron,omitempty"`
	}
	var body struct {
		Functions []struct {
			ID        string    `json:"id"`
			Triggers  []trigger `json:"triggers"`
			Singleton *struct {
				Mode enums.SingletonMode `json:"mode"`
				Key  string              `json:"key"`
			} `json:"singleton"`
			BatchEvents json.RawMessage `json:"batchEvents"`
		} `json:"functions"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("in-band sync answer: %v\n%s", err, rec.Body)
	}
	seen := map[string]bool{}
	for _, f := range body.Functions {
		id := strings.TrimPrefix(f.ID, testAppID+"-")
		seen[id] = true
		// Each pass goes on in a next run, which its own event starts: the singleton leaves
		// that one event out (its key is false for it, which Inngest takes for "not a
		// singleton"), so that the run that sent it, still ending, cannot make it skipped.
		continueEvent := reconcile.ContinueEvent
		if id == reconcile.OrganizationsFunctionID {
			continueEvent = reconcile.OrganizationsContinueEvent
		}
		want := []trigger{{Cron: schedule}, {Event: reconcile.RequestEvent}, {Event: continueEvent}}
		wantKey := `event.name != "` + continueEvent + `"`
		if !slices.Equal(f.Triggers, want) {
			t.Errorf("%s triggers = %+v; want %+v", id, f.Triggers, want)
		}
		if f.Singleton == nil || f.Singleton.Mode != enums.SingletonModeSkip || f.Singleton.Key != wantKey {
			t.Errorf("%s singleton = %+v; want mode skip (one run at a time), key %q", id, f.Singleton, wantKey)
		}
		if len(f.BatchEvents) > 0 && string(f.BatchEvents) != "null" {
			t.Errorf("%s batchEvents = %s; want none", id, f.BatchEvents)
		}
	}
	if !seen[reconcile.FunctionID] || !seen[reconcile.OrganizationsFunctionID] {
		t.Errorf("functions synced = %v; want %s and %s", seen, reconcile.FunctionID, reconcile.OrganizationsFunctionID)
	}
}

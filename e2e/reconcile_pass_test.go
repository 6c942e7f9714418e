package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/store"
	"clerksync/store/embedded"
)

// reconcileKey is the Clerk secret key of the reconciliation tests' stand-in.
const reconcileKey = "sk_test_reconcile_pass"

// passRun is one run of reconcile-users-with-clerk as the dev server shows it: the event that
// started it, its status and its output (the summary).
type passRun struct {
	event  string // the event's name
	id     string // the run's id
	status string
	output map[string]any
}

// usersPassRuns returns the runs of reconcile-users-with-clerk that events received since
// since started, in the order the dev server received their events.
func (s *stack) usersPassRuns(t *testing.T, since time.Time) []passRun {
	t.Helper()
	var fns []struct {
		Slug string `json:"id"`          // <app>-<function id>
		ID   string `json:"internal_id"` // what the runs name
	}
	if err := s.devGet("/v1/apps/clerk-user-sync/functions", &fns); err != nil {
		t.Fatalf("GET the app's functions: %v", err)
	}
	fn := ""
	for _, f := range fns {
		if strings.HasSuffix(f.Slug, reconcile.FunctionID) {
			fn = f.ID
		}
	}
	var events []struct {
		InternalID string `json:"internal_id"`
		Name       string `json:"name"`
	}
	for cursor := ""; ; {
		q := url.Values{"limit": {"50"}, "received_after": {since.UTC().Format(time.RFC3339Nano)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page []struct {
			InternalID string `json:"internal_id"`
			Name       string `json:"name"`
		}
		if err := s.devGet("/v1/events?"+q.Encode(), &page); err != nil {
			t.Fatalf("GET the events: %v", err)
		}
		events = append(events, page...)
		if len(page) < 50 {
			break
		}
		cursor = page[len(page)-1].InternalID
	}
	slices.Reverse(events) // the API lists the newest first
	var runs []passRun
	for _, e := range events {
		if e.Name != reconcile.RequestEvent && e.Name != reconcile.ContinueEvent {
			continue
		}
		var started []struct {
			RunID      string `json:"run_id"`
			FunctionID string `json:"function_id"`
		}
		if err := s.devGet("/v1/events/"+e.InternalID+"/runs", &started); err != nil {
			t.Fatalf("GET the runs of event %s: %v", e.InternalID, err)
		}
		for _, r := range started {
			if r.FunctionID != fn {
				continue
			}
			var run struct {
				Status string          `json:"status"`
				Output json.RawMessage `json:"output"`
			}
			if err := s.devGet("/v1/runs/"+r.RunID, &run); err != nil {
				t.Fatalf("GET run %s: %v", r.RunID, err)
			}
			pr := passRun{event: e.Name, id: r.RunID, status: run.Status}
			_ = json.Unmarshal(run.Output, &pr.output)
			runs = append(runs, pr)
		}
	}
	return runs
}

// TestReconcilePassAcrossRuns: against the real dev server, a users' pass over 3,000 Clerk
// users, in runs of at most 10 steps (RECONCILE_MAX_RUN_STEPS), goes on run after run through
// reconcile.ContinueEvent, as a pass over a million users does past 800 steps: the function's
// singleton does not skip the runs the pass sends itself, the last run's summary covers the
// whole pass, and the database ends as one run would leave it. A second request sent while
// the pass is going starts no second pass: Inngest skips it (the singleton), or its run finds
// the pass's lease and does nothing.
func TestReconcilePassAcrossRuns(t *testing.T) {
	stacks(t)
	const n, preloaded, stale = 3000, 2000, 60
	fake := clerkfake.New(t, reconcileKey)
	fake.Generate(n)
	// The service runs its own embedded database, as by default: the pass's marks then get
	// the _id lookup index (only an embedded FerretDB gives one), and the test's reads do not
	// compete with the other tests' on the shared one. The test fills it before and reads it
	// after, each time in a FerretDB of its own on the same DATA_DIR.
	dataDir := t.TempDir()
	openData := func() (*store.Store, func()) {
		emb, err := embedded.Start(t.Context(), dataDir, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		st, err := emb.Open(t.Context(), "app", store.WritesAuto)
		if err != nil {
			emb.Stop()
			t.Fatal(err)
		}
		return st, func() { _ = st.Close(context.Background()); emb.Stop() }
	}
	// The database has the first 2,000 of Clerk's users, and 60 that Clerk no longer has.
	before, closeBefore := openData()
	seed := func(from, to int) {
		var users []store.User
		for i := from; i < to; i++ {
			u, err := clerkfake.GeneratedUser(i).Clerk().StoreUser(0)
			if err != nil {
				t.Fatal(err)
			}
			users = append(users, u)
		}
		if rest, err := before.InsertNewUsers(t.Context(), users); err != nil || len(rest) > 0 {
			t.Fatalf("InsertNewUsers = %q, %v; want every user inserted", rest, err)
		}
	}
	seed(0, preloaded)
	seed(n, n+stale)
	closeBefore() // the service opens DATA_DIR next: one process at a time
	s := startStack(t, stackOptions{env: map[string]string{
		"MONGODB_URI": "embedded", "DATA_DIR": dataDir, "MONGODB_DATABASE": "app",
		"CLERK_SECRET_KEY": reconcileKey, "CLERK_API_URL": fake.URL,
		"RECONCILE_MAX_RUN_STEPS": "10",
		"CLERK_RATE_LIMIT":        "100000",    // the stand-in has no limit
		"RECONCILE_SCHEDULE":      "0 0 1 1 *", // no cron run during the test
		"LOG_LEVEL":               "info",
	}})

	since := time.Now().Add(-time.Second)
	vars := map[string]string{"INNGEST_DEV": s.devURL, "CLERK_SECRET_KEY": reconcileKey}
	if _, stderr, err := command(t.Context(), t, vars, "reconcile"); err != nil {
		t.Fatalf("clerk-user-sync reconcile = %v; stderr:\n%s", err, stderr)
	}
	var runs []passRun
	requestedAgain := false
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		runs = s.usersPassRuns(t, since)
		if !requestedAgain && slices.ContainsFunc(runs, func(r passRun) bool { return r.event == reconcile.ContinueEvent }) {
			requestedAgain = true // the pass is in its second run at least: ask for another
			if _, stderr, err := command(context.Background(), t, vars, "reconcile"); err != nil {
				t.Errorf("clerk-user-sync reconcile again = %v; stderr:\n%s", err, stderr)
			}
		}
		if slices.ContainsFunc(runs, func(r passRun) bool { _, last := r.output["runs"]; return r.status == "Completed" && last }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pass's last run has not ended within 4 minutes; the runs: %+v\nthe service's log:\n%s", runs, s.serviceLog())
		}
	}
	var pass []passRun
	for _, r := range runs {
		switch {
		case r.status != "Completed":
			t.Errorf("run %s (%s) = %s, %v; want Completed", r.id, r.event, r.status, r.output)
		case r.output["skipped_busy"] == true:
			// the second request, finding the pass going
		default:
			pass = append(pass, r)
		}
	}
	if len(pass) < 3 {
		t.Fatalf("the pass took %d runs: %+v; want at least 3 of 10 steps", len(pass), pass)
	}
	for i, r := range pass {
		if wantEvent := reconcile.ContinueEvent; i > 0 && r.event != wantEvent {
			t.Errorf("run %d of the pass started by %s; want %s", i+1, r.event, wantEvent)
		}
		if last := i == len(pass)-1; !last && r.output["continued"] != true {
			t.Errorf("run %d of %d output %v; want \"continued\": true", i+1, len(pass), r.output)
		}
	}
	got := pass[len(pass)-1].output
	want := map[string]float64{"runs": float64(len(pass)), "seen": n, "inserted": n - preloaded, "skipped": preloaded, "deleted": stale, "refused": 0, "failed": 0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("the last run's summary %s = %v; want %v (summary %v)", k, got[k], v, got)
		}
	}
	s.mu.Lock()
	svc := s.svc
	s.mu.Unlock()
	if exited, err := svc.stop(20 * time.Second); !exited || err != nil {
		t.Fatalf("the service after SIGTERM: exited %v, %v", exited, err)
	}
	after, closeAfter := openData()
	defer closeAfter()
	live, err := after.LiveUserIDs(t.Context())
	if err != nil || len(live) != n {
		t.Errorf("live users after the pass = %d, %v; want %d", len(live), err, n)
	}
	for _, i := range []int{0, n - 1, n, n + stale - 1} {
		id := clerkfake.GeneratedID(i)
		u, err := after.Get(t.Context(), id)
		if wantGone := i >= n; err != nil || u.Deleted != wantGone {
			t.Errorf("%s after the pass = %+v, %v; want deleted %v", id, u, err, wantGone)
		}
	}
	t.Logf("counted: a pass of %d runs (%s) over %d Clerk users; summary %v", len(pass), runIDs(pass), n, got)
}

// serviceLog returns the end of the service's log, for failure messages.
func (s *stack) serviceLog() string {
	s.mu.Lock()
	svc := s.svc
	s.mu.Unlock()
	b := svc.stderr.String()
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return b
}

// runIDs lists the runs' ids.
func runIDs(runs []passRun) string {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.id
	}
	return strings.Join(ids, ", ")
}

package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inngest/inngestgo"

	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/store"
)

// sentEvents records the events a reconciler sends (reconcile.SetSender), in place of Inngest's
// event API.
type sentEvents struct {
	mu     sync.Mutex
	events []inngestgo.Event
}

// Send records evt, which must be an inngestgo.Event, and returns its id.
func (s *sentEvents) Send(_ context.Context, evt any) (string, error) {
	e, ok := evt.(inngestgo.Event)
	if !ok {
		return "", fmt.Errorf("sent %T; want an inngestgo.Event", evt)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	id := ""
	if e.ID != nil {
		id = *e.ID
	}
	return id, nil
}

// last returns the last event sent, as Inngest hands it to the run it starts, and how many
// were sent.
func (s *sentEvents) last(t *testing.T) (map[string]any, int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.events) == 0 {
		t.Fatal("no event sent")
	}
	e := s.events[len(s.events)-1]
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var evt map[string]any
	if err := json.Unmarshal(b, &evt); err != nil {
		t.Fatal(err)
	}
	evt["ts"] = 1700000000000
	return evt, len(s.events)
}

// passRuns is what drivePassRuns saw of a pass driven through its runs; S is its function's
// output (reconcile.Summary, reconcile.OrganizationsSummary).
type passRuns[S any] struct {
	// steps are the steps each run made (StepRun calls), in order.
	steps [][]inngestCall
	// events are the data of the continuations sent, as JSON.
	events []string
	// sum is the last run's output.
	sum S
}

// drivePass runs reconcile-users-with-clerk of r as Inngest would from evt, then each run that
// the ContinueEvent of the one before starts (drivePassRuns).
func drivePass(t *testing.T, r *reconcile.Reconciler, evt map[string]any, maxRuns int) passRuns[reconcile.Summary] {
	t.Helper()
	return drivePassRuns(t, r, evt, maxRuns, driveRunOn, func(s reconcile.Summary) bool { return s.Continued }, reconcile.ContinueEvent, "%s-run-%d")
}

// drivePassRuns runs a pass's function of r as Inngest would from evt (driveRun: driveRunOn,
// driveOrgRunOn), then each run that the continuation event of the one before starts, until a
// run's output is not continued (at most maxRuns runs). It checks each continuation's name
// (event), its id (eventID formats it from the pass's id and the run's number) and its run
// number.
func drivePassRuns[S any](t *testing.T, r *reconcile.Reconciler, evt map[string]any, maxRuns int,
	driveRun func(*testing.T, *reconcile.Reconciler, map[string]any, int) ([]inngestCall, S),
	continued func(S) bool, event, eventID string) passRuns[S] {
	t.Helper()
	sent := &sentEvents{}
	reconcile.SetSender(r, sent)
	var got passRuns[S]
	for run := range maxRuns {
		calls, sum := driveRun(t, r, evt, 200)
		var steps []inngestCall
		for _, c := range calls {
			if c.Op == "StepRun" {
				steps = append(steps, c)
			}
		}
		got.steps = append(got.steps, steps)
		got.sum = sum
		if !continued(sum) {
			return got
		}
		next, n := sent.last(t)
		if n != run+1 {
			t.Fatalf("run %d sent %d events in all; want %d (one per run handed over)", run+1, n, run+1)
		}
		data, _ := json.Marshal(next["data"])
		got.events = append(got.events, string(data))
		var st struct {
			Pass string `json:"pass"`
			Run  int    `json:"run"`
		}
		if err := json.Unmarshal(data, &struct {
			Pass any `json:"pass"`
		}{&st}); err != nil {
			t.Fatalf("continuation data %s: %v", data, err)
		}
		if wantID := fmt.Sprintf(eventID, st.Pass, run+1); next["id"] != wantID || next["name"] != event || st.Run != run+1 {
			t.Fatalf("run %d sent %s id %v, pass run %d; want %s id %s, run %d", run+1, next["name"], next["id"], st.Run, event, wantID, run+1)
		}
		evt = next
	}
	t.Fatalf("the pass has not ended after %d runs", maxRuns)
	return got
}

// bigScenario is a pass over n users: Clerk has user_00001 to user_0n (updated at 2000); the
// database has all but the last gone of them, every hundredth older (at 1000, the others as
// Clerk has them: writing thousands would only slow the test down), and gone users Clerk no
// longer has.
func bigScenario(t *testing.T, n, gone int) (*store.Store, *clerkfake.Server) {
	t.Helper()
	inClerk := make([]clerkfake.User, n)
	for i := range inClerk {
		inClerk[i] = clerkfake.NewUser(fmt.Sprintf("user_%05d", i+1), "First", 2000)
	}
	st := openStore(t)
	stored := make([]clerkfake.User, 0, n)
	for i := range n - gone {
		if (i+1)%100 == 0 {
			stored = append(stored, clerkfake.NewUser(fmt.Sprintf("user_%05d", i+1), "Old", 1000))
		} else {
			stored = append(stored, inClerk[i])
		}
	}
	for i := range gone {
		stored = append(stored, clerkfake.NewUser(fmt.Sprintf("user_gone%03d", i), "Gone", 1000))
	}
	seed(t, st, stored...)
	return st, clerkfake.New(t, testKey, inClerk...)
}

// liveState returns the ids of the live users and of the tombstones of st, for comparing two
// databases' end states.
func liveState(t *testing.T, st *store.Store) (live int, tombs []string) {
	t.Helper()
	ids, err := st.LiveUserIDs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		id := fmt.Sprintf("user_gone%03d", i)
		if u, err := st.Get(t.Context(), id); err == nil && u.Deleted {
			tombs = append(tombs, id)
		}
	}
	return len(ids), tombs
}

// maxStepOutput is the most bytes any step of the users' pass may output, whatever the user
// count: counts, a cursor, an instance id.
const maxStepOutput = 256

// TestPassAcrossRuns: a pass over 3,000 users, 100 a page, whose runs may take 20 steps each,
// goes on run after run through ContinueEvent and ends where one run would: every step's
// output and every continuation stays small whatever the count, no run takes more than its
// steps, and the last run's summary covers the whole pass.
func TestPassAcrossRuns(t *testing.T) {
	t.Parallel()
	const n, gone, pageSize, maxSteps = 3000, 30, 100, 20
	cfg := reconcile.Config{PageSize: pageSize, MaxDeleteShare: 0.05}
	older := (n - gone) / 100
	want := reconcile.Summary{Pages: n/pageSize + 1, Counts: reconcile.Counts{Seen: n, Inserted: gone, Updated: older, Skipped: n - gone - older, Deleted: gone}}

	// One run, as many steps as it needs.
	oneSt, oneFake := bigScenario(t, n, gone)
	one := newReconciler(t, oneSt, oneFake, cfg)
	reconcile.SetScan(one, 250, 2)
	oneRun := drivePass(t, one, cronEvent(), 1)
	if oneRun.sum != want {
		t.Errorf("one run's summary = %+v; want %+v", oneRun.sum, want)
	}

	// Runs of 20 steps.
	st, fake := bigScenario(t, n, gone)
	r := newReconciler(t, st, fake, cfg)
	reconcile.SetScan(r, 250, 2)
	reconcile.SetMaxRunSteps(r, maxSteps)
	runs := drivePass(t, r, cronEvent(), 30)
	if len(runs.steps) < 5 {
		t.Errorf("the pass took %d runs; want several (it has about %d steps)", len(runs.steps), len(oneRun.steps[0]))
	}
	wantRuns := want
	wantRuns.Runs = len(runs.steps)
	if runs.sum != wantRuns {
		t.Errorf("last run's summary = %+v; want %+v", runs.sum, wantRuns)
	}
	for i, steps := range runs.steps {
		if len(steps) > maxSteps {
			t.Errorf("run %d took %d steps; want at most %d", i+1, len(steps), maxSteps)
		}
		for _, s := range steps {
			if len(s.Data) > maxStepOutput || strings.Count(string(s.Data), `"user_`) > 1 {
				t.Errorf("run %d: step %s output %d bytes: %s; want at most %d, and no list of ids", i+1, s.Step, len(s.Data), s.Data, maxStepOutput)
			}
		}
	}
	for i, e := range runs.events {
		if len(e) > 1024 {
			t.Errorf("continuation %d carries %d bytes: %s; want at most 1 KiB", i+1, len(e), e)
		}
	}
	oneLive, oneTombs := liveState(t, oneSt)
	live, tombs := liveState(t, st)
	if live != n || oneLive != n || len(tombs) != gone || strings.Join(tombs, ",") != strings.Join(oneTombs, ",") {
		t.Errorf("end state across runs: %d live, tombstones %q; in one run: %d live, tombstones %q; want %d live, the %d gone users tombstones",
			live, tombs, oneLive, oneTombs, n, gone)
	}
	for _, u := range []string{"user_00100", fmt.Sprintf("user_%05d", n)} {
		if got := get(t, st, u); got.UpdatedAt != 2000 {
			t.Errorf("%s updated_at = %d; want Clerk's 2000", u, got.UpdatedAt)
		}
	}
	for _, set := range []string{"listed", "candidates"} {
		if left, err := st.ReconcileMarksAfter(t.Context(), "users", "01JRUNRUNRUNRUNRUNRUNRUNRU", set, "", 10); err != nil || len(left) != 0 {
			t.Errorf("marks %s left after the pass: %q, %v; want none", set, left, err)
		}
	}

	// The pass has ended its lease: the next one runs.
	reconcile.SetMaxRunSteps(r, 800)
	if _, sum := driveRunOn(t, r, requestEvent(nil), 200); sum.SkippedBusy || sum.Seen != n {
		t.Errorf("next pass = %+v; want a whole pass (seen %d), not skipped", sum, n)
	}
}

// TestPassSafetyAcrossRuns: the overlap check and the deletion cap refuse as they did when one
// run held every id, when the pass they end spans runs.
func TestPassSafetyAcrossRuns(t *testing.T) {
	t.Parallel()
	const n, pageSize = 1500, 100
	users := func(prefix string, from, to int, updatedAt int64) []clerkfake.User {
		var us []clerkfake.User
		for i := from; i <= to; i++ {
			us = append(us, clerkfake.NewUser(fmt.Sprintf("%s_%05d", prefix, i), "First", updatedAt))
		}
		return us
	}
	tests := []struct {
		name    string
		inClerk []clerkfake.User
		want    reconcile.Summary
	}{
		{
			name:    "another instance's users: overlap refused",
			inClerk: users("other", 1, n, 2000),
			want:    reconcile.Summary{RefusedForeign: true},
		},
		{
			name:    "a third of the users gone: cap refused",
			inClerk: users("user", 1, 2*n/3, 1000),
			want:    reconcile.Summary{Pages: 2*n/3/pageSize + 1, Counts: reconcile.Counts{Seen: 2 * n / 3, Skipped: 2 * n / 3, Refused: n / 3}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			seed(t, st, users("user", 1, n, 1000)...)
			fake := clerkfake.New(t, testKey, tt.inClerk...)
			r := newReconciler(t, st, fake, reconcile.Config{PageSize: pageSize, MaxDeleteShare: 0.1})
			reconcile.SetScan(r, 200, 2)
			reconcile.SetMaxRunSteps(r, 6)
			got, err := r.Run(t.Context())
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
			if got.Runs < 3 {
				t.Errorf("Run took %d runs; want several", got.Runs)
			}
			got.Runs = 0
			if got != tt.want {
				t.Errorf("Run = %+v; want %+v", got, tt.want)
			}
			if live, err := st.LiveUserIDs(t.Context()); err != nil || len(live) != n || live[0] != "user_00001" {
				t.Errorf("live users after Run: %d, %v; want the %d stored, none deleted or added", len(live), err, n)
			}
			for _, req := range fake.Requests() {
				if strings.HasPrefix(req, "GET /v1/users/user_") {
					t.Errorf("Run asked Clerk %s; want no deletion confirmed", req)
				}
			}
			if tt.want.RefusedForeign {
				if inst, _ := st.ClerkInstance(t.Context()); inst != "" {
					t.Errorf("instance recorded = %q; want none after a refused overlap", inst)
				}
			}
		})
	}
}

// TestPassOneAtATime: while a pass waits for its next run, a new pass (a cron run, a request)
// does nothing; the waiting pass then goes on and ends, and the next pass runs.
func TestPassOneAtATime(t *testing.T) {
	t.Parallel()
	st, fake := bigScenario(t, 40, 2)
	r := newReconciler(t, st, fake, reconcile.Config{PageSize: 10, MaxDeleteShare: 0.5})
	reconcile.SetMaxRunSteps(r, 6)
	sent := &sentEvents{}
	reconcile.SetSender(r, sent)

	_, first := driveRun(t, r, 100)
	if !first.Continued {
		t.Fatalf("first run = %+v; want handed over", first)
	}
	next, _ := sent.last(t)

	calls, busy := driveRunOn(t, r, requestEvent(map[string]any{reconcile.AllowMassDeleteField: true}), 100)
	if !busy.SkippedBusy || busy.Pages != 0 || len(calls) != 2 || calls[0].Step != "start-pass" {
		t.Errorf("a request while a pass waits for its next run = %+v after %d calls; want skipped_busy after start-pass alone", busy, len(calls))
	}

	reconcile.SetMaxRunSteps(r, 800)
	_, rest := driveRunOn(t, r, next, 200)
	if rest.Continued || rest.SkippedBusy || rest.Runs != 2 || rest.Seen != 40 || rest.Deleted != 2 {
		t.Errorf("the waiting pass's next run = %+v; want the whole pass over 2 runs: 40 seen, 2 deleted", rest)
	}
	if _, again := driveRunOn(t, r, requestEvent(nil), 200); again.SkippedBusy || again.Seen != 40 {
		t.Errorf("a pass after it = %+v; want a whole pass", again)
	}
}

// TestPassInstanceCheckedEachRun: every run of a pass checks the key's Clerk instance again, so
// a key changed between two runs (to another instance's) stops the pass before it writes.
func TestPassInstanceCheckedEachRun(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	seed(t, st, fakeUsers(60, 1000)...)
	fake := clerkfake.New(t, testKey, fakeUsers(60, 2000)...)
	var once sync.Once
	fake.BeforeList(func(offset int) {
		if offset == 30 {
			once.Do(func() { fake.SetInstance("ins_another") })
		}
	})
	r := newReconciler(t, st, fake, reconcile.Config{PageSize: 10, MaxDeleteShare: 0.5})
	reconcile.SetMaxRunSteps(r, 8) // start, check, clear, list-0 ... list-30, hand-over
	got, err := r.Run(t.Context())
	if !errors.Is(err, reconcile.ErrWrongInstance) {
		t.Fatalf("Run = %+v, %v; want an error wrapping ErrWrongInstance from the second run's check", got, err)
	}
	if got.Pages != 0 {
		t.Errorf("Run wrote %d pages; want none", got.Pages)
	}
	if u := get(t, st, "user_01"); u.UpdatedAt != 1000 {
		t.Errorf("user_01 updated_at = %d; want 1000, unwritten", u.UpdatedAt)
	}
}

// losingStore is a store whose scan of the live users is lost (store.ErrScanLost) on the calls
// lose picks (counted from 1), as when the database restarts mid-scan or a later pass closes
// the scan's cursor; lose also runs what happens meanwhile.
type losingStore struct {
	*store.Store
	mu    sync.Mutex
	calls int
	lose  func(call int) bool
}

// ScanLiveUsers is the store's, but for the calls lose picks.
func (s *losingStore) ScanLiveUsers(ctx context.Context, scope, pass, token string, batch int) ([]string, string, error) {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.mu.Unlock()
	if s.lose(n) {
		return nil, "", fmt.Errorf("losingStore: call %d: %w", n, store.ErrScanLost)
	}
	return s.Store.ScanLiveUsers(ctx, scope, pass, token, batch)
}

// TestPassScanLost: a scan of the live users lost midway starts again, with the candidates
// and counts of the lost one dropped, and the pass ends as one whose scan was never lost; one
// lost every time fails the pass, nothing written or deleted.
func TestPassScanLost(t *testing.T) {
	t.Parallel()
	const n, gone, pageSize = 1000, 20, 100
	scenario := func(t *testing.T) (*store.Store, *clerkfake.Server) {
		inClerk := make([]clerkfake.User, n)
		for i := range inClerk {
			inClerk[i] = clerkfake.NewUser(fmt.Sprintf("user_%05d", i+1), "First", 2000)
		}
		st := openStore(t)
		var stored []clerkfake.User
		for i := range gone { // first, so that the scan's first step reads them
			stored = append(stored, clerkfake.NewUser(fmt.Sprintf("user_gone%03d", i), "Gone", 1000))
		}
		seed(t, st, append(stored, inClerk[:n-gone]...)...)
		return st, clerkfake.New(t, testKey, inClerk...)
	}
	newLosing := func(t *testing.T, st *store.Store, fake *clerkfake.Server, lose func(int) bool) *reconcile.Reconciler {
		cfg := reconcile.Config{PageSize: pageSize, MaxDeleteShare: 0.05, Now: func() time.Time { return time.UnixMilli(deletedAt) }}
		r := reconcile.New(&losingStore{Store: st, lose: lose}, newAPI(t, fake, clerk.APIConfig{}), testLogger(t), cfg)
		reconcile.SetScan(r, 100, 2)
		return r
	}

	t.Run("lost once", func(t *testing.T) {
		t.Parallel()
		st, fake := scenario(t)
		// The third call (the second step's first) is lost; meanwhile a webhook deletes one of
		// the candidates the first step marked, which the scan started again no longer finds.
		r := newLosing(t, st, fake, func(call int) bool {
			if call != 3 {
				return false
			}
			if _, err := st.DeleteUser(context.Background(), "user_gone000", deletedAt); err != nil {
				t.Error(err)
			}
			return true
		})
		runs := drivePass(t, r, cronEvent(), 1)
		want := reconcile.Summary{Pages: n/pageSize + 1, Counts: reconcile.Counts{Seen: n, Inserted: gone, Skipped: n - gone, Deleted: gone - 1}}
		if runs.sum != want {
			t.Errorf("summary = %+v; want %+v", runs.sum, want)
		}
		steps := map[string]string{}
		var ids []string
		for _, s := range runs.steps[0] {
			steps[s.Step] = compact(t, s.Data)
			ids = append(ids, s.Step)
		}
		if got, want := steps["scan-200"], `{"live":0,"found":0,"lost":true}`; got != want {
			t.Errorf("step scan-200 = %s; want %s (steps %q)", got, want, ids)
		}
		if _, ok := steps["rescan-1-0"]; !ok {
			t.Errorf("steps %q; want rescan-1-0 after the lost scan", ids)
		}
		if got, want := steps["cap-deletions"], fmt.Sprintf(`{"live":%d,"candidates":%d,"refused":0}`, n-1, gone-1); got != want {
			t.Errorf("cap-deletions = %s; want %s: the live users and candidates of the scan started again alone", got, want)
		}
		var asked []string
		for _, req := range fake.Requests() {
			if strings.HasPrefix(req, "GET /v1/users/user_") {
				asked = append(asked, req)
			}
		}
		if len(asked) != gone-1 || slices.Contains(asked, "GET /v1/users/user_gone000") {
			t.Errorf("the pass asked Clerk %q; want the %d candidates of the scan started again, not user_gone000 (a candidate of the lost scan only)", asked, gone-1)
		}
	})

	t.Run("lost every time", func(t *testing.T) {
		t.Parallel()
		st, fake := scenario(t)
		r := newLosing(t, st, fake, func(int) bool { return true })
		got, err := r.Run(t.Context())
		if !errors.Is(err, store.ErrScanLost) {
			t.Fatalf("Run = %+v, %v; want an error wrapping store.ErrScanLost", got, err)
		}
		if got.Pages != 0 || got.Deleted != 0 {
			t.Errorf("Run = %+v; want nothing written or deleted", got)
		}
		if u := get(t, st, "user_gone000"); u.Deleted {
			t.Errorf("user_gone000 deleted after a failed pass; want it live")
		}
	})
}

// TestPassOverlapAfterUpgrade: a pass that an earlier version handed over just before its
// overlap check (its state has no live count: that version counted in check-overlap) scans the
// live users before checking, so another instance's list is still refused.
func TestPassOverlapAfterUpgrade(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	seed(t, st, fakeUsers(50, 1000)...)
	var others []clerkfake.User
	for i := range 50 {
		others = append(others, clerkfake.NewUser(fmt.Sprintf("user_other%02d", i), "Other", 2000))
	}
	fake := clerkfake.New(t, testKey, others...)
	r := newReconciler(t, st, fake, reconcile.Config{PageSize: 10, MaxDeleteShare: 0.5})
	const pass = "01JOLDOLDOLDOLDOLDOLDOLDOL"
	if err := st.ClaimReconcilePass(t.Context(), "users", pass, true, time.UnixMilli(deletedAt), time.Hour); err != nil {
		t.Fatal(err)
	}
	evt := map[string]any{"name": reconcile.ContinueEvent, "id": pass + "-run-1", "ts": 1700000000000,
		"data": map[string]any{"pass": map[string]any{"pass": pass, "run": 1, "phase": "overlap", "listed": 50, "listed_and_stored": 0}}}
	calls, sum := driveRunOn(t, r, evt, 100)
	var ids []string
	for _, c := range calls {
		if c.Op == "StepRun" {
			ids = append(ids, c.Step)
		}
	}
	if !sum.RefusedForeign || sum.Pages != 0 || !slices.Contains(ids, "scan-0") {
		t.Errorf("run from an earlier version's state before check-overlap = %+v, steps %q; want scan-0, then refused_foreign, nothing written", sum, ids)
	}
	if u := get(t, st, "user_01"); u.UpdatedAt != 1000 {
		t.Errorf("user_01 updated_at = %d; want 1000, unwritten", u.UpdatedAt)
	}
}

package reconcile_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/store"
)

// incrementalScenario is a Clerk instance of n generated users, changed of them updated after
// the watermark wm (GenerateChanged), and a database that follows the instance (recorded) with
// wm recorded as its watermark. The database holds none of the generated users: every one an
// incremental run reads is inserted, so the inserts count what it read.
func incrementalScenario(t *testing.T, n, changed int, wm time.Time) (*store.Store, *clerkfake.Server, []string) {
	t.Helper()
	ctx := context.Background()
	fake := clerkfake.New(t, testKey)
	fake.Generate(n)
	ids := fake.GenerateChanged(changed, wm)
	st := openStore(t)
	if _, err := st.RecordClerkInstance(ctx, clerkfake.DefaultInstance, wm); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordReconcileWatermark(ctx, "users", wm, wm); err != nil {
		t.Fatal(err)
	}
	return st, fake, ids
}

// watermark reads the users' watermark, failing the test when it cannot.
func watermark(t *testing.T, st *store.Store) time.Time {
	t.Helper()
	wm, ok, err := st.ReconcileWatermark(context.Background(), "users")
	if err != nil || !ok {
		t.Fatalf("ReconcileWatermark = %v, %v, %v; want one recorded", wm, ok, err)
	}
	return wm
}

// TestIncrementalReadsOnlyWhatChanged: among 3,000 users in Clerk, an incremental run reads the
// pages by -updated_at down to the watermark less the slack and no further, writes exactly the
// users changed since (and the one within the slack), leaves a newer webhook write and a
// deleted user alone, deletes nothing, and moves the watermark to the newest change.
func TestIncrementalReadsOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	wm := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	st, fake, changed := incrementalScenario(t, 3000, 120, wm)
	// Within the slack: read again. Older than it: not read.
	fake.Put(clerkfake.NewUser("user_in_slack", "Slack", wm.Add(-reconcile.IncrementalSlack/2).UnixMilli()))
	fake.Put(clerkfake.NewUser("user_before_slack", "Old", wm.Add(-2*reconcile.IncrementalSlack).UnixMilli()))
	// A webhook wrote a newer version of one changed user; another was deleted since.
	newer := clerkfake.GeneratedUser(0)
	newer.FirstName, newer.UpdatedAt = "Webhook", wm.Add(time.Hour).UnixMilli()
	seed(t, st, newer)
	if changed[0] != newer.ID {
		t.Fatalf("GenerateChanged's first id = %s; want %s", changed[0], newer.ID)
	}
	deleted := changed[1]
	if _, err := st.DeleteUser(ctx, deleted, wm.Add(time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	// Live in the database, gone from Clerk: only a full pass deletes it.
	seed(t, st, clerkfake.NewUser("user_gone", "Gone", 1000))

	r := newReconciler(t, st, fake, reconcile.Config{PageSize: 50, MaxDeleteShare: 1})
	sum, err := r.RunIncremental(ctx)
	if err != nil {
		t.Fatalf("RunIncremental = %v", err)
	}
	// 120 changed + 1 within the slack: pages of 50, the third ends below the cutoff.
	want := reconcile.Summary{Pages: 3, Counts: reconcile.Counts{Seen: 121, Inserted: 119, Skipped: 2},
		Incremental: true, Since: wm.Add(-reconcile.IncrementalSlack).UnixMilli()}
	if sum != want {
		t.Errorf("RunIncremental = %+v; want %+v", sum, want)
	}
	if got := listRequests(fake); len(got) != 3 || !strings.Contains(got[0], "order_by=-updated_at") {
		t.Errorf("list requests = %q; want 3 pages by -updated_at (of 61)", got)
	}
	if n, err := st.Count(ctx); err != nil || n != 122 {
		// 119 inserted, the newer one, the tombstone (both among the changed), user_gone.
		t.Errorf("stored users = %d, %v; want 122", n, err)
	}
	if u := get(t, st, newer.ID); u.UpdatedAt != newer.UpdatedAt {
		t.Errorf("the user a webhook wrote later has updated_at %d; want %d (kept)", u.UpdatedAt, newer.UpdatedAt)
	}
	if u := get(t, st, deleted); !u.Deleted {
		t.Errorf("the deleted user %s = %+v; want it still deleted", deleted, u)
	}
	if u := get(t, st, "user_gone"); u.Deleted {
		t.Errorf("user_gone deleted by an incremental run; only a full pass deletes")
	}
	if _, err := st.Get(ctx, "user_in_slack"); err != nil {
		t.Errorf("the user updated within the slack before the watermark was not written: %v", err)
	}
	if _, err := st.Get(ctx, "user_before_slack"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(user_before_slack) = %v; want not found (older than the watermark less the slack)", err)
	}
	if got, want := watermark(t, st), wm.Add(120*time.Millisecond); !got.Equal(want) {
		t.Errorf("watermark = %v; want %v, the newest change read", got, want)
	}
}

// TestIncrementalFailureKeepsWatermark: a run that fails on its second page records no watermark,
// and the next run reads from the same one, so it writes what the failed one did not.
func TestIncrementalFailureKeepsWatermark(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	wm := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	st, fake, _ := incrementalScenario(t, 1000, 60, wm)
	// Longer than a step waits: the step fails at once.
	fake.RateLimitOn("GET /v1/users?limit=25&offset=25", "120")
	r := newReconciler(t, st, fake, reconcile.Config{PageSize: 25})
	if _, err := r.RunIncremental(ctx); err == nil {
		t.Fatal("RunIncremental = nil after a 429 of 120 s; want the error")
	}
	if got := watermark(t, st); !got.Equal(wm) {
		t.Errorf("watermark after a failed run = %v; want %v, unmoved", got, wm)
	}
	// An hour later, the failed run's lease has gone stale.
	later := time.UnixMilli(deletedAt).Add(time.Hour)
	r = reconcile.New(st, newAPI(t, fake, clerk.APIConfig{}), testLogger(t), reconcile.Config{PageSize: 25, Now: func() time.Time { return later }})
	sum, err := r.RunIncremental(ctx)
	if err != nil || sum.Seen != 60 || sum.Inserted != 35 || sum.Skipped != 25 {
		t.Errorf("next RunIncremental = %+v, %v; want the 60 changed read again, the 35 the failed run missed inserted", sum, err)
	}
	if got := watermark(t, st); !got.Equal(wm.Add(60 * time.Millisecond)) {
		t.Errorf("watermark = %v; want the newest change", got)
	}
}

// TestIncrementalWhilePassGoing: an incremental run that finds a full pass holding the lease
// reads nothing and says so.
func TestIncrementalWhilePassGoing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	wm := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	st, fake, _ := incrementalScenario(t, 100, 10, wm)
	r := newReconciler(t, st, fake, reconcile.Config{PageSize: 100})
	if err := st.ClaimReconcilePass(ctx, "users", "full-pass", true, time.UnixMilli(deletedAt), time.Hour); err != nil {
		t.Fatal(err)
	}
	sum, err := r.RunIncremental(ctx)
	if err != nil || !sum.SkippedBusy || sum.Pages != 0 {
		t.Errorf("RunIncremental while a pass goes = %+v, %v; want skipped_busy, nothing read", sum, err)
	}
	if got := listRequests(fake); len(got) != 0 {
		t.Errorf("list requests = %q; want none", got)
	}
}

// TestIncrementalBecomesFullPass: with no watermark recorded, or more changes than one run's
// steps read, the run is a full pass (which deletes what Clerk no longer has) and records the
// time it started as the watermark.
func TestIncrementalBecomesFullPass(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		watermark bool
		maxSteps  int
		want      string
	}{
		{"no watermark", false, 0, "no watermark"},
		{"too many changes", true, 4, "too many changes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wm := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
			fake := clerkfake.New(t, testKey, fakeUsers(30, wm.Add(time.Minute).UnixMilli())...)
			st := openStore(t)
			seed(t, st, fakeUsers(30, 1000)...)
			seed(t, st, clerkfake.NewUser("user_gone", "Gone", 1000))
			if tt.watermark {
				if _, err := st.RecordClerkInstance(ctx, clerkfake.DefaultInstance, wm); err != nil {
					t.Fatal(err)
				}
				if err := st.RecordReconcileWatermark(ctx, "users", wm, wm); err != nil {
					t.Fatal(err)
				}
			}
			r := newReconciler(t, st, fake, reconcile.Config{PageSize: 5, MaxDeleteShare: 0.5})
			if tt.maxSteps > 0 {
				reconcile.SetMaxRunSteps(r, tt.maxSteps)
			}
			sum, err := r.RunIncremental(ctx)
			if err != nil || sum.FullPass != tt.want || sum.Incremental || sum.Seen != 30 || sum.Deleted != 1 {
				t.Errorf("RunIncremental = %+v, %v; want a full pass (%s): 30 seen, user_gone deleted", sum, err, tt.want)
			}
			// The pass started at deletedAt (the reconciler's clock): before wm, which stays.
			want := time.UnixMilli(deletedAt)
			if tt.watermark {
				want = wm
			}
			if got := watermark(t, st); !got.Equal(want) {
				t.Errorf("watermark = %v; want %v", got, want)
			}
		})
	}
}

// TestIncrementalCronRun: through the SDK's serve handler, a cron run of the incremental
// schedule is incremental, one of the full schedule a full pass, and one at a minute both fire
// a full pass too.
func TestIncrementalCronRun(t *testing.T) {
	t.Parallel()
	wm := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	at := time.Date(2026, 6, 2, 4, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name, cron  string
		at          time.Time
		incremental bool
	}{
		{"incremental schedule", reconcile.DefaultSchedule, at.Add(15 * time.Minute), true},
		{"full schedule", "0 4 * * *", at, false},
		{"incremental schedule when the full one fires too", reconcile.DefaultSchedule, at, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, fake, _ := incrementalScenario(t, 20, 3, wm)
			r := newReconciler(t, st, fake, reconcile.Config{PageSize: 10, FullSchedule: "0 4 * * *", MaxDeleteShare: 1})
			evt := cronEvent()
			evt["data"] = map[string]any{"cron": tt.cron}
			evt["ts"] = tt.at.UnixMilli()
			calls, sum := driveRunOn(t, r, evt, 100)
			if sum.Incremental != tt.incremental {
				t.Errorf("run = %+v after %d calls; want incremental %v", sum, len(calls), tt.incremental)
			}
			if wantFirst := map[bool]string{true: "incremental-start", false: "start-pass"}[tt.incremental]; calls[0].Step != wantFirst {
				t.Errorf("first step = %s; want %s", calls[0].Step, wantFirst)
			}
		})
	}
}

// TestIncrementalRequest: a reconcile.RequestEvent with incremental: true (a JSON boolean)
// starts an incremental run of the users, even with no incremental schedule configured, and
// the organizations' function does nothing on it (no Clerk request); any other value of the
// field asks for a full pass, as a request without it does.
func TestIncrementalRequest(t *testing.T) {
	t.Parallel()
	wm := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name        string
		data        map[string]any
		incremental bool
	}{
		{"incremental true", map[string]any{"incremental": true}, true},
		{"incremental true with allow_mass_delete", map[string]any{"incremental": true, "allow_mass_delete": true}, true},
		{"incremental false", map[string]any{"incremental": false}, false},
		{`incremental "true" (not a boolean)`, map[string]any{"incremental": "true"}, false},
		{"no incremental field", map[string]any{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, fake, changed := incrementalScenario(t, 20, 3, wm)
			r := newReconciler(t, st, fake, reconcile.Config{PageSize: 10, MaxDeleteShare: 1})
			calls, sum := driveRunOn(t, r, requestEvent(tt.data), 100)
			if sum.Incremental != tt.incremental {
				t.Errorf("users' run = %+v after %d calls; want incremental %v", sum, len(calls), tt.incremental)
			}
			if wantFirst := map[bool]string{true: "incremental-start", false: "start-pass"}[tt.incremental]; calls[0].Step != wantFirst {
				t.Errorf("first step = %s; want %s", calls[0].Step, wantFirst)
			}
			if tt.incremental && sum.Seen >= 20 {
				t.Errorf("users' run saw %d users; want only the %d changed and those within the slack, not all 20", sum.Seen, len(changed))
			}

			before := fake.Stats().Requests
			_, org := driveOrgRunOn(t, r, requestEvent(tt.data), 40)
			if got := fake.Stats().Requests - before; org.SkippedIncremental != tt.incremental || (tt.incremental && got != 0) {
				t.Errorf("organizations' run = %+v with %d Clerk requests; want skipped_incremental %v (and no request when skipped)", org, got, tt.incremental)
			}
		})
	}
}

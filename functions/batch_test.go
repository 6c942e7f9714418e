package functions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inngest/inngestgo"
	inngesterrors "github.com/inngest/inngestgo/errors"

	"clerksync/clerk"
	clerkevent "clerksync/clerk/event"
	"clerksync/functions"
	"clerksync/store"
)

// testAppID is the app id the tests' functions run under, as the service's default.
const testAppID = "clerk-user-sync"

// batchInput builds the input of a batched run of clerk/user.created events (see batchOf).
func batchInput(users ...clerk.User) functions.Input {
	return batchOf(clerkevent.UserCreated, users...)
}

// batchOf builds the input of a batched run of events named name, one per user, each with the
// user's updated_at as its ts: Event is the first event, Events all of them, and the run has
// an id of its own, on its first attempt.
func batchOf(name string, users ...clerk.User) functions.Input {
	events := make([]batchItem, len(users))
	for i, u := range users {
		events[i] = batchItem{data: mustJSON(u), ts: u.UpdatedAt, key: u.ID}
	}
	return rawBatch(name, events...)
}

// batchItem is one event of rawBatch: its data as JSON, its ts, and what its id ends with.
type batchItem struct {
	data json.RawMessage
	ts   int64
	key  string
}

// rawBatch builds the input of a batched run of events named name, one per item, as batchOf.
func rawBatch(name string, items ...batchItem) functions.Input {
	var in functions.Input
	n := eventCounter.Add(1)
	for i, it := range items {
		id := clerkevent.ID(fmt.Sprintf("msg_batch%d_%d_%s", n, i, it.key))
		in.Events = append(in.Events, functions.Event{ID: &id, Name: name, Data: functions.Data{JSON: it.data}, Timestamp: it.ts})
	}
	in.Event = in.Events[0]
	in.InputCtx.RunID = fmt.Sprintf("01BATCHRUN%d", n)
	return in
}

// eventID returns the id of the i-th event of a batch.
func eventID(in functions.Input, i int) string { return *in.Events[i].ID }

// failuresSince returns the failures recorded in st, failing the test when they cannot be
// read, or when one was not recorded between since and now; their FailedAt is zeroed, to
// compare the rest exactly.
func failuresSince(t *testing.T, st *store.Store, since time.Time) []store.Failure {
	t.Helper()
	got, err := st.Failures(context.Background())
	if err != nil {
		t.Fatalf("Failures = %v", err)
	}
	since, now := since.Truncate(time.Millisecond), time.Now()
	for i, f := range got {
		if f.FailedAt.Before(since) || f.FailedAt.After(now) {
			t.Errorf("failure of %s recorded at %v; want between %v and %v", f.EventID, f.FailedAt, since, now)
		}
		got[i].FailedAt = time.Time{}
	}
	return got
}

func TestBatchKeepsTheGuarantees(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustSend(deleted("user_b_gone", t1), store.Deleted)
	h.mustSend(updated(clerkUser("user_b_newer", "Newer", "One", "newer@x.org", "", t3)), store.Inserted)

	in := batchInput(
		clerkUser("user_b_1", "Jane", "One", "jane@a.org", "", t1),
		clerkUser("user_b_2", "Jane", "Two", "jane@b.org", "", t1),  // same local part: another username
		clerkUser("user_b_1", "Jane", "One", "jane@a.org", "", t1),  // a duplicate in the batch
		clerkUser("user_b_1", "Janet", "One", "jane@a.org", "", t2), // and a newer update of it
		clerkUser("user_b_gone", "Zombie", "X", "z@x.org", "", t3),  // deleted before: stays deleted
		clerkUser("user_b_newer", "Older", "X", "o@x.org", "", t1),  // older than the stored one
		clerkUser("", "No", "Id", "", "", t1),                       // unusable: left out
	)
	res, err := h.fns.SyncUser(h.ctx, in)
	if err != nil {
		t.Fatalf("SyncUser(batch of 7) = %v; want the batch written", err)
	}
	if got, ok := res.(functions.BatchResult); !ok || len(got.Written) != 6 || len(got.Failed) != 1 || got.Failed[0].EventID != eventID(in, 6) {
		t.Fatalf("SyncUser(batch of 7) result = %#v; want 6 written and the event without an id failed", res)
	}
	if u := h.get("user_b_1"); u.FullName != "Janet One" || u.UpdatedAt != t2 {
		t.Errorf("user_b_1 = %s; want the newest of its three events (Janet One, t2)", show(u))
	}
	if a, b := h.get("user_b_1"), h.get("user_b_2"); a.Username == b.Username {
		t.Errorf("user_b_1 and user_b_2 share username %q", a.Username)
	}
	checkTombstone(t, h.get("user_b_gone"), t1)
	if u := h.get("user_b_newer"); u.FullName != "Newer One" {
		t.Errorf("user_b_newer = %s; want the newer stored data kept", show(u))
	}

	// A replay of the whole batch (Inngest retrying it) changes nothing.
	before := h.get("user_b_1")
	if _, err := h.fns.SyncUser(h.ctx, in); err != nil {
		t.Fatalf("replayed batch: %v", err)
	}
	if after := h.get("user_b_1"); show(after) != show(before) {
		t.Errorf("replayed batch changed user_b_1: %s -> %s", show(before), show(after))
	}
}

// countingUsers is the store, counting the calls of UpsertUserChange per user id: each call is
// a write (or a skip the store decides on after reading the user).
type countingUsers struct {
	*store.Store
	mu      sync.Mutex
	upserts map[string]int
}

func (c *countingUsers) UpsertUserChange(ctx context.Context, u store.User) (store.Change, error) {
	c.mu.Lock()
	if c.upserts == nil {
		c.upserts = map[string]int{}
	}
	c.upserts[u.ID]++
	c.mu.Unlock()
	return c.Store.UpsertUserChange(ctx, u)
}

func (c *countingUsers) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.upserts)
}

// TestBatchWritesADeliveryOnce: Inngest does not drop a repeated event id for a batched
// function, so a batch can hold one webhook delivery twice (same event id, same data). The
// delivery is written once: one upsert, one outcome, the copy listed as a duplicate; a replay
// of the step does the same.
func TestBatchWritesADeliveryOnce(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, h *harness) {
		users := &countingUsers{Store: h.st}
		m := &countingMetrics{}
		fns := functions.New(users, h.st, slog.New(slog.NewTextHandler(t.Output(), nil)), functions.Config{AppID: testAppID, Metrics: m})
		in := batchInput(
			clerkUser("user_bdup_1", "Twice", "Sent", "twice@x.org", "", t1),
			clerkUser("user_bdup_2", "Once", "Sent", "once@x.org", "", t1),
			clerkUser("user_bdup_1", "Twice", "Sent", "twice@x.org", "", t1),
		)
		in.Events[2].ID = in.Events[0].ID // the same delivery: Svix retried it
		wantResult := functions.BatchResult{
			Written:    []functions.Result{{UserID: "user_bdup_1", Outcome: store.Inserted}, {UserID: "user_bdup_2", Outcome: store.Inserted}},
			Duplicates: []string{eventID(in, 0)},
		}
		for _, run := range []struct {
			name        string
			wantUpserts map[string]int
			wantRuns    map[string]int
		}{
			{"first run", map[string]int{"user_bdup_1": 1, "user_bdup_2": 1}, map[string]int{"sync-user-from-clerk/inserted": 2}},
			{"step run again", map[string]int{"user_bdup_1": 2, "user_bdup_2": 2}, map[string]int{"sync-user-from-clerk/inserted": 2, "sync-user-from-clerk/skipped": 2}},
		} {
			res, err := fns.SyncUser(h.ctx, in)
			if err != nil {
				t.Fatalf("%s: SyncUser(batch) = %v", run.name, err)
			}
			if run.name == "first run" && !reflect.DeepEqual(res, wantResult) {
				t.Errorf("%s: SyncUser(batch) = %#v; want %#v", run.name, res, wantResult)
			}
			if got := users.snapshot(); !reflect.DeepEqual(got, run.wantUpserts) {
				t.Errorf("%s: UpsertUser calls = %v; want %v (one per delivery)", run.name, got, run.wantUpserts)
			}
			if got := m.snapshot(); !reflect.DeepEqual(got, run.wantRuns) {
				t.Errorf("%s: FunctionRun calls = %v; want %v", run.name, got, run.wantRuns)
			}
		}
		if u := h.get("user_bdup_1"); u.FullName != "Twice Sent" || u.UpdatedAt != t1 {
			t.Errorf("user_bdup_1 = %s; want it written", show(u))
		}
	})
}

// TestBatchRecordsUnusableEvents: an event of a batch that can never be stored is recorded in
// sync_failures at once, under its own event id and user id, and the rest of the batch is
// written; the run completes, and running the step again records nothing twice.
func TestBatchRecordsUnusableEvents(t *testing.T) {
	t.Parallel()
	fnID := testAppID + "-" + functions.UpdateUserID
	noID := "event data is not a usable Clerk user: data.id is missing"
	tests := []struct {
		name      string
		users     []clerk.User
		wantUsers []string // stored afterwards
		want      func(in functions.Input) []store.Failure
		wantRuns  map[string]int // metrics, after both runs of the step
	}{{
		name: "a good event first, then two unusable ones",
		users: []clerk.User{
			clerkUser("user_bu_good", "Good", "One", "good@x.org", "", t1),
			clerkUser("", "No", "Id", "", "", t1),
			clerkUser("user_bu_nots", "No", "Time", "", "", 0), // no updated_at, and the event no ts
		},
		wantUsers: []string{"user_bu_good"},
		wantRuns:  map[string]int{"update-user-from-clerk/inserted": 1, "update-user-from-clerk/skipped": 1, "update-user-from-clerk/invalid": 4},
		want: func(in functions.Input) []store.Failure {
			return []store.Failure{
				{RunID: in.InputCtx.RunID, FunctionID: fnID, EventID: eventID(in, 1), EventName: clerkevent.UserUpdated, Error: noID},
				{RunID: in.InputCtx.RunID, FunctionID: fnID, EventID: eventID(in, 2), EventName: clerkevent.UserUpdated, UserID: "user_bu_nots",
					Error: "event data is not a usable Clerk user: user user_bu_nots has no data.updated_at and the event no ts"},
			}
		},
	}, {
		name: "only unusable events",
		users: []clerk.User{
			clerkUser("", "A", "B", "", "", t1),
			clerkUser(" ", "C", "D", "", "", t1),
		},
		wantRuns: map[string]int{"update-user-from-clerk/invalid": 4},
		want: func(in functions.Input) []store.Failure {
			return []store.Failure{
				{RunID: in.InputCtx.RunID, FunctionID: fnID, EventID: eventID(in, 0), EventName: clerkevent.UserUpdated, Error: noID},
				{RunID: in.InputCtx.RunID, FunctionID: fnID, EventID: eventID(in, 1), EventName: clerkevent.UserUpdated, Error: noID},
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			m := &countingMetrics{}
			fns := functions.New(h.st, h.st, slog.New(slog.NewTextHandler(t.Output(), nil)), functions.Config{AppID: testAppID, Metrics: m})
			in := batchOf(clerkevent.UserUpdated, tc.users...)
			since := time.Now()
			for _, attempt := range []string{"first run", "step run again"} {
				res, err := fns.UpdateUser(h.ctx, in)
				if err != nil {
					t.Fatalf("%s: UpdateUser(batch) = %v; want the run to complete", attempt, err)
				}
				want := tc.want(in)
				if r, ok := res.(functions.BatchResult); !ok || len(r.Written) != len(tc.wantUsers) || len(r.Failed) != len(want) {
					t.Errorf("%s: UpdateUser(batch) result = %#v; want %d written, %d failed", attempt, res, len(tc.wantUsers), len(want))
				}
				if got := failuresSince(t, h.st, since); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: Failures =\n %+v\nwant\n %+v", attempt, got, want)
				}
			}
			for _, id := range tc.wantUsers {
				if u := h.get(id); u.UpdatedAt != t1 || u.Deleted {
					t.Errorf("Get(%s) = %s; want it written at t1", id, show(u))
				}
			}
			if got := m.snapshot(); !reflect.DeepEqual(got, tc.wantRuns) {
				t.Errorf("FunctionRun calls = %v; want %v", got, tc.wantRuns)
			}
		})
	}
}

// failingWrites returns functions whose user writes all fail (the users store is closed:
// the driver answers store.ErrDatabase) and whose failures are recorded in failures.
func failingWrites(t *testing.T, failures functions.FailureStore, m functions.Metrics) *functions.Functions {
	t.Helper()
	down := openStore(t)
	if err := down.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return functions.New(down, failures, slog.New(slog.NewTextHandler(t.Output(), nil)), functions.Config{AppID: testAppID, Metrics: m})
}

// TestBatchRecordsFailedWritesOnTheLastAttempt: when the writes of a batch fail, each attempt
// before the last fails with a retryable error and records nothing; the last one records each
// event under its own event id and user id (not the first event's), and the run completes.
func TestBatchRecordsFailedWritesOnTheLastAttempt(t *testing.T) {
	t.Parallel()
	failures := openStore(t)
	m := &countingMetrics{}
	fns := failingWrites(t, failures, m)
	in := batchInput(
		clerkUser("user_bf_1", "A", "One", "a@x.org", "", t1),
		clerkUser("user_bf_2", "B", "Two", "b@x.org", "", t1),
		clerkUser("user_bf_3", "C", "Three", "c@x.org", "", t1),
	)
	fnID := testAppID + "-" + functions.SyncUserID
	var wantRecorded []store.Failure
	for i, id := range []string{"user_bf_1", "user_bf_2", "user_bf_3"} {
		wantRecorded = append(wantRecorded, store.Failure{RunID: in.InputCtx.RunID, FunctionID: fnID, EventID: eventID(in, i), EventName: clerkevent.UserCreated, UserID: id})
	}
	steps := []struct {
		attempt int
		wantErr bool
		want    []store.Failure
	}{
		{0, true, []store.Failure{}},
		{functions.MaxRetries - 1, true, []store.Failure{}},
		{functions.MaxRetries, false, wantRecorded},
	}
	since := time.Now()
	for _, s := range steps {
		in.InputCtx.Attempt = s.attempt
		res, err := fns.SyncUser(t.Context(), in)
		if s.wantErr {
			if err == nil || inngesterrors.IsNoRetryError(err) || !errors.Is(err, store.ErrDatabase) {
				t.Errorf("attempt %d: SyncUser = %v; want a retryable error wrapping store.ErrDatabase", s.attempt, err)
			}
		} else if r, ok := res.(functions.BatchResult); err != nil || !ok || len(r.Failed) != 3 || len(r.Written) != 0 {
			t.Errorf("attempt %d: SyncUser = %#v, %v; want the run to complete with the 3 events failed", s.attempt, res, err)
		}
		got := failuresSince(t, failures, since)
		for i := range got {
			if !strings.Contains(got[i].Error, "store: database error") || !strings.Contains(got[i].Error, got[i].UserID) {
				t.Errorf("attempt %d: failure of %s has error %q; want its own write's database error", s.attempt, got[i].EventID, got[i].Error)
			}
			got[i].Error = ""
		}
		if !reflect.DeepEqual(got, s.want) {
			t.Errorf("attempt %d: Failures =\n %+v\nwant\n %+v", s.attempt, got, s.want)
		}
	}
	if got, want := m.snapshot(), map[string]int{"sync-user-from-clerk/error": 9}; !reflect.DeepEqual(got, want) {
		t.Errorf("FunctionRun calls = %v; want %v (3 failed writes on each of 3 attempts)", got, want)
	}
}

// TestBatchDatabaseDownOnTheLastAttempt: when the database is down for the last attempt of a
// batch, its failed events can be recorded by neither the batch nor Inngest's failure event
// (which carries the first event only). The run fails, with an error that lists every event;
// record-sync-failure, given that error once the database is back, records each event under
// its own event id and user id, once however often it runs.
func TestBatchDatabaseDownOnTheLastAttempt(t *testing.T) {
	t.Parallel()
	down := openStore(t)
	if err := down.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	fns := functions.New(down, down, slog.New(slog.NewTextHandler(t.Output(), nil)), functions.Config{AppID: testAppID})
	in := batchInput(
		clerkUser("user_bd_1", "A", "One", "a@x.org", "", t1),
		clerkUser("", "No", "Id", "", "", t1),
		clerkUser("user_bd_3", "C", "Three", "c@x.org", "", t1),
	)
	in.InputCtx.Attempt = functions.MaxRetries
	_, runErr := fns.SyncUser(t.Context(), in)
	if runErr == nil || inngesterrors.IsNoRetryError(runErr) || !errors.Is(runErr, store.ErrDatabase) {
		t.Fatalf("SyncUser on the last attempt, database down = %v; want the run to fail with an error wrapping store.ErrDatabase", runErr)
	}

	fnID := testAppID + "-" + functions.SyncUserID
	want := []store.Failure{
		{RunID: in.InputCtx.RunID, FunctionID: fnID, EventID: eventID(in, 0), EventName: clerkevent.UserCreated, UserID: "user_bd_1", Error: "database"},
		{RunID: in.InputCtx.RunID, FunctionID: fnID, EventID: eventID(in, 1), EventName: clerkevent.UserCreated, Error: "data.id is missing"},
		{RunID: in.InputCtx.RunID, FunctionID: fnID, EventID: eventID(in, 2), EventName: clerkevent.UserCreated, UserID: "user_bd_3", Error: "database"},
	}
	// How Inngest may report the step's error: as it is, or as the SDK's unhandled step error.
	reports := []struct{ name, message string }{
		{"as it is", runErr.Error()},
		{"wrapped by the SDK", "unhandled step error: " + runErr.Error()},
	}
	for _, r := range reports {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t) // the database, back
			rec := functions.NewFailureRecorder(st, slog.New(slog.NewTextHandler(t.Output(), nil)), functions.Config{})
			since := time.Now()
			report := functionFailedInput(t, in.InputCtx.RunID, fnID, r.message, in.Events[0])
			for _, run := range []string{"first report", "recorder retried"} {
				if _, err := rec.RecordFailure(t.Context(), report); err != nil {
					t.Fatalf("%s: RecordFailure = %v", run, err)
				}
				got := failuresSince(t, st, since)
				for i := range got {
					if i < len(want) && strings.Contains(got[i].Error, want[i].Error) {
						got[i].Error = want[i].Error // its own error, checked by its distinctive part
					}
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: Failures =\n %+v\nwant (errors containing)\n %+v", run, got, want)
				}
			}
		})
	}
}

// TestRegisterChecksTheAppID: the functions register only on a client of the app they name in
// the failures they record.
func TestRegisterChecksTheAppID(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	tests := []struct {
		appID   string
		wantErr bool
	}{
		{testAppID, false},
		{"another-app", true},
		{"", true},
	}
	for _, tc := range tests {
		client, err := inngestgo.NewClient(inngestgo.ClientOpts{AppID: testAppID, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("inngestgo.NewClient: %v", err)
		}
		fns := functions.New(st, st, slog.New(slog.DiscardHandler), functions.Config{AppID: tc.appID, BatchSize: 10})
		if err := fns.Register(client); (err != nil) != tc.wantErr {
			t.Errorf("Register(client of %s) with Config.AppID %q = %v; want error %t", testAppID, tc.appID, err, tc.wantErr)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"a longer error message", 10, "a longe..."},
		{"ééééé", 8, "éé..."}, // 10 bytes: cut at a rune boundary, not inside the third é
	}
	for _, tc := range tests {
		if got := functions.Truncate(tc.s, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q; want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

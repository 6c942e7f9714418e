package functions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
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

// countingMetrics records the FunctionRun calls, as function/outcome → count.
type countingMetrics struct {
	mu   sync.Mutex
	runs map[string]int
}

func (m *countingMetrics) FunctionRun(function, outcome string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runs == nil {
		m.runs = map[string]int{}
	}
	m.runs[function+"/"+outcome]++
}

func (m *countingMetrics) snapshot() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for k, v := range m.runs {
		out[k] = v
	}
	return out
}

// failedInput returns the input Inngest passes to record-sync-failure: an
// inngest/function.failed event as the dev server (v1.12.1) builds it.
func failedInput(t *testing.T, runID, functionID, eventID, userID string, ts int64) inngestgo.Input[functions.FunctionFailedData] {
	t.Helper()
	data := map[string]any{"first_name": "X"}
	if userID != "" {
		data["id"] = userID
	}
	evt := map[string]any{
		"name": functions.FunctionFailed, "id": runID, "ts": ts,
		"data": map[string]any{
			"function_id": functionID,
			"run_id":      runID,
			"error":       map[string]any{"name": "Error", "message": "event data is not a usable Clerk user: data.id is missing", "error": "invalid status code: 400"},
			"event":       map[string]any{"name": clerkevent.UserCreated, "id": eventID, "ts": float64(1.7e12), "user": map[string]any{}, "data": data},
			"events":      []any{},
		},
	}
	raw, _ := json.Marshal(map[string]any{"event": evt, "events": []any{evt}, "ctx": map[string]any{"run_id": "01RECORDERRUN", "attempt": 0}})
	var in inngestgo.Input[functions.FunctionFailedData]
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatalf("decoding an inngest/function.failed input: %v", err)
	}
	return in
}

// functionFailedInput returns the input of record-sync-failure for a run of fnID that failed
// with message, whose (first) event was first: an inngest/function.failed event as the dev
// server builds it.
func functionFailedInput(t *testing.T, runID, fnID, message string, first functions.Event) inngestgo.Input[functions.FunctionFailedData] {
	t.Helper()
	evt := map[string]any{
		"name": functions.FunctionFailed, "id": runID, "ts": time.Now().UnixMilli(),
		"data": map[string]any{
			"function_id": fnID,
			"run_id":      runID,
			"error":       map[string]any{"name": "Step failed", "message": message},
			"event":       map[string]any{"name": first.Name, "id": *first.ID, "ts": first.Timestamp, "user": map[string]any{}, "data": first.Data},
			"events":      []any{},
		},
	}
	raw, err := json.Marshal(map[string]any{"event": evt, "events": []any{evt}, "ctx": map[string]any{"run_id": "01RECORDERRUN", "attempt": 0}})
	if err != nil {
		t.Fatal(err)
	}
	var in inngestgo.Input[functions.FunctionFailedData]
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatalf("decoding an inngest/function.failed input: %v", err)
	}
	return in
}

// TestRecordFailureOfABatch: record-sync-failure records each event a failed batch lists in
// its error under its own event id and user id (not under the run's first event), and falls
// back to the first event when the error lists none.
func TestRecordFailureOfABatch(t *testing.T) {
	t.Parallel()
	const fnID = "clerk-user-sync-update-user-from-clerk"
	firstID := "clerk-msg_first"
	first := functions.Event{ID: &firstID, Name: clerkevent.UserUpdated, Data: functions.Data{JSON: mustJSON(clerk.User{ID: "user_first"})}, Timestamp: 1}
	const head = "2 of the batch's 3 events were neither written nor recorded in sync_failures: store: database error: down"
	const list = `unrecorded events: [{"event_id":"clerk-msg_2","event_name":"clerk/user.updated","user_id":"user_2","error":"store: database error: upsert user_2: down"},` +
		`{"event_id":"clerk-msg_3","event_name":"clerk/user.updated","error":"event data is not a usable Clerk user: data.id is missing"}]`
	listed := func(runID string) []store.Failure {
		return []store.Failure{
			{RunID: runID, FunctionID: fnID, EventID: "clerk-msg_2", EventName: clerkevent.UserUpdated, UserID: "user_2", Error: "store: database error: upsert user_2: down"},
			{RunID: runID, FunctionID: fnID, EventID: "clerk-msg_3", EventName: clerkevent.UserUpdated, Error: "event data is not a usable Clerk user: data.id is missing"},
		}
	}
	tests := []struct {
		name         string
		message      string
		want         func(runID, message string) []store.Failure
		wantEventIDs []string
	}{{
		name:         "the events listed",
		message:      head + "\n" + list,
		want:         func(runID, _ string) []store.Failure { return listed(runID) },
		wantEventIDs: []string{"clerk-msg_2", "clerk-msg_3"},
	}, {
		name:         "the list wrapped by the SDK",
		message:      "unhandled step error: " + head + "\n" + list + " (attempt 10)",
		want:         func(runID, _ string) []store.Failure { return listed(runID) },
		wantEventIDs: []string{"clerk-msg_2", "clerk-msg_3"},
	}, {
		name:    "the list cut short: the first event",
		message: head + "\n" + list[:60],
		want: func(runID, message string) []store.Failure {
			return []store.Failure{{RunID: runID, FunctionID: fnID, EventID: firstID, EventName: clerkevent.UserUpdated, UserID: "user_first", Error: message}}
		},
		wantEventIDs: []string{firstID},
	}, {
		name:    "no list: the first event",
		message: "store: database error: upsert user_first: down",
		want: func(runID, message string) []store.Failure {
			return []store.Failure{{RunID: runID, FunctionID: fnID, EventID: firstID, EventName: clerkevent.UserUpdated, UserID: "user_first", Error: message}}
		},
		wantEventIDs: []string{firstID},
	}}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			m := &countingMetrics{}
			rec := functions.NewFailureRecorder(st, slog.New(slog.NewTextHandler(t.Output(), nil)), functions.Config{Metrics: m})
			runID := fmt.Sprintf("01BATCHFAILED%d", i)
			in := functionFailedInput(t, runID, fnID, tc.message, first)
			res, err := rec.RecordFailure(t.Context(), in)
			if err != nil {
				t.Fatalf("RecordFailure = %v", err)
			}
			wantRes := functions.FailureResult{RunID: runID, Recorded: true, EventIDs: tc.wantEventIDs}
			if !reflect.DeepEqual(res, wantRes) {
				t.Errorf("RecordFailure = %#v; want %#v", res, wantRes)
			}
			got, err := st.Failures(t.Context())
			if err != nil {
				t.Fatalf("Failures = %v", err)
			}
			want := tc.want(runID, tc.message)
			for i := range want {
				want[i].FailedAt = time.UnixMilli(in.Event.Timestamp).UTC()
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Failures =\n %+v\nwant\n %+v", got, want)
			}
			if got, want := m.snapshot(), map[string]int{"record-sync-failure/recorded": len(want)}; !reflect.DeepEqual(got, want) {
				t.Errorf("FunctionRun calls = %v; want %v", got, want)
			}
		})
	}
}

func TestRecordFailure(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := &countingMetrics{}
	rec := functions.NewFailureRecorder(st, logger, functions.Config{Metrics: m})
	const fnID = "clerk-user-sync-sync-user-from-clerk"
	ts := int64(1_700_000_000_123)

	steps := []struct {
		name         string
		in           inngestgo.Input[functions.FunctionFailedData]
		wantRecorded bool
	}{
		{"first report", failedInput(t, "01RUNFAIL1", fnID, "clerk-msg_fail1", "", ts), true},
		{"same run again (recorder retried)", failedInput(t, "01RUNFAIL1", fnID, "clerk-msg_fail1", "", ts), false},
		{"another run", failedInput(t, "01RUNFAIL2", "clerk-user-sync-delete-user-with-clerk", "clerk-msg_fail2", "user_2", ts+1), true},
	}
	for _, s := range steps {
		res, err := rec.RecordFailure(t.Context(), s.in)
		if err != nil {
			t.Fatalf("%s: RecordFailure = %v; want nil", s.name, err)
		}
		if got, ok := res.(functions.FailureResult); !ok || got.Recorded != s.wantRecorded {
			t.Errorf("%s: RecordFailure result = %+v; want recorded %t", s.name, res, s.wantRecorded)
		}
	}

	got, err := st.Failures(context.Background())
	if err != nil {
		t.Fatalf("Failures = %v", err)
	}
	want := []store.Failure{
		{RunID: "01RUNFAIL1", FunctionID: fnID, EventID: "clerk-msg_fail1", EventName: clerkevent.UserCreated,
			Error: "event data is not a usable Clerk user: data.id is missing", FailedAt: time.UnixMilli(ts).UTC()},
		{RunID: "01RUNFAIL2", FunctionID: "clerk-user-sync-delete-user-with-clerk", EventID: "clerk-msg_fail2", EventName: clerkevent.UserCreated,
			UserID: "user_2", Error: "event data is not a usable Clerk user: data.id is missing", FailedAt: time.UnixMilli(ts + 1).UTC()},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Failures =\n %+v\nwant\n %+v", got, want)
	}

	var errorLines []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=ERROR") {
			errorLines = append(errorLines, line)
		}
	}
	if len(errorLines) != 2 {
		t.Fatalf("%d error lines logged for 2 failed runs (one reported twice); want 2:\n%s", len(errorLines), logs.String())
	}
	for _, want := range []string{"failed_run_id=01RUNFAIL1", "event_id=clerk-msg_fail1", "failed_function=" + fnID, "data.id is missing"} {
		if !strings.Contains(errorLines[0], want) {
			t.Errorf("error line %q does not contain %q", errorLines[0], want)
		}
	}
	wantRuns := map[string]int{"record-sync-failure/recorded": 2, "record-sync-failure/already_recorded": 1}
	if got := m.snapshot(); !reflect.DeepEqual(got, wantRuns) {
		t.Errorf("FunctionRun calls = %v; want %v", got, wantRuns)
	}
}

func TestRecordFailureErrors(t *testing.T) {
	t.Parallel()
	t.Run("no run id", func(t *testing.T) {
		t.Parallel()
		rec := functions.NewFailureRecorder(openStore(t), slog.New(slog.DiscardHandler), functions.Config{})
		_, err := rec.RecordFailure(t.Context(), failedInput(t, "", "clerk-user-sync-sync-user-from-clerk", "clerk-msg_x", "", 1))
		if !inngesterrors.IsNoRetryError(err) {
			t.Errorf("RecordFailure without run id = %v; want a NoRetryError", err)
		}
	})
	t.Run("database down", func(t *testing.T) {
		t.Parallel()
		st := openStore(t)
		if err := st.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		rec := functions.NewFailureRecorder(st, slog.New(slog.DiscardHandler), functions.Config{})
		_, err := rec.RecordFailure(t.Context(), failedInput(t, "01RUNDOWN", "clerk-user-sync-sync-user-from-clerk", "clerk-msg_x", "", 1))
		if err == nil || inngesterrors.IsNoRetryError(err) || !errors.Is(err, store.ErrDatabase) {
			t.Errorf("RecordFailure with the database down = %v; want a retryable error wrapping store.ErrDatabase", err)
		}
	})
}

func TestFailureExpression(t *testing.T) {
	got := functions.FailureExpression("my-app")
	want := `event.data.function_id == "my-app-sync-user-from-clerk" || event.data.function_id == "my-app-update-user-from-clerk" || event.data.function_id == "my-app-delete-user-with-clerk"` +
		` || event.data.function_id == "my-app-sync-organization-from-clerk" || event.data.function_id == "my-app-update-organization-from-clerk" || event.data.function_id == "my-app-delete-organization-with-clerk"` +
		` || event.data.function_id == "my-app-sync-membership-from-clerk" || event.data.function_id == "my-app-update-membership-from-clerk" || event.data.function_id == "my-app-delete-membership-with-clerk"`
	if got != want {
		t.Errorf("FailureExpression(my-app) =\n %s\nwant\n %s", got, want)
	}
}

// TestRecordFailureOfOrgEvents: the failures of the organization and membership functions are
// recorded like the users', with the id of the user the event is about: the member's for a
// membership, none for an organization (whose data.id is the organization's).
func TestRecordFailureOfOrgEvents(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	rec := functions.NewFailureRecorder(st, slog.New(slog.NewTextHandler(t.Output(), nil)), functions.Config{})
	const ts = int64(1_700_000_000_456)
	tests := []struct {
		runID, fn, eventName string
		data                 map[string]any
		wantUserID           string
	}{
		{"01RUNORG", functions.SyncOrganizationID, clerkevent.OrganizationCreated, map[string]any{"id": "org_1", "name": "Acme"}, ""},
		{"01RUNORGDEL", functions.DeleteOrganizationID, clerkevent.OrganizationDeleted, map[string]any{"id": "org_1", "slug": "acme", "deleted": true}, ""},
		{"01RUNMEM", functions.UpdateMembershipID, clerkevent.MembershipUpdated,
			map[string]any{"id": "orgmem_1", "organization": map[string]any{"id": "org_1"}, "public_user_data": map[string]any{"user_id": "user_9", "first_name": "Jane"}}, "user_9"},
		{"01RUNMEMBAD", functions.SyncMembershipID, clerkevent.MembershipCreated, map[string]any{"id": "orgmem_2", "public_user_data": map[string]any{"user_id": 7}}, ""},
	}
	var want []store.Failure
	for _, tc := range tests {
		fnID := testAppID + "-" + tc.fn
		evt := map[string]any{
			"name": functions.FunctionFailed, "id": tc.runID, "ts": ts,
			"data": map[string]any{
				"function_id": fnID,
				"run_id":      tc.runID,
				"error":       map[string]any{"name": "Error", "message": "bad data"},
				"event":       map[string]any{"name": tc.eventName, "id": "clerk-msg_" + tc.runID, "ts": ts, "data": tc.data},
			},
		}
		raw, _ := json.Marshal(map[string]any{"event": evt, "events": []any{evt}, "ctx": map[string]any{"run_id": "01RECORDERRUN"}})
		var in inngestgo.Input[functions.FunctionFailedData]
		if err := json.Unmarshal(raw, &in); err != nil {
			t.Fatal(err)
		}
		if _, err := rec.RecordFailure(t.Context(), in); err != nil {
			t.Fatalf("RecordFailure(%s) = %v", tc.runID, err)
		}
		want = append(want, store.Failure{RunID: tc.runID, FunctionID: fnID, EventID: "clerk-msg_" + tc.runID, EventName: tc.eventName,
			UserID: tc.wantUserID, Error: "bad data", FailedAt: time.UnixMilli(ts).UTC()})
	}
	got, err := st.Failures(t.Context())
	if err != nil {
		t.Fatalf("Failures = %v", err)
	}
	sortFailures := func(fs []store.Failure) {
		slices.SortFunc(fs, func(a, b store.Failure) int { return strings.Compare(a.RunID, b.RunID) })
	}
	sortFailures(got)
	sortFailures(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Failures =\n %+v\nwant\n %+v", got, want)
	}
}

// TestFunctionRunMetrics: every write attempt is counted with its outcome.
func TestFunctionRunMetrics(t *testing.T) {
	t.Parallel()
	m := &countingMetrics{}
	st := openStore(t)
	h := &harness{t: t, ctx: t.Context(), st: st, fns: functions.New(st, st, slog.New(slog.DiscardHandler), functions.Config{AppID: testAppID, Metrics: m})}
	u := clerkUser("user_metrics", "Met", "Rics", "m@x.org", "", t1)
	steps := []struct {
		e       event
		wantErr bool
	}{
		{created(u), false},
		{created(u), false}, // replay: skipped
		{updated(clerkUser("user_metrics", "Met", "Two", "m@x.org", "", t2)), false},
		{created(clerkUser("", "No", "Id", "", "", t1)), true},
		{deleted("user_metrics", t2), false},
		{deleted("user_metrics", t2), false}, // already deleted
		{deleted("", t2), true},
	}
	for _, s := range steps {
		if _, err := h.send(s.e); (err != nil) != s.wantErr {
			t.Fatalf("%s = %v; want error %t", s.e, err, s.wantErr)
		}
	}
	_ = st.Close(context.Background())
	if _, err := h.send(created(clerkUser("user_metrics2", "Db", "Down", "", "", t1))); err == nil {
		t.Fatalf("SyncUser with the database closed = nil; want an error")
	}
	want := map[string]int{
		fmt.Sprintf("%s/inserted", functions.SyncUserID):          1,
		fmt.Sprintf("%s/skipped", functions.SyncUserID):           1,
		fmt.Sprintf("%s/invalid", functions.SyncUserID):           1,
		fmt.Sprintf("%s/error", functions.SyncUserID):             1,
		fmt.Sprintf("%s/updated", functions.UpdateUserID):         1,
		fmt.Sprintf("%s/deleted", functions.DeleteUserID):         1,
		fmt.Sprintf("%s/already_deleted", functions.DeleteUserID): 1,
		fmt.Sprintf("%s/invalid", functions.DeleteUserID):         1,
	}
	if got := m.snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("FunctionRun calls = %v; want %v", got, want)
	}
}

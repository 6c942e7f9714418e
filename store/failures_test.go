package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"clerksync/store"
)

func TestRecordFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	at := time.UnixMilli(1_700_000_000_123).UTC()
	first := store.Failure{
		RunID: "01RUNA", FunctionID: "clerk-user-sync-sync-user-from-clerk", EventID: "clerk-msg_1",
		EventName: "clerk/user.created", UserID: "user_1", Error: "bad user: data.id is missing", FailedAt: at,
	}
	// Another event of the same (batched) run, failed at the same time.
	batchmate := store.Failure{
		RunID: "01RUNA", FunctionID: "clerk-user-sync-sync-user-from-clerk", EventID: "clerk-msg_3",
		EventName: "clerk/user.created", UserID: "user_3", Error: "store: database error: upsert user_3: down", FailedAt: at,
	}
	other := store.Failure{RunID: "01RUNB", FunctionID: "clerk-user-sync-delete-user-with-clerk", EventID: "clerk-msg_2", Error: "boom", FailedAt: at.Add(time.Second)}
	changed := first
	changed.Error = "a second report of the same run"
	batchmateAgain := batchmate
	batchmateAgain.UserID, batchmateAgain.Error = "", "reported again by record-sync-failure"

	steps := []struct {
		name    string
		f       store.Failure
		want    bool
		wantErr error
	}{
		{"first failure", first, true, nil},
		{"same run and event again", first, false, nil},
		{"same run and event, other details", changed, false, nil},
		{"same run, another event", batchmate, true, nil},
		{"that event again", batchmateAgain, false, nil},
		{"another run", other, true, nil},
		{"no run id", store.Failure{FunctionID: "x", EventID: "clerk-msg_x"}, false, store.ErrInvalidFailure},
	}
	for _, st := range steps {
		got, err := s.RecordFailure(ctx, st.f)
		if got != st.want || !errors.Is(err, st.wantErr) {
			t.Errorf("%s: RecordFailure = %t, %v; want %t, %v", st.name, got, err, st.want, st.wantErr)
		}
	}

	got, err := s.Failures(ctx)
	if err != nil {
		t.Fatalf("Failures = %v", err)
	}
	if want := []store.Failure{first, batchmate, other}; !reflect.DeepEqual(got, want) {
		t.Errorf("Failures =\n %+v\nwant\n %+v", got, want)
	}
	if n, err := s.Count(ctx); err != nil || n != 0 {
		t.Errorf("users Count = %d, %v; want 0 (failures live in their own collection)", n, err)
	}
}

// TestFailuresKeyedByRunID: a document recorded before failures were keyed by event (_id the
// run id, no run_id field) still reads back with its run id, and a failure without an event
// id is still keyed by the run id alone.
func TestFailuresKeyedByRunID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	at := time.UnixMilli(1_700_000_000_000).UTC()
	err := store.InsertRawFailure(ctx, s, bson.D{
		{Key: "_id", Value: "01OLDRUN"},
		{Key: "function_id", Value: "clerk-user-sync-sync-user-from-clerk"},
		{Key: "event_id", Value: "clerk-msg_old"},
		{Key: "event_name", Value: "clerk/user.created"},
		{Key: "user_id", Value: "user_old"},
		{Key: "error", Value: "event data is not a usable Clerk user"},
		{Key: "failed_at", Value: at},
	})
	if err != nil {
		t.Fatalf("inserting a run-keyed failure document: %v", err)
	}
	old := store.Failure{
		RunID: "01OLDRUN", FunctionID: "clerk-user-sync-sync-user-from-clerk", EventID: "clerk-msg_old",
		EventName: "clerk/user.created", UserID: "user_old", Error: "event data is not a usable Clerk user", FailedAt: at,
	}
	noEvent := store.Failure{RunID: "01OLDRUN", FunctionID: "clerk-user-sync-sync-user-from-clerk", Error: "no event", FailedAt: at}
	newer := store.Failure{RunID: "01NEWRUN", FunctionID: "clerk-user-sync-sync-user-from-clerk", EventID: "clerk-msg_new", Error: "x", FailedAt: at.Add(time.Second)}

	steps := []struct {
		name string
		f    store.Failure
		want bool
	}{
		{"the old run without an event id: already recorded", noEvent, false},
		{"a run recorded per event", newer, true},
	}
	for _, st := range steps {
		if got, err := s.RecordFailure(ctx, st.f); got != st.want || err != nil {
			t.Errorf("%s: RecordFailure = %t, %v; want %t, nil", st.name, got, err, st.want)
		}
	}
	got, err := s.Failures(ctx)
	if err != nil {
		t.Fatalf("Failures = %v", err)
	}
	if want := []store.Failure{old, newer}; !reflect.DeepEqual(got, want) {
		t.Errorf("Failures =\n %+v\nwant\n %+v", got, want)
	}
}

func TestRecordFailureDatabaseDown(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if _, err := s.RecordFailure(context.Background(), store.Failure{RunID: "01RUN"}); !errors.Is(err, store.ErrDatabase) {
		t.Errorf("RecordFailure on a closed store = %v; want an error wrapping ErrDatabase", err)
	}
	if _, err := s.Failures(context.Background()); !errors.Is(err, store.ErrDatabase) {
		t.Errorf("Failures on a closed store = %v; want an error wrapping ErrDatabase", err)
	}
}

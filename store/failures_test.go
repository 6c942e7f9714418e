package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"clerksync/store"
)

func TestRecordFailure(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	at := time.UnixMilli(1_700_000_000_123).UTC()
	first := store.Failure{
		RunID: "01RUNA", FunctionID: "clerk-user-sync-sync-user-from-clerk", EventID: "clerk-msg_1",
		EventName: "clerk/user.created", UserID: "user_1", Error: "bad user: data.id is missing", FailedAt: at,
	}
	other := store.Failure{RunID: "01RUNB", FunctionID: "clerk-user-sync-delete-user-with-clerk", EventID: "clerk-msg_2", Error: "boom", FailedAt: at.Add(time.Second)}
	changed := first
	changed.Error = "a second report of the same run"

	steps := []struct {
		name    string
		f       store.Failure
		want    bool
		wantErr error
	}{
		{"first failure", first, true, nil},
		{"same run again", first, false, nil},
		{"same run, other details", changed, false, nil},
		{"another run", other, true, nil},
		{"no run id", store.Failure{FunctionID: "x"}, false, store.ErrInvalidFailure},
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
	if want := []store.Failure{first, other}; !reflect.DeepEqual(got, want) {
		t.Errorf("Failures =\n %+v\nwant\n %+v", got, want)
	}
	if n, err := s.Count(ctx); err != nil || n != 0 {
		t.Errorf("users Count = %d, %v; want 0 (failures live in their own collection)", n, err)
	}
}

func TestRecordFailureDatabaseDown(t *testing.T) {
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

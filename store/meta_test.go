package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"clerksync/store"
)

func TestRecordClerkInstance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	if got, err := s.ClerkInstance(ctx); got != "" || err != nil {
		t.Fatalf("ClerkInstance before any record = %q, %v; want \"\", nil", got, err)
	}
	at := time.UnixMilli(1_700_000_000_000)
	steps := []struct {
		name         string
		id           string
		want         string
		wantErr      error
		wantRecorded string // ClerkInstance afterwards
	}{
		{"empty id", "", "", store.ErrInvalidInstance, ""},
		{"first record", "ins_first", "ins_first", nil, "ins_first"},
		{"same again", "ins_first", "ins_first", nil, "ins_first"},
		{"another instance keeps the first", "ins_other", "ins_first", nil, "ins_first"},
	}
	for _, st := range steps {
		got, err := s.RecordClerkInstance(ctx, st.id, at)
		if got != st.want || !errors.Is(err, st.wantErr) {
			t.Errorf("%s: RecordClerkInstance(%q) = %q, %v; want %q, %v", st.name, st.id, got, err, st.want, st.wantErr)
		}
		if got, err := s.ClerkInstance(ctx); got != st.wantRecorded || err != nil {
			t.Errorf("%s: ClerkInstance afterwards = %q, %v; want %q", st.name, got, err, st.wantRecorded)
		}
	}
	if n, err := s.Count(ctx); err != nil || n != 0 {
		t.Errorf("users Count = %d, %v; want 0 (the instance lives in its own collection)", n, err)
	}
}

// TestRecordClerkInstanceConcurrent: of callers racing to record different instances, one
// wins and every caller is told the winner.
func TestRecordClerkInstanceConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	ids := []string{"ins_a", "ins_b", "ins_c", "ins_d", "ins_e", "ins_f", "ins_g", "ins_h"}
	got := make([]string, len(ids))
	errs := make([]error, len(ids))
	done := make(chan int)
	for i, id := range ids {
		go func() {
			got[i], errs[i] = s.RecordClerkInstance(ctx, id, time.Now())
			done <- i
		}()
	}
	for range ids {
		<-done
	}
	recorded, err := s.ClerkInstance(ctx)
	if err != nil || recorded == "" {
		t.Fatalf("ClerkInstance = %q, %v; want one of the racing ids", recorded, err)
	}
	for i := range ids {
		if got[i] != recorded || errs[i] != nil {
			t.Errorf("RecordClerkInstance(%q) = %q, %v; want %q (the one recorded)", ids[i], got[i], errs[i], recorded)
		}
	}
}

func TestClerkInstanceDatabaseDown(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if _, err := s.ClerkInstance(context.Background()); !errors.Is(err, store.ErrDatabase) {
		t.Errorf("ClerkInstance on a closed store = %v; want an error wrapping ErrDatabase", err)
	}
	if _, err := s.RecordClerkInstance(context.Background(), "ins_x", time.Now()); !errors.Is(err, store.ErrDatabase) {
		t.Errorf("RecordClerkInstance on a closed store = %v; want an error wrapping ErrDatabase", err)
	}
}

// TestClerkInstanceHandEdited: a clerk_instance document without an instance_id string (edited
// by hand) is reported with the command that resets it, rather than read as no instance.
func TestClerkInstanceHandEdited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	if err := store.InsertClerkInstanceRaw(ctx, s, 42); err != nil {
		t.Fatal(err)
	}
	_, err := s.ClerkInstance(ctx)
	if !errors.Is(err, store.ErrDatabase) || !strings.Contains(err.Error(), `db.sync_metadata.deleteOne({_id: "clerk_instance"})`) {
		t.Errorf("ClerkInstance of a hand-edited document = %v; want an error wrapping ErrDatabase that says how to reset it", err)
	}
	if got, err := s.RecordClerkInstance(ctx, "ins_x", time.Now()); got != "" || !errors.Is(err, store.ErrDatabase) {
		t.Errorf("RecordClerkInstance over a hand-edited document = %q, %v; want \"\" and an error wrapping ErrDatabase", got, err)
	}
}

func TestForgetClerkInstance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name, recorded string
	}{{"none recorded", ""}, {"one recorded", "ins_old"}} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			if tc.recorded != "" {
				if _, err := s.RecordClerkInstance(ctx, tc.recorded, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := s.ForgetClerkInstance(ctx); got != tc.recorded || err != nil {
				t.Errorf("ForgetClerkInstance = %q, %v; want %q, nil", got, err, tc.recorded)
			}
			if got, err := s.RecordClerkInstance(ctx, "ins_new", time.Now()); got != "ins_new" || err != nil {
				t.Errorf("RecordClerkInstance after forgetting = %q, %v; want ins_new recorded", got, err)
			}
		})
	}
	// A hand-edited record without an instance id is forgotten too.
	s := openStore(t)
	if err := store.InsertClerkInstanceRaw(ctx, s, 42); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ForgetClerkInstance(ctx); got != "" || err != nil {
		t.Errorf("ForgetClerkInstance of a broken record = %q, %v; want \"\", nil", got, err)
	}
	if got, err := s.ClerkInstance(ctx); got != "" || err != nil {
		t.Errorf("ClerkInstance after forgetting = %q, %v; want none", got, err)
	}
}

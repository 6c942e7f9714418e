package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"clerksync/store"
)

// TestMarkReconciled: a step's ids are fresh unless another step marked them first; a retried
// step gets its own ids back as fresh.
func TestMarkReconciled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	steps := []struct {
		step int
		ids  []string
		want []string
	}{
		{0, []string{"user_a", "user_b", "user_c"}, []string{"user_a", "user_b", "user_c"}},
		// offset paging shifted user_c onto the next page too
		{3, []string{"user_c", "user_d", "user_e"}, []string{"user_d", "user_e"}},
		// step 3 retried: what its first attempt marked is its own
		{3, []string{"user_c", "user_d", "user_e"}, []string{"user_d", "user_e"}},
		{6, []string{"user_f", "user_f"}, []string{"user_f"}},
		{7, nil, nil},
	}
	for _, st := range steps {
		got, err := s.MarkReconciled(ctx, "users", "p1", "listed", st.step, st.ids)
		if err != nil {
			t.Fatalf("MarkReconciled(step %d, %q) = %v", st.step, st.ids, err)
		}
		if !slices.Equal(got, st.want) {
			t.Errorf("MarkReconciled(step %d, %q) = %q; want %q", st.step, st.ids, got, st.want)
		}
	}
	// Another set, and another pass, are apart.
	if got, err := s.MarkReconciled(ctx, "users", "p1", "seen", 0, []string{"user_a"}); err != nil || !slices.Equal(got, []string{"user_a"}) {
		t.Errorf("MarkReconciled(seen) = %q, %v; want [user_a]", got, err)
	}
	if got, err := s.MarkReconciled(ctx, "users", "p2", "listed", 9, []string{"user_a"}); err != nil || !slices.Equal(got, []string{"user_a"}) {
		t.Errorf("MarkReconciled(pass p2) = %q, %v; want [user_a]", got, err)
	}

	var paged []string
	for after := ""; ; {
		page, err := s.ReconcileMarksAfter(ctx, "users", "p1", "listed", after, 4)
		if err != nil {
			t.Fatalf("ReconcileMarksAfter(%q) = %v", after, err)
		}
		paged = append(paged, page...)
		if len(page) < 4 {
			break
		}
		after = page[len(page)-1]
	}
	if want := []string{"user_a", "user_b", "user_c", "user_d", "user_e", "user_f"}; !slices.Equal(paged, want) {
		t.Errorf("ReconcileMarksAfter, pages of 4 = %q; want %q", paged, want)
	}

	// Forgetting the other passes leaves p1's sets; forgetting all then leaves none, but
	// another scope's.
	if _, err := s.MarkReconciled(ctx, "organizations", "p2", "listed", 0, []string{"org_a"}); err != nil {
		t.Fatal(err)
	}
	forget := func(keep string, want int) {
		t.Helper()
		if n, err := s.ForgetReconcileMarks(ctx, "users", keep); err != nil || n != want {
			t.Errorf("ForgetReconcileMarks(users, keep %q) = %d, %v; want %d collections dropped", keep, n, err, want)
		}
	}
	forget("p1", 1)
	if got, _ := s.ReconcileMarksAfter(ctx, "users", "p1", "listed", "", 10); len(got) != 6 {
		t.Errorf("marks of p1 after forgetting the others: %q; want its 6", got)
	}
	if got, _ := s.ReconcileMarksAfter(ctx, "users", "p2", "listed", "", 10); len(got) != 0 {
		t.Errorf("marks of p2 after forgetting them: %q; want none", got)
	}
	forget("", 2)
	if got, _ := s.ReconcileMarksAfter(ctx, "users", "p1", "seen", "", 10); len(got) != 0 {
		t.Errorf("marks of p1 after forgetting them: %q; want none", got)
	}
	if got, _ := s.ReconcileMarksAfter(ctx, "organizations", "p2", "listed", "", 10); len(got) != 1 {
		t.Errorf("marks of another scope after forgetting the users': %q; want its 1", got)
	}
	if _, err := s.MarkReconciled(ctx, "users", "p_1", "listed", 0, []string{"user_a"}); !errors.Is(err, store.ErrInvalidPass) {
		t.Errorf("MarkReconciled(pass p_1) = %v; want an error wrapping ErrInvalidPass", err)
	}
}

// liveScenario writes 25 users out of order, two of them then deleted, and an application's
// document with an ObjectId _id, and returns the live users' ids, ascending.
func liveScenario(t *testing.T, s *store.Store) []string {
	t.Helper()
	ctx := context.Background()
	for i := range 25 {
		id := fmt.Sprintf("user_%03d", (i*7)%25) // written out of order
		if _, err := s.UpsertUser(ctx, store.User{ID: id, Username: id, CreatedAt: 1, UpdatedAt: 10}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"user_004", "user_017"} {
		if _, err := s.DeleteUser(ctx, id, 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.InsertRaw(ctx, s, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "username", Value: "app"}}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 25 {
		if id := fmt.Sprintf("user_%03d", i); id != "user_004" && id != "user_017" {
			want = append(want, id)
		}
	}
	return want
}

// scanAll scans the live users of s to the end in batches of batch, each call made by the next
// of stores in turn (other replicas on the same database), and returns the ids read and the
// calls made. It fails the test when a call fails or returns more than batch ids.
func scanAll(t *testing.T, stores []*store.Store, pass string, batch int) (ids []string, calls int) {
	t.Helper()
	// A deadline, as a step has: the driver must not turn it into getMore's maxTimeMS.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for token := ""; ; {
		s := stores[calls%len(stores)]
		got, next, err := s.ScanLiveUsers(ctx, "users", pass, token, batch)
		calls++
		if err != nil {
			t.Fatalf("ScanLiveUsers(%q, %d), call %d = %v", token, batch, calls, err)
		}
		if len(got) > batch {
			t.Fatalf("ScanLiveUsers(%q, %d) = %d ids; want at most %d", token, batch, len(got), batch)
		}
		ids = append(ids, got...)
		if next == "" {
			return ids, calls
		}
		if len(next) > 50 {
			t.Errorf("ScanLiveUsers token %q: %d bytes; want at most 50", next, len(next))
		}
		token = next
	}
}

// TestScanLiveUsers: a scan reads every live user exactly once, across calls made by two
// stores on the database (two replicas), in both write modes (by _id range; by one server
// cursor, resumed by its id); a retried call is refused in by-id mode, as a cursor cannot read a
// batch again, and gives the same batch in conditional mode.
func TestScanLiveUsers(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := openStoreMode(t, m.mode)
			want := liveScenario(t, s)
			other := srv.Reopen(t, s, m.mode)
			for _, batch := range []int{1, 5, 23, 100} {
				got, calls := scanAll(t, []*store.Store{s, other}, "p1", batch)
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("ScanLiveUsers in batches of %d = %q; want %q", batch, got, want)
				}
				if wantCalls := len(want)/batch + 1; calls > wantCalls+1 || calls < len(want)/batch {
					t.Errorf("ScanLiveUsers in batches of %d took %d calls; want about %d", batch, calls, wantCalls)
				}
			}

			// The same token twice: a step that read a batch, failed and is retried.
			first, token, err := s.ScanLiveUsers(ctx, "users", "p1", "", 5)
			if err != nil || token == "" {
				t.Fatalf("ScanLiveUsers from the start = %q, %q, %v; want 5 ids and a token", first, token, err)
			}
			second, _, err := s.ScanLiveUsers(ctx, "users", "p1", token, 5)
			if err != nil {
				t.Fatalf("ScanLiveUsers(%q) = %v", token, err)
			}
			again, _, err := other.ScanLiveUsers(ctx, "users", "p1", token, 5)
			switch m.mode {
			case store.WritesByID:
				if !errors.Is(err, store.ErrScanLost) {
					t.Errorf("ScanLiveUsers(%q) a second time = %q, %v; want an error wrapping ErrScanLost", token, again, err)
				}
			default:
				if err != nil || !slices.Equal(again, second) {
					t.Errorf("ScanLiveUsers(%q) a second time = %q, %v; want the same batch %q", token, again, err, second)
				}
			}
			for _, bad := range []string{"x", "c.", "r.", "c.12", "c.0.1"} {
				if _, _, err := s.ScanLiveUsers(ctx, "users", "p1", bad, 5); !errors.Is(err, store.ErrScanLost) {
					t.Errorf("ScanLiveUsers(%q) = %v; want an error wrapping ErrScanLost", bad, err)
				}
			}
			if _, _, err := s.ScanLiveUsers(ctx, "users", "p_1", "", 5); !errors.Is(err, store.ErrInvalidPass) {
				t.Errorf("ScanLiveUsers(pass p_1) = %v; want an error wrapping ErrInvalidPass", err)
			}
		})
	}
}

// TestScanLiveUsersClosed: in by-id mode (FerretDB), a scan's server cursor does not outlive its
// pass: a new scan closes the one before, so does ForgetReconcileMarks of another pass (the next
// pass's clear-marks) but not of the scan's own; a cursor the server lost ends the scan with
// ErrScanLost.
func TestScanLiveUsersClosed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStoreMode(t, store.WritesByID)
	liveScenario(t, s)
	start := func(pass string) (int64, string) {
		t.Helper()
		_, token, err := s.ScanLiveUsers(ctx, "users", pass, "", 2)
		if err != nil || token == "" {
			t.Fatalf("ScanLiveUsers(%s) from the start = %q, %v; want a token", pass, token, err)
		}
		id, err := store.ScanCursor(ctx, s, "users")
		if err != nil || id == 0 {
			t.Fatalf("the scan's record = %d, %v; want a cursor", id, err)
		}
		return id, token
	}
	lost := func(what, pass, token string) {
		t.Helper()
		if _, _, err := s.ScanLiveUsers(ctx, "users", pass, token, 2); !errors.Is(err, store.ErrScanLost) {
			t.Errorf("%s: ScanLiveUsers(%q) = %v; want an error wrapping ErrScanLost", what, token, err)
		}
	}
	closed := func(what string, id int64) {
		t.Helper()
		if open, err := store.CursorOpen(ctx, s, id); open || err != nil {
			t.Errorf("%s: cursor %d open = %t, %v; want closed", what, id, open, err)
		}
	}

	id1, token1 := start("p1")
	id2, token2 := start("p1") // the scan started again
	lost("a scan started again", "p1", token1)
	closed("a scan started again", id1)

	if _, err := s.ForgetReconcileMarks(ctx, "users", "p1"); err != nil {
		t.Fatal(err)
	}
	if _, next, err := s.ScanLiveUsers(ctx, "users", "p1", token2, 2); err != nil || next == "" {
		t.Errorf("ScanLiveUsers(%q) after forgetting the other passes = %q, %v; want the scan going on", token2, next, err)
	}
	if _, err := s.ForgetReconcileMarks(ctx, "users", "p2"); err != nil {
		t.Fatal(err)
	}
	closed("the next pass's clear-marks", id2)
	if id, err := store.ScanCursor(ctx, s, "users"); err == nil {
		t.Errorf("the scan's record after ForgetReconcileMarks: cursor %d; want none", id)
	}

	id3, token3 := start("p2")
	if err := store.KillCursor(ctx, s, id3); err != nil {
		t.Fatal(err)
	}
	lost("the server lost the cursor", "p2", token3)
	if _, err := s.ForgetReconcileMarks(ctx, "users", ""); err != nil {
		t.Errorf("ForgetReconcileMarks of a lost cursor = %v; want nil (killCursors of an unknown id is harmless)", err)
	}
}

// TestReconcileMarkedAmong: ReconcileMarked returns those of any ids a set holds, in the order
// given, in both modes (point lookups by _id; one $in).
func TestReconcileMarkedAmong(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := openStoreMode(t, m.mode)
			if _, err := s.MarkReconciled(ctx, "users", "p1", "listed", 0, []string{"user_a", "user_c", "user_e"}); err != nil {
				t.Fatal(err)
			}
			got, err := s.ReconcileMarked(ctx, "users", "p1", "listed", []string{"user_e", "user_b", "user_a", "user_z"})
			if want := []string{"user_e", "user_a"}; err != nil || !slices.Equal(got, want) {
				t.Errorf("ReconcileMarked = %q, %v; want %q", got, err, want)
			}
			if got, err := s.ReconcileMarked(ctx, "users", "p1", "seen", []string{"user_a"}); err != nil || len(got) != 0 {
				t.Errorf("ReconcileMarked(an empty set) = %q, %v; want none", got, err)
			}
			if err := s.ForgetReconcileSet(ctx, "users", "p1", "listed"); err != nil {
				t.Fatal(err)
			}
			if got, err := s.ReconcileMarked(ctx, "users", "p1", "listed", []string{"user_a"}); err != nil || len(got) != 0 {
				t.Errorf("ReconcileMarked after ForgetReconcileSet = %q, %v; want none", got, err)
			}
		})
	}
}

func TestCountLiveUsers(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	want := liveScenario(t, s)
	if n, err := s.CountLiveUsers(t.Context()); err != nil || n != len(want) {
		t.Errorf("CountLiveUsers = %d, %v; want %d", n, err, len(want))
	}
}

func TestClaimReconcilePass(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	t0 := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	const stale = 30 * time.Minute
	steps := []struct {
		name     string
		pass     string
		takeOver bool
		at       time.Duration
		end      bool // EndReconcilePass instead of a claim
		busy     bool
	}{
		{"first pass claims", "p1", true, 0, false, false},
		{"it goes on", "p1", false, time.Minute, false, false},
		{"a new pass is refused", "p2", true, 2 * time.Minute, false, true},
		{"a stranger cannot go on", "p2", false, 2 * time.Minute, false, true},
		{"p1 renews", "p1", false, 20 * time.Minute, false, false},
		{"still refused within staleAfter of the renewal", "p2", true, 45 * time.Minute, false, true},
		{"a stale lease is taken over", "p2", true, 51 * time.Minute, false, false},
		{"the old pass cannot go on", "p1", false, 52 * time.Minute, false, true},
		{"the old pass cannot end another's", "p1", false, 52 * time.Minute, true, false},
		{"so a third is refused", "p3", true, 53 * time.Minute, false, true},
		{"p2 ends", "p2", false, 54 * time.Minute, true, false},
		{"an ended pass cannot go on", "p2", false, 54 * time.Minute, false, true},
		{"a new pass claims an ended lease", "p3", true, 55 * time.Minute, false, false},
	}
	for _, st := range steps {
		var err error
		if st.end {
			err = s.EndReconcilePass(ctx, "users", st.pass, t0.Add(st.at))
		} else {
			err = s.ClaimReconcilePass(ctx, "users", st.pass, st.takeOver, t0.Add(st.at), stale)
		}
		if busy := errors.Is(err, store.ErrPassBusy); busy != st.busy || (err != nil && !busy) {
			t.Errorf("%s: %s = %v; want busy %t", st.name, st.pass, err, st.busy)
		}
	}
	// Another scope has its own lease.
	if err := s.ClaimReconcilePass(ctx, "organizations", "o1", true, t0, stale); err != nil {
		t.Errorf("ClaimReconcilePass(organizations) = %v; want nil", err)
	}
}

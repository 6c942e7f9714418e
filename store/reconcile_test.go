package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

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

	got, err := s.ReconcileMarked(ctx, "users", "p1", "listed", []string{"user_0", "user_b", "user_bb", "user_e", "user_z"})
	if want := []string{"user_b", "user_e"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ReconcileMarked = %q, %v; want %q", got, err, want)
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

func TestLiveUserIDsAfter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	var want []string
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
	for i := range 25 {
		if id := fmt.Sprintf("user_%03d", i); id != "user_004" && id != "user_017" {
			want = append(want, id)
		}
	}
	for _, limit := range []int{1, 5, 23, 100} {
		var got []string
		for after := ""; ; {
			page, err := s.LiveUserIDsAfter(ctx, after, limit)
			if err != nil {
				t.Fatalf("LiveUserIDsAfter(%q, %d) = %v", after, limit, err)
			}
			if len(page) > limit {
				t.Fatalf("LiveUserIDsAfter(%q, %d) = %d ids; want at most %d", after, limit, len(page), limit)
			}
			got = append(got, page...)
			if len(page) < limit {
				break
			}
			after = page[len(page)-1]
		}
		if !slices.Equal(got, want) {
			t.Errorf("LiveUserIDsAfter in pages of %d = %q; want %q", limit, got, want)
		}
	}
	if n, err := s.CountLiveUsers(ctx); err != nil || n != len(want) {
		t.Errorf("CountLiveUsers = %d, %v; want %d", n, err, len(want))
	}
	if n, err := s.CountLiveUsersAmong(ctx, []string{"user_000", "user_004", "user_nobody", "user_024"}); err != nil || n != 2 {
		t.Errorf("CountLiveUsersAmong = %d, %v; want 2 (user_004 is a tombstone, user_nobody unknown)", n, err)
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

package reconcile_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/store"
)

// deletedAt is the clock of the reconciliations under test, in Unix milliseconds.
const deletedAt = 1_700_000_000_000

// newReconciler returns a Reconciler reading the stand-in through the real Clerk client and
// writing to st.
func newReconciler(t *testing.T, st *store.Store, fake *clerkfake.Server, cfg reconcile.Config) *reconcile.Reconciler {
	cfg.Now = func() time.Time { return time.UnixMilli(deletedAt) }
	return reconcile.New(st, newAPI(t, fake, clerk.APIConfig{}), testLogger(t), cfg)
}

// listRequests returns the GET /v1/users requests the stand-in answered, without the count
// and single-user requests.
func listRequests(fake *clerkfake.Server) []string {
	var got []string
	for _, r := range fake.Requests() {
		if strings.HasPrefix(r, "GET /v1/users?") {
			got = append(got, r)
		}
	}
	return got
}

func TestReconcilePaging(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		users     int
		pageSize  int
		wantPages int
	}{
		{"no users", 0, 2, 1},
		{"one partial page", 3, 500, 1},
		{"pages of two, last partial", 5, 2, 3},
		{"pages of two, last empty", 4, 2, 3},
		{"over 500 users", 501, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			fake := clerkfake.New(t, testKey, fakeUsers(tt.users, 1000)...)
			r := newReconciler(t, st, fake, reconcile.Config{PageSize: tt.pageSize, MaxDeleteShare: 0.1})

			got, err := r.Run(t.Context())
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
			want := reconcile.Summary{Pages: tt.wantPages, Counts: reconcile.Counts{Seen: tt.users, Inserted: tt.users}}
			if got != want {
				t.Errorf("first Run = %+v; want %+v", got, want)
			}
			size := tt.pageSize
			if size == 0 {
				size = clerk.MaxPageSize
			}
			// Two passes over the list: the survey, then the writes.
			var wantReqs []string
			for range 2 {
				for p := range tt.wantPages {
					wantReqs = append(wantReqs, fmt.Sprintf("GET /v1/users?limit=%d&offset=%d&order_by=%%2Bcreated_at", size, p*size))
				}
			}
			if reqs := listRequests(fake); !reflect.DeepEqual(reqs, wantReqs) {
				t.Errorf("list requests = %q; want %q", reqs, wantReqs)
			}
			if ids, _ := st.LiveUserIDs(t.Context()); len(ids) != tt.users {
				t.Errorf("live users after Run = %d; want %d", len(ids), tt.users)
			}

			// A second run finds everything up to date.
			got, err = r.Run(t.Context())
			if err != nil {
				t.Fatalf("second Run = %v", err)
			}
			want = reconcile.Summary{Pages: tt.wantPages, Counts: reconcile.Counts{Seen: tt.users, Skipped: tt.users}}
			if got != want {
				t.Errorf("second Run = %+v; want %+v", got, want)
			}
		})
	}
}

func TestReconcileWrites(t *testing.T) {
	t.Parallel()
	clerkUser := clerkfake.NewUser("user_1", "Clerk", 2000)
	tests := []struct {
		name     string
		stored   *clerkfake.User // written before, as a webhook would
		tombed   bool            // then deleted, as user.deleted would
		want     reconcile.Summary
		wantName string // stored full_name afterwards ("" for a tombstone)
	}{
		{"missing user inserted", nil, false, reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 1, Inserted: 1}}, "Clerk Doe"},
		{"older stored user updated", ptr(clerkfake.NewUser("user_1", "Old", 1000)), false, reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 1, Updated: 1}}, "Clerk Doe"},
		{"same version unchanged", ptr(clerkfake.NewUser("user_1", "Clerk", 2000)), false, reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 1, Skipped: 1}}, "Clerk Doe"},
		{"newer webhook write kept", ptr(clerkfake.NewUser("user_1", "Webhook", 3000)), false, reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 1, Skipped: 1}}, "Webhook Doe"},
		{"tombstone kept", ptr(clerkfake.NewUser("user_1", "Old", 1000)), true, reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 1, Skipped: 1}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			if tt.stored != nil {
				seed(t, st, *tt.stored)
			}
			if tt.tombed {
				if _, err := st.DeleteUser(t.Context(), "user_1", 1500); err != nil {
					t.Fatal(err)
				}
			}
			fake := clerkfake.New(t, testKey, clerkUser)
			got, err := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 0.1}).Run(t.Context())
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
			if got != tt.want {
				t.Errorf("Run = %+v; want %+v", got, tt.want)
			}
			u := get(t, st, "user_1")
			if u.FullName != tt.wantName || u.Deleted != tt.tombed {
				t.Errorf("stored user_1 full_name %q, deleted %t; want %q, %t", u.FullName, u.Deleted, tt.wantName, tt.tombed)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// beforeWritePage runs f once, just before the write pass of a run reads the page at offset:
// the second time Clerk's list is read there (the survey reads it first).
func beforeWritePage(fake *clerkfake.Server, offset int, f func()) { beforeRead(fake, offset, 2, f) }

// beforeSurveyPage runs f once, just before the survey of a run reads the page at offset.
func beforeSurveyPage(fake *clerkfake.Server, offset int, f func()) { beforeRead(fake, offset, 1, f) }

// beforeRead runs f once, just before the nth read of the page at offset.
func beforeRead(fake *clerkfake.Server, offset, nth int, f func()) {
	var mu sync.Mutex
	reads := 0
	fake.BeforeList(func(o int) {
		if o != offset {
			return
		}
		mu.Lock()
		reads++
		now := reads == nth
		mu.Unlock()
		if now {
			f()
		}
	})
}

// TestReconcileUserChangedBetweenPages: a sign-up between two pages shifts the list, so that
// user_02 shows up again on the next page, changed meanwhile: its newer data wins.
func TestReconcileUserChangedBetweenPages(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	fake := clerkfake.New(t, testKey, fakeUsers(4, 1000)...)
	beforeWritePage(fake, 2, func() {
		fake.Prepend(clerkfake.NewUser("user_00", "New", 1500))
		fake.Put(clerkfake.NewUser("user_02", "Renamed", 2000))
	})
	got, err := newReconciler(t, st, fake, reconcile.Config{PageSize: 2, MaxDeleteShare: 0.1}).Run(t.Context())
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	// Pages: [01 02], [02' 03], [04]. user_00 lands before offset 2: the next run gets it.
	want := reconcile.Summary{Pages: 3, Counts: reconcile.Counts{Seen: 5, Inserted: 4, Updated: 1}}
	if got != want {
		t.Errorf("Run = %+v; want %+v", got, want)
	}
	if u := get(t, st, "user_02"); u.FullName != "Renamed Doe" || u.UpdatedAt != 2000 {
		t.Errorf("user_02 = full_name %q, updated_at %d; want the newer page's \"Renamed Doe\", 2000", u.FullName, u.UpdatedAt)
	}
}

func TestReconcileDeletions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		stored   int      // user_01... live in the database
		extra    []string // more live users, not in Clerk
		tombs    []string // tombstones in the database
		inClerk  int      // user_01... in Clerk
		pageSize int
		share    float64
		allow    bool
		// between pages: the user removed from Clerk just before the survey reads offset 2
		removeAt2 string
		// the same, just before the write pass reads offset 2
		removeAtWrite2 string
		want           reconcile.Summary
		wantGone       []string // tombstones afterwards, deleted by the run
		wantGets       []string // ids confirmed with GET /v1/users/{id}
	}{
		{
			name: "user missing from Clerk tombstoned", stored: 10, extra: []string{"user_gone"}, inClerk: 10, share: 0.1,
			want:     reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 10, Skipped: 10, Deleted: 1}},
			wantGone: []string{"user_gone"}, wantGets: []string{"user_gone"},
		},
		{
			name: "tombstones are not deleted again", stored: 10, tombs: []string{"user_old"}, inClerk: 10, share: 0.1,
			want: reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 10, Skipped: 10}},
		},
		{
			name: "mass deletion refused", stored: 10, inClerk: 5, share: 0.1,
			want: reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 5, Skipped: 5, Refused: 5}},
		},
		{
			name: "mass deletion allowed by override", stored: 10, inClerk: 5, share: 0.1, allow: true,
			want:     reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 5, Skipped: 5, Deleted: 5}},
			wantGone: []string{"user_06", "user_07", "user_08", "user_09", "user_10"},
			wantGets: []string{"user_06", "user_07", "user_08", "user_09", "user_10"},
		},
		{
			// 30 sign-ups and 2 users gone: the cap is 10% of the 10 live users before the run
			// (1), not of the 40 after its inserts (4).
			name: "cap counts the live users before the run", stored: 8, extra: []string{"user_gone1", "user_gone2"}, inClerk: 38, share: 0.1,
			want: reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 38, Inserted: 30, Skipped: 8, Refused: 2}},
		},
		{
			name: "share 0 refuses any deletion", stored: 10, extra: []string{"user_gone"}, inClerk: 10, share: 0,
			want: reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 10, Skipped: 10, Refused: 1}},
		},
		{
			// Removing user_01 after the survey's page 0 shifts user_03 onto page 0: the
			// survey never lists it, but Clerk has it, so it is kept (and written). (user_01,
			// listed, stays until the next pass.)
			name: "user skipped by paging is confirmed alive", stored: 6, inClerk: 6, pageSize: 2, share: 0.5, removeAt2: "user_01",
			want:     reconcile.Summary{Pages: 3, Counts: reconcile.Counts{Seen: 5, Skipped: 6, StillInClerk: 1}},
			wantGets: []string{"user_03"},
		},
		{
			// The same removal during the writes: user_03 is on no write page, but the survey
			// listed it, so it is no candidate and Clerk is not asked.
			name: "user skipped by the write pages only is kept", stored: 6, inClerk: 6, pageSize: 2, share: 0.5, removeAtWrite2: "user_01",
			want: reconcile.Summary{Pages: 3, Counts: reconcile.Counts{Seen: 5, Skipped: 5}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			seed(t, st, fakeUsers(tt.stored, 1000)...)
			for _, id := range tt.extra {
				seed(t, st, clerkfake.NewUser(id, "Extra", 1000))
			}
			for _, id := range tt.tombs {
				if _, err := st.DeleteUser(t.Context(), id, 1); err != nil {
					t.Fatal(err)
				}
			}
			fake := clerkfake.New(t, testKey, fakeUsers(tt.inClerk, 1000)...)
			if tt.removeAt2 != "" {
				beforeSurveyPage(fake, 2, func() { fake.Remove(tt.removeAt2) })
			}
			if tt.removeAtWrite2 != "" {
				beforeWritePage(fake, 2, func() { fake.Remove(tt.removeAtWrite2) })
			}
			r := newReconciler(t, st, fake, reconcile.Config{PageSize: tt.pageSize, MaxDeleteShare: tt.share, AllowMassDelete: tt.allow})
			got, err := r.Run(t.Context())
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
			if got != tt.want {
				t.Errorf("Run = %+v; want %+v", got, tt.want)
			}

			var gets []string
			for _, req := range fake.Requests() {
				if id, ok := strings.CutPrefix(req, "GET /v1/users/user_"); ok {
					gets = append(gets, "user_"+id)
				}
			}
			if !slices.Equal(gets, tt.wantGets) {
				t.Errorf("confirmations GET /v1/users/{id} = %q; want %q", gets, tt.wantGets)
			}

			ids := []string{}
			for _, u := range fakeUsers(tt.stored, 0) {
				ids = append(ids, u.ID)
			}
			ids = append(ids, tt.extra...)
			for _, id := range ids {
				u := get(t, st, id)
				wantGone := slices.Contains(tt.wantGone, id)
				if u.Deleted != wantGone {
					t.Errorf("%s deleted = %t; want %t", id, u.Deleted, wantGone)
				}
				if wantGone && (u.DeletedAt != deletedAt || u.Email != nil || u.FullName != "" || u.Username != "") {
					t.Errorf("%s = %+v; want a tombstone deleted at %d without personal data", id, u, int64(deletedAt))
				}
			}
		})
	}
}

func TestReconcileRateLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		limits     []string // Retry-After of the 429s the stand-in gives first
		maxRetries int
		wantErr    bool
		minTime    time.Duration
	}{
		{"one 429 then success", []string{"1"}, 0, false, time.Second},
		{"one 429 without Retry-After then success", []string{""}, 0, false, time.Second},
		{"Retry-After too long", []string{"120"}, 0, true, 0},
		{"429 more often than allowed", []string{"1", "1"}, 1, true, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			fake := clerkfake.New(t, testKey, fakeUsers(3, 1000)...)
			fake.RateLimit(tt.limits...)
			api := newAPI(t, fake, clerk.APIConfig{MaxRateLimitRetries: tt.maxRetries})
			r := reconcile.New(st, api, testLogger(t), reconcile.Config{PageSize: 2, MaxDeleteShare: 0.1})

			start := time.Now()
			got, err := r.Run(t.Context())
			elapsed := time.Since(start)
			if tt.wantErr {
				var rl *clerk.RateLimitedError
				if !errors.Is(err, clerk.ErrRateLimited) || !errors.As(err, &rl) {
					t.Fatalf("Run = %+v, %v; want an error wrapping ErrRateLimited", got, err)
				}
				if elapsed > 5*time.Second {
					t.Errorf("Run gave up after %s; want at once (bounded)", elapsed)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
			if want := (reconcile.Summary{Pages: 2, Counts: reconcile.Counts{Seen: 3, Inserted: 3}}); got != want {
				t.Errorf("Run = %+v; want %+v", got, want)
			}
			if elapsed < tt.minTime {
				t.Errorf("Run took %s; want at least the Retry-After of %s", elapsed, tt.minTime)
			}
			reqs := fake.Requests()
			if len(reqs) < 2 || reqs[0] != "429 "+reqs[1] {
				t.Errorf("requests = %q; want the first page asked again after its 429", reqs)
			}
		})
	}
}

func TestReconcileDatabaseError(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	if err := st.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	fake := clerkfake.New(t, testKey, fakeUsers(3, 1000)...)
	got, err := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 0.1}).Run(t.Context())
	if !errors.Is(err, store.ErrDatabase) {
		t.Fatalf("Run against a closed store = %+v, %v; want an error wrapping store.ErrDatabase", got, err)
	}
	if got.Pages != 0 {
		t.Errorf("Run counted %d pages; want 0 (the first page's step failed)", got.Pages)
	}
}

func TestReconcileWrongKey(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	fake := clerkfake.New(t, testKey, fakeUsers(3, 1000)...)
	seed(t, st, fakeUsers(3, 1000)...)
	api := clerk.NewAPI(clerk.APIConfig{SecretKey: "sk_test_wrong", APIURL: fake.URL}, testLogger(t))
	got, err := reconcile.New(st, api, testLogger(t), reconcile.Config{MaxDeleteShare: 1}).Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "authentication_invalid") {
		t.Fatalf("Run with a wrong key = %+v, %v; want Clerk's authentication error", got, err)
	}
	if ids, _ := st.LiveUserIDs(t.Context()); len(ids) != 3 {
		t.Errorf("live users after a failed Run = %d; want 3 (nothing deleted)", len(ids))
	}
}

// TestReconcileUsernameHeldByForeignDocument: a page holding a user whose Clerk username is
// held by the application's own document (its _id not a string) is written whole, that user
// included (with the username suffixed), and the run goes on to its deletions; the
// application's document is left alone. Run as Inngest runs it, through the serve handler.
func TestReconcileUsernameHeldByForeignDocument(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	srv.InsertForeignUser(t, st, "alice")
	seed(t, st, fakeUsers(3, 1000)...)
	seed(t, st, clerkfake.NewUser("user_gone", "Gone", 1000))
	inClerk := fakeUsers(3, 2000)
	inClerk[1].Username = "alice"
	fake := clerkfake.New(t, testKey, inClerk...)
	r := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 0.5})

	_, got := driveRun(t, r, 30)
	if want := (reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 3, Updated: 3, Deleted: 1}}); got != want {
		t.Errorf("run output = %+v; want %+v", got, want)
	}
	for _, c := range inClerk {
		if u := get(t, st, c.ID); u.UpdatedAt != 2000 || u.FullName != "First Doe" || u.Email == nil || *u.Email != c.Email {
			t.Errorf("%s = %+v; want Clerk's user at 2000", c.ID, u)
		}
	}
	if u := get(t, st, "user_02"); u.ClerkUsername != "alice" || !strings.HasPrefix(u.Username, "alice") || u.Username == "alice" {
		t.Errorf("user_02 username %q, Clerk username %q; want alice with a suffix, claiming alice", u.Username, u.ClerkUsername)
	}
	if u := get(t, st, "user_gone"); !u.Deleted || u.DeletedAt != deletedAt {
		t.Errorf("user_gone = %+v; want a tombstone deleted at %d", u, int64(deletedAt))
	}
	if n, err := st.Count(t.Context()); err != nil || n != 5 {
		t.Errorf("Count = %d, %v; want 5 (four users and the application's document)", n, err)
	}
}

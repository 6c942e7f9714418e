package reconcile_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	sdkerrors "github.com/inngest/inngestgo/errors"

	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
)

// TestStepBudget: a step whose Clerk request takes longer than the step budget gives up at its
// deadline, with an error Inngest retries, instead of holding the request to the service
// past the server's write timeout. (The client has no timeout of its own, and the test gives
// up on Run by cancelling, so only the budget ends a step with context.DeadlineExceeded.)
func TestStepBudget(t *testing.T) {
	tests := []struct {
		name string
		slow string // the requests the stand-in answers only after a minute
	}{
		{"check-instance: GET /v1/jwks", "GET /v1/jwks"},
		{"survey-0: GET /v1/users", "GET /v1/users?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			fake := clerkfake.New(t, testKey, fakeUsers(3, 1000)...)
			fake.Delay(tt.slow, time.Minute)
			api := newAPI(t, fake, clerk.APIConfig{HTTPClient: &http.Client{}})
			r := reconcile.New(st, api, testLogger(t), reconcile.Config{MaxDeleteShare: 0.1})
			reconcile.SetStepBudget(r, 500*time.Millisecond)
			ctx, cancel := context.WithCancel(t.Context())
			defer time.AfterFunc(5*time.Second, cancel).Stop()

			got, err := r.Run(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Run = %+v, %v; want an error wrapping context.DeadlineExceeded (the step's budget)", got, err)
			}
			if reqs := fake.Requests(); len(reqs) == 0 || !strings.HasPrefix(reqs[len(reqs)-1], tt.slow) {
				t.Errorf("requests = %q; want the last one %s..., the one cut off", reqs, tt.slow)
			}
			if n, _ := st.Count(t.Context()); n != 0 || got != (reconcile.Summary{}) {
				t.Errorf("Run = %+v, %d documents; want nothing done", got, n)
			}
		})
	}
}

// TestDeleteStepsSplitWithinBudget: confirming deletions one lookup at a time takes longer
// than one step's budget, so each delete step stops starting lookups past half its budget and
// the next step goes on from there, until every candidate is confirmed.
func TestDeleteStepsSplitWithinBudget(t *testing.T) {
	st := openStore(t)
	gone := []string{"user_gone1", "user_gone2", "user_gone3"}
	seed(t, st, fakeUsers(10, 1000)...)
	for _, id := range gone {
		seed(t, st, clerkfake.NewUser(id, "Gone", 1000))
	}
	fake := clerkfake.New(t, testKey, fakeUsers(10, 1000)...)
	// A lookup takes 400 ms: past half a 700 ms budget, so a step makes one.
	fake.Delay("GET /v1/users/user_", 400*time.Millisecond)
	r := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 0.5})
	reconcile.SetStepBudget(r, 700*time.Millisecond)

	calls, got := driveRun(t, r, 20)
	var deletes []string
	for _, c := range calls {
		if strings.HasPrefix(c.Step, "delete-") {
			deletes = append(deletes, c.Step+" "+c.Op)
		}
	}
	if want := []string{"delete-0 StepRun", "delete-1 StepRun", "delete-2 StepRun"}; !reflect.DeepEqual(deletes, want) {
		t.Errorf("delete steps = %q; want %q (one 400 ms lookup each within a 700 ms budget)", deletes, want)
	}
	var lookups []string
	for _, req := range fake.Requests() {
		if strings.HasPrefix(req, "GET /v1/users/user_") {
			lookups = append(lookups, req)
		}
	}
	if want := []string{"GET /v1/users/user_gone1", "GET /v1/users/user_gone2", "GET /v1/users/user_gone3"}; !reflect.DeepEqual(lookups, want) {
		t.Errorf("lookups = %q; want %q (no lookup started that the budget cannot finish)", lookups, want)
	}
	if want := (reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 10, Skipped: 10, Deleted: 3}}); got != want {
		t.Errorf("run output = %+v; want %+v", got, want)
	}
	for _, id := range gone {
		if u := get(t, st, id); !u.Deleted {
			t.Errorf("%s deleted = false; want a tombstone", id)
		}
	}
}

// TestStepRetryAt: when Clerk answers 429 with a Retry-After the step cannot wait out (longer
// than a step waits, or than its budget has left), the step fails at once with an
// inngestgo.RetryAtError at the time Clerk asked for, so that Inngest calls it again then.
func TestStepRetryAt(t *testing.T) {
	tests := []struct {
		name   string
		limits []string      // Retry-After of the 429s GET /v1/jwks (the first step) gets
		budget time.Duration // the step budget; 0: StepBudget
		want   time.Duration // RetryAt, from now
		jwks   int           // GET /v1/jwks requests made, 429s included
	}{
		{"Retry-After 120 s", []string{"120"}, 0, 120 * time.Second, 1},
		{"Retry-After as an HTTP date", []string{time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)}, 0, 90 * time.Second, 1},
		{"Retry-After 10 s, longer than a step waits", []string{"10"}, 0, 10 * time.Second, 1},
		{"Retry-After 3 s, longer than the budget left", []string{"3"}, time.Second, 3 * time.Second, 1},
		{"1 s waited out in the step, then 120 s", []string{"1", "120"}, 0, 120 * time.Second, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			fake := clerkfake.New(t, testKey, fakeUsers(3, 1000)...)
			fake.RateLimitOn("GET /v1/jwks", tt.limits...)
			r := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 0.1})
			if tt.budget > 0 {
				reconcile.SetStepBudget(r, tt.budget)
			}

			_, err := r.Run(t.Context())
			now := time.Now()
			at := sdkerrors.GetRetryAtTime(err)
			if at == nil || !errors.Is(err, clerk.ErrRateLimited) {
				t.Fatalf("Run = %v; want a RetryAtError at +%s wrapping ErrRateLimited", err, tt.want)
			}
			if d := at.Sub(now); d < tt.want-2*time.Second || d > tt.want+time.Second {
				t.Errorf("Run = RetryAtError at +%s; want RetryAtError at +%s", d.Round(time.Second), tt.want)
			}
			if n := len(fake.Requests()); n != tt.jwks {
				t.Errorf("requests = %q; want %d GET /v1/jwks and nothing else", fake.Requests(), tt.jwks)
			}
		})
	}
}

// recordedRuns is a Metrics recording every finished run.
type recordedRuns struct {
	mu      sync.Mutex
	runs    []reconcile.Summary
	errs    []error
	orgRuns []reconcile.OrganizationsSummary
	orgErrs []error
}

func (m *recordedRuns) ReconciledOrganizations(sum reconcile.OrganizationsSummary, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.orgRuns, m.orgErrs = append(m.orgRuns, sum), append(m.orgErrs, err)
}

func (m *recordedRuns) Reconciled(sum reconcile.Summary, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs, m.errs = append(m.runs, sum), append(m.errs, err)
}

// TestReconcileAcrossRetries: a run that Clerk rate-limits in several steps answers each of
// those calls with Clerk's Retry-After, from the step that got the 429, and completes once
// Inngest calls the steps again, with the summary and writes of an undisturbed run. A delete
// step rate-limited after its first candidate keeps that one (so it is counted), and the next
// step starts at the rate-limited one.
func TestReconcileAcrossRetries(t *testing.T) {
	st := openStore(t)
	seed(t, st, fakeUsers(10, 1000)...)
	gone := []string{"user_gone1", "user_gone2"}
	for _, id := range gone {
		seed(t, st, clerkfake.NewUser(id, "Gone", 1000))
	}
	fake := clerkfake.New(t, testKey, fakeUsers(10, 2000)...)
	fake.RateLimitOn("GET /v1/jwks", "120")
	fake.RateLimitOn("GET /v1/users?limit=4&offset=8", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
	fake.RateLimitOn("GET /v1/users/user_gone2", "75", "75")
	m := &recordedRuns{}
	r := newReconciler(t, st, fake, reconcile.Config{PageSize: 4, MaxDeleteShare: 0.5, Metrics: m})

	start := time.Now()
	calls, got := driveRun(t, r, 30)
	type retry struct {
		Step  string
		After string // the Retry-After answered, to 5 s: from the call for Retry-After in seconds, from the run's start for the HTTP date
	}
	var retries []retry
	for _, c := range calls {
		switch {
		case c.Op == "StepError" && c.RetryAt.IsZero():
			retries = append(retries, retry{c.Step, "none"})
		case c.Op == "StepError":
			// Measured from the call that got the 429 for Retry-After in seconds, so that a slow
			// machine's earlier steps do not shift it; the HTTP date was fixed at the start.
			from := c.At
			if c.Step == "list-8" {
				from = start
			}
			retries = append(retries, retry{c.Step, c.RetryAt.Sub(from).Round(5 * time.Second).String()})
		case !c.RetryAt.IsZero():
			t.Errorf("call %+v: Retry-After without a failed step", c)
		}
	}
	wantRetries := []retry{{"check-instance", "2m0s"}, {"list-8", "1m30s"}, {"delete-1", "1m15s"}}
	if !reflect.DeepEqual(retries, wantRetries) {
		t.Errorf("failed steps (step, Retry-After) = %v; want %v", retries, wantRetries)
	}
	want := reconcile.Summary{Pages: 3, Counts: reconcile.Counts{Seen: 10, Updated: 10, Deleted: 2}}
	if got != want {
		t.Errorf("run output = %+v; want %+v", got, want)
	}
	if !reflect.DeepEqual(m.runs, []reconcile.Summary{want}) || m.errs[0] != nil {
		t.Errorf("runs reported to Metrics = %+v, %v; want one, %+v without error", m.runs, m.errs, want)
	}
	for _, id := range gone {
		if u := get(t, st, id); !u.Deleted || u.DeletedAt != deletedAt {
			t.Errorf("%s = %+v; want a tombstone deleted at %d", id, u, int64(deletedAt))
		}
	}
	for _, u := range fakeUsers(10, 2000) {
		if s := get(t, st, u.ID); s.UpdatedAt != 2000 || s.Deleted {
			t.Errorf("%s updated_at = %d, deleted %t; want Clerk's 2000, live", u.ID, s.UpdatedAt, s.Deleted)
		}
	}
}

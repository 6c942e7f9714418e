// Package reconcile brings the users collection back in line with Clerk, for what webhooks
// missed: reconcile-users-with-clerk (a cron Inngest function) pages through Clerk's Backend
// API and writes every user through the store's guarded upsert, so it never overwrites a newer
// webhook write, then tombstones the live users Clerk no longer has, with a safety cap. Before
// it writes anything it checks that the secret key reads the Clerk instance the collection
// follows, and that Clerk's list shares enough users with the collection. The backfill command
// makes the same checks (CheckImport) before it imports from the API (package backfill).
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/step"
	"golang.org/x/sync/errgroup"

	"clerksync/clerk"
	"clerksync/store"
)

// Store is the storage reconciliation reads and writes. *store.Store implements it.
type Store interface {
	// UpsertUser writes u unless the stored user is as new or newer, or deleted.
	UpsertUser(ctx context.Context, u store.User) (store.Outcome, error)
	// DeleteUser turns the user into a tombstone that no later upsert brings back.
	DeleteUser(ctx context.Context, id string, deletedAt int64) (store.Outcome, error)
	// LiveUserIDs returns the ids of the users not deleted.
	LiveUserIDs(ctx context.Context) ([]string, error)
	// ClerkInstance returns the id of the Clerk instance the collection follows, "" for none.
	ClerkInstance(ctx context.Context) (string, error)
	// RecordClerkInstance records id as that instance unless one is recorded already; it
	// returns the instance recorded afterwards.
	RecordClerkInstance(ctx context.Context, id string, at time.Time) (string, error)
}

// Clerk is where reconciliation reads the users from. *clerk.API implements it.
type Clerk interface {
	// InstanceID returns the id (ins_...) of the Clerk instance the users are read from.
	InstanceID(ctx context.Context) (string, error)
	// ListUsers returns at most limit users from offset on, in a stable order.
	ListUsers(ctx context.Context, limit, offset int) (clerk.UserPage, error)
	// GetUser returns one user, or an error wrapping clerk.ErrUserNotFound when Clerk has none.
	GetUser(ctx context.Context, id string) (clerk.User, error)
}

// ErrWrongInstance means the secret key reads another Clerk instance than the one the users
// collection follows (recorded by the first reconciliation or backfill that wrote to it):
// every stored user would look deleted. Nothing was written or deleted.
var ErrWrongInstance = errors.New("reconcile: CLERK_SECRET_KEY belongs to another Clerk instance than the one the users collection follows")

// ErrFewShared means Clerk's list shares fewer than MinSharedShare of the live users in the
// database (a key for another instance, or the wrong database): nothing was written.
var ErrFewShared = errors.New("reconcile: Clerk's users are not the database's")

// DefaultMinSharedShare is the share of the live users that Clerk's list must have unless
// Config says otherwise.
const DefaultMinSharedShare = 0.5

// Config tunes a reconciliation.
type Config struct {
	// PageSize is how many users each page (and step) asks Clerk for: 1 to
	// clerk.MaxPageSize; 0 means clerk.MaxPageSize.
	PageSize int
	// MaxDeleteShare is the largest share (0 to 1) of the live users one run may delete. When
	// more are missing from Clerk, the run deletes none of them and reports them as refused
	// (a wrong secret key or an empty Clerk instance must not empty the collection).
	MaxDeleteShare float64
	// AllowMassDelete lifts MaxDeleteShare for a run that must delete that many, and
	// MinSharedShare for a run whose list shares that few users with the database.
	AllowMassDelete bool
	// MinSharedShare is the smallest share (0 to 1) of the live users in the database that
	// Clerk's list must have for a run to write or delete anything; 0 (or less) means
	// DefaultMinSharedShare. An empty database (a first import) is never refused.
	MinSharedShare float64
	// Now is the clock for deletion times; nil means time.Now.
	Now func() time.Time
	// Metrics is told the result of every finished run of the cron function; nil counts
	// nothing.
	Metrics Metrics
}

// Metrics counts reconciliation results. The service's Prometheus metrics implement it.
type Metrics interface {
	// Reconciled is called once per finished run with its summary and error (nil: success).
	Reconciled(sum Summary, err error)
}

// nopMetrics counts nothing.
type nopMetrics struct{}

func (nopMetrics) Reconciled(Summary, error) {}

// maxPages bounds the pages of one pass over Clerk's list (a run makes two: the survey, then
// the writes), so that a run stays below Inngest's limit of 1,000 steps.
const maxPages = 450

// deleteChunk is the most deletion candidates one step confirms and deletes.
const deleteChunk = 100

// StepBudget is the longest one step of a reconciliation may take. Inngest runs each step in
// its own HTTP request to the service, which the server's write timeout (2 minutes) cuts off,
// losing the step's work; so each step runs under a deadline of StepBudget, well inside that
// timeout. Within a step, a 429 is waited out only when Clerk asks for at most maxStepWait and
// the wait fits before the deadline; otherwise the step fails at once with an
// inngestgo.RetryAtError at the time Clerk's Retry-After names, and Inngest retries it then. A
// delete step starts no new lookup past half its budget and returns what it did; the next
// step goes on from there. A step cut off by its deadline fails with an error wrapping
// context.DeadlineExceeded, and Inngest retries it.
const StepBudget = 60 * time.Second

// maxStepWait is the longest 429 delay a step sits out itself; a longer one goes back to
// Inngest, which calls the step again when Clerk asked, holding no request meanwhile.
const maxStepWait = 5 * time.Second

// writeWorkers bounds the concurrent upserts of one page.
const writeWorkers = 4

// Summary is what a reconciliation did; the Inngest dashboard shows it as the run's output.
type Summary struct {
	// Pages and Seen count the pages read and the users on them.
	Pages int `json:"pages"`
	Seen  int `json:"seen"`
	// Inserted, Updated and Skipped count the upserts' outcomes (Skipped: the database had
	// that version or a newer one, or a tombstone).
	Inserted int `json:"inserted"`
	Updated  int `json:"updated"`
	Skipped  int `json:"skipped"`
	// Failed counts users that could not be written (no usable data); each
	// is logged.
	Failed int `json:"failed"`
	// Deleted counts live users that Clerk no longer has, now tombstones.
	Deleted int `json:"deleted"`
	// StillInClerk counts live users missing from the pages that Clerk still has (offset
	// paging skips a user when another is deleted between pages); they are written instead.
	StillInClerk int `json:"still_in_clerk"`
	// Refused counts the deletions not made because they exceeded MaxDeleteShare.
	Refused int `json:"refused"`
	// RefusedForeign is true when the run wrote and deleted nothing because Clerk's list
	// shared fewer than MinSharedShare of the live users (a key for another instance?).
	RefusedForeign bool `json:"refused_foreign"`
}

// Reconciler reconciles the users collection with Clerk.
type Reconciler struct {
	users  Store
	api    Clerk
	logger *slog.Logger
	cfg    Config
	// budget is the deadline of each step: StepBudget, shorter in tests.
	budget time.Duration
}

// New returns a Reconciler reading users from api, writing them to users and logging to
// logger.
func New(users Store, api Clerk, logger *slog.Logger, cfg Config) *Reconciler {
	if cfg.PageSize <= 0 || cfg.PageSize > clerk.MaxPageSize {
		cfg.PageSize = clerk.MaxPageSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MinSharedShare <= 0 {
		cfg.MinSharedShare = DefaultMinSharedShare
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopMetrics{}
	}
	return &Reconciler{users: users, api: api, logger: logger, cfg: cfg, budget: StepBudget}
}

// instanceCheck is the memoized output of the check-instance step.
type instanceCheck struct {
	// Instance is the Clerk instance the secret key reads.
	Instance string `json:"instance"`
	// Recorded is the instance the collection follows, "" when none is recorded yet.
	Recorded string `json:"recorded"`
}

// surveyPage is the memoized output of one survey step: the ids of one page of Clerk's list.
type surveyPage struct {
	// Count is how many users Clerk returned; fewer than the page size ends the list.
	Count int      `json:"count"`
	IDs   []string `json:"ids"`
}

// Check is what the checks before a run's first write found (the memoized output of the
// check-overlap step).
type Check struct {
	// Instance is the Clerk instance the secret key reads (ins_...).
	Instance string `json:"instance"`
	// Live counts the live users in the database before the run wrote anything; the safety
	// cap on deletions is a share of it.
	Live int `json:"live"`
	// Listed counts the users on Clerk's list, and Shared the live users among them.
	Listed int `json:"listed"`
	Shared int `json:"shared"`
	// Refused is true when Shared is below MinSharedShare of Live (and AllowMassDelete is
	// off): the run must write and delete nothing.
	Refused bool `json:"refused"`
}

// pageResult is the memoized output of one page step.
type pageResult struct {
	Offset int `json:"offset"`
	// Count is how many users Clerk returned; fewer than the page size ends the list.
	Count int `json:"count"`
	// IDs are every user id on the page, written or not: they all exist in Clerk.
	IDs      []string `json:"ids"`
	Inserted int      `json:"inserted"`
	Updated  int      `json:"updated"`
	Skipped  int      `json:"skipped"`
	Failed   int      `json:"failed"`
}

// deletionPlan is the memoized output of the plan-deletions step.
type deletionPlan struct {
	// Live counts the live users before the run, the base of the safety cap.
	Live       int      `json:"live"`
	Candidates []string `json:"candidates,omitempty"`
	Refused    int      `json:"refused,omitempty"`
}

// deletionResult is the memoized output of one delete step.
type deletionResult struct {
	// Done counts the candidates the step dealt with, from the first of its chunk on; the
	// next step starts after them.
	Done         int `json:"done"`
	Deleted      int `json:"deleted"`
	StillInClerk int `json:"still_in_clerk"`
	Inserted     int `json:"inserted"`
	Updated      int `json:"updated"`
	Skipped      int `json:"skipped"`
	Failed       int `json:"failed"`
}

// Run reconciles once, in steps, and writes nothing before its checks have passed:
// check-instance reads which Clerk instance the secret key belongs to and refuses another one
// than the collection follows; each survey-N step (survey-0, survey-500, ...) reads one page of
// Clerk's list, keeping only the ids; check-overlap compares them with the live users stored,
// refuses a list that shares fewer than MinSharedShare of them, and records the instance when
// none is recorded yet. Then each page-N step reads its page again and writes every user on it
// through the guarded upsert; plan-deletions lists the live users missing from the pages and
// applies the safety cap (a share of the live users before the run), and each delete-N step
// confirms up to 100 of them with Clerk (404: gone) and tombstones those gone, N being the
// index of its first candidate. Each step runs within StepBudget. Inside an Inngest run each
// step is retried on its own (a refused instance is not retried), no earlier than Clerk's
// Retry-After; outside one (tests, backfill) the steps run inline.
//
// It returns the summary so far and the first error that a step gave up on: an error
// wrapping ErrWrongInstance, store.ErrDatabase, clerk.ErrRateLimited (also an
// inngestgo.RetryAtError when Clerk said when to come back), context.DeadlineExceeded (a step
// ran out of its budget), or Clerk's or the network's error. Refusing a mass deletion, or a
// list that shares too few users, is not an error: the summary reports it (Refused,
// RefusedForeign) and the log says what to check and how to allow it.
func (r *Reconciler) Run(ctx context.Context) (Summary, error) {
	var sum Summary
	inst, err := runStep(ctx, r, "check-instance", r.checkInstance)
	if err != nil {
		return sum, err
	}
	listed, err := r.survey(ctx, func(ctx context.Context, offset int) (surveyPage, error) {
		return runStep(ctx, r, fmt.Sprintf("survey-%d", offset), func(ctx context.Context) (surveyPage, error) {
			return r.surveyPage(ctx, offset)
		})
	})
	if err != nil {
		return sum, err
	}
	chk, err := runStep(ctx, r, "check-overlap", func(ctx context.Context) (Check, error) {
		live, err := r.users.LiveUserIDs(ctx)
		if err != nil {
			r.logger.Error("listing live users failed", "error", err)
			return Check{}, err
		}
		return r.checkOverlap(ctx, inst, live, listed)
	})
	if err != nil {
		return sum, err
	}
	if chk.Refused {
		sum.RefusedForeign = true
		r.logger.Info("reconciliation with Clerk done: refused, nothing written or deleted", "refused_foreign", true,
			"clerk_instance", chk.Instance, "live_users", chk.Live, "listed_by_clerk", chk.Listed, "shared", chk.Shared)
		return sum, nil
	}
	seen, err := r.syncPages(ctx, &sum)
	if err != nil {
		return sum, err
	}
	plan, err := runStep(ctx, r, "plan-deletions", func(ctx context.Context) (deletionPlan, error) {
		return r.planDeletions(ctx, seen, chk.Live)
	})
	if err != nil {
		return sum, err
	}
	sum.Refused = plan.Refused
	if err := r.deleteCandidates(ctx, plan.Candidates, &sum); err != nil {
		return sum, err
	}
	r.logger.Info("reconciliation with Clerk done",
		"pages", sum.Pages, "seen", sum.Seen, "inserted", sum.Inserted, "updated", sum.Updated, "skipped", sum.Skipped,
		"failed", sum.Failed, "deleted", sum.Deleted, "still_in_clerk", sum.StillInClerk, "refused", sum.Refused)
	return sum, nil
}

// runStep runs f as the step id (inline outside an Inngest run) within r's step budget: f's
// context ends that long after the step starts, and under it Clerk's 429s are waited out only
// up to maxStepWait. It returns f's result and error; when f failed on a 429 whose Retry-After
// said when to come back, the error is an inngestgo.RetryAtError at that time, returned from
// inside the step so that Inngest retries the step then.
func runStep[T any](ctx context.Context, r *Reconciler, id string, f func(context.Context) (T, error)) (T, error) {
	return step.Run(ctx, id, func(ctx context.Context) (T, error) {
		ctx, cancel := context.WithTimeout(ctx, r.budget)
		defer cancel()
		res, err := f(clerk.WithMaxRetryWait(ctx, maxStepWait))
		return res, retryWhenAsked(err, time.Now())
	})
}

// retryWhenAsked returns err, as an inngestgo.RetryAtError at now plus Clerk's Retry-After when
// err is a 429 that carried one, and unchanged otherwise (nil stays nil).
func retryWhenAsked(err error, now time.Time) error {
	var rl *clerk.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		return err
	}
	return inngestgo.RetryAtError(err, now.Add(rl.RetryAfter))
}

// syncPages runs one page-N step per page of Clerk's list, adding what they did to sum, and
// returns the ids on the pages. It returns the error of the first page that fails for good,
// or one when the list has more than maxPages pages.
func (r *Reconciler) syncPages(ctx context.Context, sum *Summary) (map[string]struct{}, error) {
	seen := map[string]struct{}{}
	for offset := 0; ; offset += r.cfg.PageSize {
		if sum.Pages >= maxPages {
			return nil, fmt.Errorf("reconcile: more than %d pages of %d users; raise the page size", maxPages, r.cfg.PageSize)
		}
		page, err := runStep(ctx, r, fmt.Sprintf("page-%d", offset), func(ctx context.Context) (pageResult, error) {
			return r.syncPage(ctx, offset)
		})
		if err != nil {
			return nil, err
		}
		sum.Pages++
		sum.Seen += len(page.IDs)
		sum.Inserted += page.Inserted
		sum.Updated += page.Updated
		sum.Skipped += page.Skipped
		sum.Failed += page.Failed
		for _, id := range page.IDs {
			seen[id] = struct{}{}
		}
		if page.Count < r.cfg.PageSize {
			return seen, nil
		}
	}
}

// deleteCandidates runs delete-N steps until every candidate is dealt with, each step taking
// up to deleteChunk of them from the first one the steps before left, and adds what they did
// to sum. It returns the error of the first step that fails for good.
func (r *Reconciler) deleteCandidates(ctx context.Context, candidates []string, sum *Summary) error {
	for i := 0; i < len(candidates); {
		chunk := candidates[i:min(i+deleteChunk, len(candidates))]
		res, err := runStep(ctx, r, fmt.Sprintf("delete-%d", i), func(ctx context.Context) (deletionResult, error) {
			return r.deleteMissing(ctx, chunk, time.Now().Add(r.budget/2))
		})
		if err != nil {
			return err
		}
		sum.Deleted += res.Deleted
		sum.StillInClerk += res.StillInClerk
		sum.Inserted += res.Inserted
		sum.Updated += res.Updated
		sum.Skipped += res.Skipped
		sum.Failed += res.Failed
		if res.Done <= 0 || res.Done > len(chunk) {
			// Memoized by a version whose delete steps always did their whole chunk.
			res.Done = len(chunk)
		}
		i += res.Done
	}
	return nil
}

// CheckImport makes the checks of Run for an import that writes Clerk's users without
// deleting any (backfill from the API), before it writes anything: it refuses a secret key
// for another Clerk instance than the collection follows; when none is recorded yet and the
// database has live users, it surveys Clerk's list and refuses one that shares fewer than
// MinSharedShare of them (unless AllowMassDelete); then it records the instance. A recorded
// instance that matches needs no survey.
//
// It returns what it found, and an error wrapping ErrWrongInstance or ErrFewShared when it
// refuses (the message says what to check), store.ErrDatabase, clerk.ErrRateLimited, or
// Clerk's or the network's error.
func (r *Reconciler) CheckImport(ctx context.Context) (Check, error) {
	inst, err := r.checkInstance(ctx)
	if err != nil {
		return Check{}, err
	}
	if inst.Recorded != "" {
		return Check{Instance: inst.Instance}, nil
	}
	live, err := r.users.LiveUserIDs(ctx)
	if err != nil {
		return Check{}, err
	}
	var listed []string
	if len(live) > 0 {
		r.logger.Info("no Clerk instance recorded for this database yet: reading Clerk's list once to compare it with the stored users",
			"clerk_instance", inst.Instance, "live_users", len(live))
		if listed, err = r.survey(ctx, r.surveyPage); err != nil {
			return Check{}, err
		}
	}
	chk, err := r.checkOverlap(ctx, inst, live, listed)
	if err != nil {
		return chk, err
	}
	if chk.Refused {
		return chk, fmt.Errorf("%w: only %d of the %d live users in the database are among the %d users of Clerk instance %s; nothing was written. "+
			"Check that CLERK_SECRET_KEY is the secret key of the Clerk instance this database follows, and that MONGODB_URI names the right database; "+
			"if the database really must take this instance's users, set RECONCILE_ALLOW_MASS_DELETE=1 for one run",
			ErrFewShared, chk.Shared, chk.Live, chk.Listed, chk.Instance)
	}
	return chk, nil
}

// checkInstance reads the Clerk instance the secret key belongs to and the one the collection
// follows. It returns an error wrapping ErrWrongInstance (not to be retried) when they
// differ, and the error of Clerk or the database when either cannot be read.
func (r *Reconciler) checkInstance(ctx context.Context) (instanceCheck, error) {
	recorded, err := r.users.ClerkInstance(ctx)
	if err != nil {
		r.logger.Error("reading the Clerk instance the database follows failed", "error", err)
		return instanceCheck{}, err
	}
	id, err := r.api.InstanceID(ctx)
	if err != nil {
		r.logger.Error("reading the Clerk instance of CLERK_SECRET_KEY failed", "error", err)
		return instanceCheck{}, err
	}
	if recorded != "" && recorded != id {
		return instanceCheck{}, r.wrongInstance(id, recorded)
	}
	return instanceCheck{Instance: id, Recorded: recorded}, nil
}

// wrongInstance logs and returns the refusal of a key for instance keyInst when the collection
// follows recorded: an error wrapping ErrWrongInstance that Inngest does not retry.
func (r *Reconciler) wrongInstance(keyInst, recorded string) error {
	err := fmt.Errorf("%w: the key reads Clerk instance %s, the database follows %s; nothing was written or deleted. "+
		"Check that CLERK_SECRET_KEY is the secret key of instance %s (Clerk Dashboard -> API keys). "+
		"If the database really must follow %s from now on, run `clerk-user-sync forget-clerk-instance` with the service's database settings "+
		`(or mongosh "$MONGODB_URI" --eval 'db.%s.deleteOne({_id: "%s"})'), then run again`,
		ErrWrongInstance, keyInst, recorded, recorded, keyInst, store.MetaCollection, store.ClerkInstanceDoc)
	r.logger.Error("refusing to read another Clerk instance than the database follows", "error", err)
	return inngestgo.NoRetryError(err)
}

// survey reads Clerk's whole list, one page at a time through readPage (Run makes each page a
// survey-N step), and returns the ids on it. It returns the error of the first page that
// cannot be read, or one when the list has more than maxPages pages.
func (r *Reconciler) survey(ctx context.Context, readPage func(ctx context.Context, offset int) (surveyPage, error)) ([]string, error) {
	var ids []string
	for offset, pages := 0, 0; ; offset, pages = offset+r.cfg.PageSize, pages+1 {
		if pages >= maxPages {
			return nil, fmt.Errorf("reconcile: more than %d pages of %d users; raise the page size", maxPages, r.cfg.PageSize)
		}
		page, err := readPage(ctx, offset)
		if err != nil {
			return nil, err
		}
		ids = append(ids, page.IDs...)
		if page.Count < r.cfg.PageSize {
			return ids, nil
		}
	}
}

// surveyPage reads the page of Clerk's list at offset, keeping only the ids. It returns
// Clerk's or the network's error.
func (r *Reconciler) surveyPage(ctx context.Context, offset int) (surveyPage, error) {
	p, err := r.api.ListUsers(ctx, r.cfg.PageSize, offset)
	if err != nil {
		r.logger.Error("reading a page of Clerk users failed", "offset", offset, "error", err)
		return surveyPage{}, err
	}
	res := surveyPage{Count: len(p.Users), IDs: make([]string, 0, len(p.Users))}
	for _, u := range p.Users {
		if u.ID != "" {
			res.IDs = append(res.IDs, u.ID)
		}
	}
	return res, nil
}

// checkOverlap compares the live users stored before any write with the ids on Clerk's list:
// when the database has live users and fewer than MinSharedShare of them are listed, it
// refuses (Refused, and a warning saying what to check) unless AllowMassDelete. Otherwise it
// records the instance when none is recorded yet. It returns an error wrapping
// store.ErrDatabase when the record cannot be written, and one wrapping ErrWrongInstance when
// another instance was recorded meanwhile.
func (r *Reconciler) checkOverlap(ctx context.Context, inst instanceCheck, live, listed []string) (Check, error) {
	inList := make(map[string]struct{}, len(listed))
	for _, id := range listed {
		inList[id] = struct{}{}
	}
	chk := Check{Instance: inst.Instance, Live: len(live), Listed: len(inList)}
	for _, id := range live {
		if _, ok := inList[id]; ok {
			chk.Shared++
		}
	}
	attrs := []any{"clerk_instance", inst.Instance, "live_users", chk.Live, "listed_by_clerk", chk.Listed, "shared", chk.Shared, "min_shared_share", r.cfg.MinSharedShare}
	if chk.Live > 0 && float64(chk.Shared) < r.cfg.MinSharedShare*float64(chk.Live) {
		if !r.cfg.AllowMassDelete {
			r.logger.Warn("Clerk's list shares too few users with the database: writing and deleting nothing. "+
				"Check that CLERK_SECRET_KEY is the secret key of the Clerk instance this database follows, and that MONGODB_URI names the right database; "+
				"if the database really must take this instance's users, set RECONCILE_ALLOW_MASS_DELETE=1 for one run", attrs...)
			chk.Refused = true
			return chk, nil
		}
		r.logger.Warn("Clerk's list shares few users with the database; going on, as RECONCILE_ALLOW_MASS_DELETE allows", attrs...)
	}
	if inst.Recorded == "" {
		recorded, err := r.users.RecordClerkInstance(ctx, inst.Instance, r.cfg.Now())
		if err != nil {
			r.logger.Error("recording the Clerk instance the database follows failed", "error", err)
			return Check{}, err
		}
		if recorded != inst.Instance {
			return Check{}, r.wrongInstance(inst.Instance, recorded)
		}
		r.logger.Info("recorded the Clerk instance the database follows", "clerk_instance", inst.Instance,
			"collection", store.MetaCollection, "_id", store.ClerkInstanceDoc)
	}
	return chk, nil
}

// syncPage reads the page at offset and writes its users. It returns an error when Clerk
// cannot be read or the database fails; users that cannot be written are counted as Failed.
func (r *Reconciler) syncPage(ctx context.Context, offset int) (pageResult, error) {
	page, err := r.api.ListUsers(ctx, r.cfg.PageSize, offset)
	if err != nil {
		r.logger.Error("reading a page of Clerk users failed", "offset", offset, "error", err)
		return pageResult{}, err
	}
	res := pageResult{Offset: offset, Count: len(page.Users), IDs: make([]string, 0, len(page.Users))}
	for _, u := range page.Users {
		if u.ID != "" {
			res.IDs = append(res.IDs, u.ID)
		}
	}
	outcomes := make([]store.Outcome, len(page.Users))
	errs := make([]error, len(page.Users))
	var g errgroup.Group
	g.SetLimit(writeWorkers)
	for i, u := range page.Users {
		g.Go(func() error {
			// Each user keeps its own error: one that cannot be written must not stop the
			// others, and the page reports the first database error in page order below.
			outcomes[i], errs[i] = r.write(ctx, u)
			return nil
		})
	}
	_ = g.Wait() // every write returns nil; their errors are in errs
	for i := range page.Users {
		switch {
		case errs[i] == nil:
			res.count(outcomes[i])
		case errors.Is(errs[i], store.ErrDatabase) || ctx.Err() != nil:
			return pageResult{}, errs[i]
		default:
			res.Failed++
		}
	}
	return res, nil
}

func (p *pageResult) count(o store.Outcome) {
	switch o {
	case store.Inserted:
		p.Inserted++
	case store.Updated:
		p.Updated++
	default:
		p.Skipped++
	}
}

// write writes one Clerk user through the guarded upsert. A user that cannot be written (no
// id or updated_at) is logged; its error is returned.
func (r *Reconciler) write(ctx context.Context, c clerk.User) (store.Outcome, error) {
	u, err := c.StoreUser(0)
	if err == nil {
		var out store.Outcome
		if out, err = r.users.UpsertUser(ctx, u); err == nil {
			return out, nil
		}
	}
	if !errors.Is(err, store.ErrDatabase) {
		r.logger.Error("Clerk user cannot be written; left out", "user_id", c.ID, "error", err)
	}
	return "", err
}

// planDeletions lists the live users that no page had and applies the safety cap, a share
// of liveBefore, the live users before the run wrote anything (counting the users the run
// just inserted would let a list of strangers delete the collection). It returns an error
// wrapping store.ErrDatabase when the live users cannot be listed.
func (r *Reconciler) planDeletions(ctx context.Context, seen map[string]struct{}, liveBefore int) (deletionPlan, error) {
	live, err := r.users.LiveUserIDs(ctx)
	if err != nil {
		r.logger.Error("listing live users failed", "error", err)
		return deletionPlan{}, err
	}
	plan := deletionPlan{Live: liveBefore}
	for _, id := range live {
		if _, ok := seen[id]; !ok {
			plan.Candidates = append(plan.Candidates, id)
		}
	}
	n := len(plan.Candidates)
	if n == 0 {
		return plan, nil
	}
	limit := r.cfg.MaxDeleteShare * float64(liveBefore)
	if float64(n) > limit {
		if !r.cfg.AllowMassDelete {
			r.logger.Warn("reconciliation refuses a mass deletion: deleting nothing. Check CLERK_SECRET_KEY names the right Clerk instance; "+
				"if these users really are gone, set RECONCILE_ALLOW_MASS_DELETE=1 for one run",
				"missing_from_clerk", n, "live_users_before_run", liveBefore, "max_delete_share", r.cfg.MaxDeleteShare)
			return deletionPlan{Live: liveBefore, Refused: n}, nil
		}
		r.logger.Warn("mass deletion allowed by RECONCILE_ALLOW_MASS_DELETE", "missing_from_clerk", n, "live_users_before_run", liveBefore, "max_delete_share", r.cfg.MaxDeleteShare)
	}
	r.logger.Info("live users missing from Clerk's list; confirming each with Clerk before deleting", "candidates", n, "live_users_before_run", liveBefore)
	return plan, nil
}

// deleteMissing deals with the candidates ids in order, as one delete step: it asks Clerk for
// each; a 404 turns the user into a tombstone, as user.deleted would; a user Clerk still has
// is written instead. It starts no candidate after stopAt but the first, so that the step ends
// within its budget; Done counts the candidates dealt with. When a candidate fails after
// others were dealt with, it returns those (the next step starts at the failing one, and
// fails with its error if it persists). It returns an error only when the first candidate
// fails: Clerk cannot be asked (a 429, the budget's deadline, the network) or the database
// fails.
func (r *Reconciler) deleteMissing(ctx context.Context, ids []string, stopAt time.Time) (deletionResult, error) {
	var res deletionResult
	for _, id := range ids {
		if res.Done > 0 && time.Now().After(stopAt) {
			r.logger.Info("deletion step stopping within its budget; the next step goes on", "done", res.Done, "left", len(ids)-res.Done)
			break
		}
		if err := r.confirmDeletion(ctx, id, &res); err != nil {
			if res.Done == 0 {
				return deletionResult{}, err
			}
			r.logger.Info("deletion step stopping after a failure; the next step starts at that user", "user_id", id, "done", res.Done, "error", err)
			break
		}
		res.Done++
	}
	return res, nil
}

// confirmDeletion asks Clerk for the user id: a 404 turns it into a tombstone, a user Clerk
// still has is written. It counts the outcome in res, and returns an error when Clerk cannot
// be asked or the database fails (a user that cannot be written is counted as Failed).
func (r *Reconciler) confirmDeletion(ctx context.Context, id string, res *deletionResult) error {
	c, err := r.api.GetUser(ctx, id)
	if errors.Is(err, clerk.ErrUserNotFound) {
		out, err := r.users.DeleteUser(ctx, id, r.cfg.Now().UnixMilli())
		if err != nil {
			r.logger.Error("deleting a user missing from Clerk failed", "user_id", id, "error", err)
			return err
		}
		if out == store.Deleted {
			res.Deleted++
			r.logger.Info("user missing from Clerk deleted", "user_id", id)
		}
		return nil
	}
	if err != nil {
		r.logger.Error("confirming a deletion with Clerk failed", "user_id", id, "error", err)
		return err
	}
	out, err := r.write(ctx, c)
	switch {
	case err == nil && out == store.Inserted:
		res.Inserted++
	case err == nil && out == store.Updated:
		res.Updated++
	case err == nil:
		res.Skipped++
	case errors.Is(err, store.ErrDatabase):
		return err
	default:
		res.Failed++
	}
	res.StillInClerk++
	return nil
}

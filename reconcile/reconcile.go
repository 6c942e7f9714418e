// Package reconcile brings the users collection back in line with Clerk, for what webhooks
// missed: reconcile-users-with-clerk (a cron Inngest function) pages through Clerk's Backend
// API and writes every user through the store's guarded upsert, so it never overwrites a newer
// webhook write, then tombstones the live users Clerk no longer has, with a safety cap; its
// steps keep counts and cursors (what they saw is marked in the database), and a pass longer
// than one run's steps goes on in the next run (pass.go). Before
// it writes anything it checks that the secret key reads the Clerk instance the collection
// follows, and that Clerk's list shares enough users with the collection.
// reconcile-organizations-with-clerk does the same for the organizations and, organization by
// organization, their memberships (RunOrganizations). The backfill command makes the same
// checks (CheckImport) before it imports from the API (package backfill).
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
	// UpsertUser writes u unless the stored user is as new or newer, or deleted; with
	// u.Repair, it also writes over a user as new whose Clerk fields differ.
	UpsertUser(ctx context.Context, u store.User) (store.Outcome, error)
	// DeleteUser turns the user into a tombstone that no later upsert brings back.
	DeleteUser(ctx context.Context, id string, deletedAt int64) (store.Outcome, error)
	// LiveUserIDs returns the ids of the users not deleted.
	LiveUserIDs(ctx context.Context) ([]string, error)
	// UpsertOrganization writes o unless the stored organization is as new or newer, or
	// deleted.
	UpsertOrganization(ctx context.Context, o store.Organization) (store.Outcome, error)
	// DeleteOrganization turns the organization into a tombstone, and its live memberships
	// too.
	DeleteOrganization(ctx context.Context, id string, deletedAt int64) (store.Outcome, error)
	// LiveOrganizationIDs returns the ids of the organizations not deleted.
	LiveOrganizationIDs(ctx context.Context) ([]string, error)
	// UpsertMembership writes m unless the stored membership is as new or newer, or
	// deleted; a membership of a deleted organization or user is stored as a tombstone.
	UpsertMembership(ctx context.Context, m store.Membership) (store.Outcome, error)
	// DeleteMembership turns the membership into a tombstone.
	DeleteMembership(ctx context.Context, id string, deletedAt int64) (store.Outcome, error)
	// LiveMemberships returns the live memberships of the organization orgID and the user
	// userID ("" for either: any).
	LiveMemberships(ctx context.Context, orgID, userID string) ([]store.Membership, error)
	// ClerkInstance returns the id of the Clerk instance the collection follows, "" for none.
	ClerkInstance(ctx context.Context) (string, error)
	// RecordClerkInstance records id as that instance unless one is recorded already; it
	// returns the instance recorded afterwards.
	RecordClerkInstance(ctx context.Context, id string, at time.Time) (string, error)

	// The users' pass's bookkeeping (see passState.next), which keeps its memoized steps small.

	// CountLiveUsers counts the users not deleted (a scan of the users on FerretDB v1).
	CountLiveUsers(ctx context.Context) (int, error)
	// ScanLiveUsers reads the next batch of the ids of the users not deleted after token ("":
	// a new scan of pass's), and returns the next call's token ("": the scan is over); an
	// error wrapping store.ErrScanLost when the scan must start again.
	ScanLiveUsers(ctx context.Context, scope, pass, token string, batch int) ([]string, string, error)
	// MarkReconciled marks ids in the set of pass, as step saw them, and returns those no
	// other step marked before.
	MarkReconciled(ctx context.Context, scope, pass, set string, step int, ids []string) ([]string, error)
	// ReconcileMarked returns those of ids marked in the set of scope's pass, in their order.
	ReconcileMarked(ctx context.Context, scope, pass, set string, ids []string) ([]string, error)
	// ForgetReconcileSet drops the set of scope's pass.
	ForgetReconcileSet(ctx context.Context, scope, pass, set string) error
	// ReconcileMarksAfter returns the first limit ids of the set of scope's pass after after.
	ReconcileMarksAfter(ctx context.Context, scope, pass, set, after string, limit int) ([]string, error)
	// ForgetReconcileMarks drops the marks of scope's passes but keep's ("": all); it returns
	// how many collections it dropped.
	ForgetReconcileMarks(ctx context.Context, scope, keep string) (int, error)
	// ClaimReconcilePass leases scope's reconciliation to pass (a new pass: takeOver), or
	// renews its lease; an error wrapping store.ErrPassBusy when another pass holds it.
	ClaimReconcilePass(ctx context.Context, scope, pass string, takeOver bool, now time.Time, staleAfter time.Duration) error
	// EndReconcilePass ends pass's lease.
	EndReconcilePass(ctx context.Context, scope, pass string, now time.Time) error
	// ReconcileWatermark returns the time up to which scope's changes in Clerk were read,
	// and false when none is recorded (incremental.go).
	ReconcileWatermark(ctx context.Context, scope string) (time.Time, bool, error)
	// RecordReconcileWatermark moves scope's watermark forward to at, never back.
	RecordReconcileWatermark(ctx context.Context, scope string, at, now time.Time) error

	// The organizations' pass's reads (see orgPassState.next).
	orgPassStore
}

// orgPassStore is what the organizations' pass reads beside the rest of Store.
type orgPassStore interface {
	// CountLiveOrganizations counts the organizations not deleted.
	CountLiveOrganizations(ctx context.Context) (int, error)
	// CountLiveOrganizationsAmong counts the organizations not deleted among ids.
	CountLiveOrganizationsAmong(ctx context.Context, ids []string) (int, error)
	// LiveOrganizationIDsAfter returns the first limit ids of organizations not deleted
	// after after, ascending.
	LiveOrganizationIDsAfter(ctx context.Context, after string, limit int) ([]string, error)
	// CountLiveMemberships counts the memberships not deleted.
	CountLiveMemberships(ctx context.Context) (int, error)
	// GetMembership returns the stored membership id, live or deleted: store.ErrNotFound
	// when there is none.
	GetMembership(ctx context.Context, id string) (store.Membership, error)
}

// EventSender sends an event to Inngest: the users' pass sends ContinueEvent through it. An
// inngestgo.Client implements it.
type EventSender interface {
	// Send sends evt and returns its id.
	Send(ctx context.Context, evt any) (string, error)
}

// Clerk is where reconciliation reads the users, organizations and memberships from.
// *clerk.API implements it.
type Clerk interface {
	// InstanceID returns the id (ins_...) of the Clerk instance the users are read from.
	InstanceID(ctx context.Context) (string, error)
	// ListUsers returns at most limit users from offset on, in a stable order.
	ListUsers(ctx context.Context, limit, offset int) (clerk.UserPage, error)
	// ListUsersUpdated returns at most limit users from offset on, most recently updated
	// first (an incremental run's list).
	ListUsersUpdated(ctx context.Context, limit, offset int) (clerk.UserPage, error)
	// GetUser returns one user, or an error wrapping clerk.ErrUserNotFound when Clerk has none.
	GetUser(ctx context.Context, id string) (clerk.User, error)
	// ListOrganizations returns at most limit organizations from offset on, in a stable
	// order, or an error wrapping clerk.ErrOrganizationsNotEnabled when the instance has
	// organizations turned off.
	ListOrganizations(ctx context.Context, limit, offset int) (clerk.OrganizationPage, error)
	// GetOrganization returns one organization, or an error wrapping
	// clerk.ErrOrganizationNotFound when Clerk has none.
	GetOrganization(ctx context.Context, id string) (clerk.Organization, error)
	// ListMemberships returns at most limit memberships of the organization orgID from
	// offset on, in a stable order, only those of userIDs when given; an error wrapping
	// clerk.ErrOrganizationNotFound when Clerk has no such organization.
	ListMemberships(ctx context.Context, orgID string, userIDs []string, limit, offset int) (clerk.MembershipPage, error)
}

// ErrFewShared means Clerk's list shares fewer than MinSharedShare of the live users (or
// organizations) in the database (a key for another instance, or the wrong database):
// nothing was written.
var ErrFewShared = errors.New("reconcile: Clerk's list is not the database's")

// allowOnce says how to let one run through the safety checks, for the log lines that refuse.
const allowOnce = "let one run through: `clerk-user-sync reconcile --allow-mass-delete` (for a backfill: `backfill --allow-mass-delete`)"

// DefaultMinSharedShare is the share of the live users that Clerk's list must have unless
// Config says otherwise.
const DefaultMinSharedShare = 0.5

// Config tunes a reconciliation.
type Config struct {
	// PageSize is how many users (organizations, memberships) each page (and step) asks
	// Clerk for: 1 to clerk.MaxPageSize; 0 means clerk.MaxPageSize.
	PageSize int
	// MaxDeleteShare is the largest share (0 to 1) of the live users one run may delete. When
	// more are missing from Clerk, the run deletes none of them and reports them as refused
	// (a wrong secret key or an empty Clerk instance must not empty the collection). The same
	// share caps the organizations, and the memberships, an organizations run deletes.
	MaxDeleteShare float64
	// AllowMassDelete lifts MaxDeleteShare for a run that must delete that many, and
	// MinSharedShare for a run whose list shares that few users with the database: for Run,
	// RunOrganizations and CheckImport called directly (backfill --allow-mass-delete). The
	// Inngest functions ignore it: each of their runs takes it from the event that started it
	// (RequestEvent with allow_mass_delete), so that a cron run never has it.
	AllowMassDelete bool
	// MinSharedShare is the smallest share (0 to 1) of the live users (organizations) in the
	// database that Clerk's list must have for a run to write or delete anything; 0 (or less)
	// means DefaultMinSharedShare. An empty database (a first import) is never refused.
	MinSharedShare float64
	// MaxRunSteps is the most steps one run of the users' pass, or of the organizations'
	// pass, takes, its hand-over to the next run included; 0 (or less) means 800. Inngest
	// allows 1,000 steps per run.
	MaxRunSteps int
	// Now is the clock for deletion times; nil means time.Now.
	Now func() time.Time
	// Metrics is told the result of every finished run of the cron function; nil counts
	// nothing.
	Metrics Metrics
	// FullSchedule is the cron schedule of reconcile-users-with-clerk's full passes (for
	// example DefaultSchedule); the schedule Register is given is then its incremental runs'
	// (DefaultIncrementalSchedule, say). Empty, or Register's schedule: every run is a full
	// pass.
	FullSchedule string
}

// Metrics counts reconciliation results. The service's Prometheus metrics implement it.
type Metrics interface {
	// Reconciled is called once per finished run of reconcile-users-with-clerk with its
	// summary and error (nil: success).
	Reconciled(sum Summary, err error)
	// ReconciledOrganizations is called once per finished run of the organizations' cron
	// function with its summary and error (nil: success).
	ReconciledOrganizations(sum OrganizationsSummary, err error)
}

// nopMetrics counts nothing.
type nopMetrics struct{}

func (nopMetrics) Reconciled(Summary, error)                           {}
func (nopMetrics) ReconciledOrganizations(OrganizationsSummary, error) {}

// maxPages bounds the pages of CheckImport's survey of Clerk's users or organizations. (The
// reconciliation passes go on in a next run instead: see runPass.)
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
	// Pages counts the pages read.
	Pages int `json:"pages"`
	// Counts is what the run did to the users: Seen counts those on Clerk's list.
	Counts
	// RefusedForeign is true when the run wrote and deleted nothing because Clerk's list
	// shared fewer than MinSharedShare of the live users (a key for another instance?).
	RefusedForeign bool `json:"refused_foreign"`
	// Runs counts the Inngest runs the pass took, when more than one (0 otherwise).
	Runs int `json:"runs,omitempty"`
	// Continued is true in the output of a run that handed its pass on to the next run
	// (ContinueEvent): the summary so far. The last run's output covers the whole pass.
	Continued bool `json:"continued,omitempty"`
	// SkippedBusy is true when the run did nothing because another pass was going (one that
	// spans several runs, which the function's singleton does not cover).
	SkippedBusy bool `json:"skipped_busy,omitempty"`
	// Incremental is true for an incremental run (RunIncremental): it read only the users
	// updated since Since (Unix ms: the watermark less IncrementalSlack), and deleted none.
	Incremental bool  `json:"incremental,omitempty"`
	Since       int64 `json:"since,omitempty"`
	// FullPass says why a run that was to be incremental ran (or started) a full pass
	// instead: "no watermark" (none recorded yet), "no instance recorded", or "too many
	// changes" (more pages than one run's steps; the full pass goes on in the next run).
	FullPass string `json:"full_pass,omitempty"`
}

// Reconciler reconciles the users collection (Run), and the organizations and memberships
// collections (RunOrganizations), with Clerk.
type Reconciler struct {
	users  Store
	api    Clerk
	logger *slog.Logger
	cfg    Config
	// instances checks the key's Clerk instance against the database's.
	instances *InstanceCheck
	// budget is the deadline of each step: StepBudget, shorter in tests.
	budget time.Duration
	// maxRunSteps bounds the steps of one run of the users' or the organizations' pass, the
	// hand-over included:
	// defaultMaxRunSteps, fewer in tests.
	maxRunSteps int
	// scanBatch is how many live users a scan step reads at a time: scanBatch, fewer in
	// tests.
	scanBatch int
	// findChunk is how many live organizations an org-find-deletions step compares:
	// findChunk, fewer in tests.
	findChunk int
	// scanBatches, when above 0, bounds the batches of a scan step (tests); otherwise half the
	// step's budget does.
	scanBatches int
	// memberPages bounds the pages of members one org-members step reads: 0 (none but the
	// step's budget), fewer in tests.
	memberPages int
	// sender sends ContinueEvent and OrganizationsContinueEvent: the client Register (or
	// RegisterOrganizations) creates the function on, unless set.
	sender EventSender
}

// New returns a Reconciler reading users, organizations and memberships from api, writing
// them to users (the store of all three) and logging to logger.
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
	maxRunSteps := defaultMaxRunSteps
	if cfg.MaxRunSteps > 0 {
		maxRunSteps = cfg.MaxRunSteps
	}
	return &Reconciler{users: users, api: api, logger: logger, cfg: cfg, instances: NewInstanceCheck(api, users, StepBudget),
		budget: StepBudget, maxRunSteps: maxRunSteps, scanBatch: scanBatch, findChunk: findChunk}
}

// surveyPage is the memoized output of one survey step: the ids of one page of Clerk's list.
type surveyPage struct {
	// Count is how many users Clerk returned; fewer than the page size ends the list.
	Count int      `json:"count"`
	IDs   []string `json:"ids"`
	// NotEnabled is true when Clerk answered that the instance has organizations turned off
	// (organization surveys only).
	NotEnabled bool `json:"not_enabled,omitempty"`
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
	Shared int `json:"listed_and_stored"`
	// Refused is true when Shared is below MinSharedShare of Live (and AllowMassDelete is
	// off): the run must write and delete nothing.
	Refused bool `json:"refused"`
}

// writeCounts counts the outcomes of upserts.
type writeCounts struct {
	Inserted int `json:"inserted"`
	Updated  int `json:"updated"`
	Skipped  int `json:"skipped"`
	Failed   int `json:"failed"`
}

// add adds c's counts to w.
func (w *writeCounts) add(c writeCounts) {
	w.Inserted += c.Inserted
	w.Updated += c.Updated
	w.Skipped += c.Skipped
	w.Failed += c.Failed
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

// runStep runs f as the step id (inline outside an Inngest run) within r's step budget: f's
// context ends that long after the step starts, and under it Clerk's 429s are waited out only
// up to maxStepWait. It returns f's result and error; when f failed on a 429 whose Retry-After
// said when to come back, the error is an inngestgo.RetryAtError at that time, returned from
// inside the step so that Inngest retries the step then.
func runStep[T any](ctx context.Context, r *Reconciler, id string, f func(context.Context) (T, error)) (T, error) {
	return runStepAfter(ctx, r, id, nil, f)
}

// runStepAfter is runStep with before (nil: none) run first in the step, within
// beforeBudget of its own, ahead of f's budget: a step fails with before's error.
func runStepAfter[T any](ctx context.Context, r *Reconciler, id string, before func(context.Context) error, f func(context.Context) (T, error)) (T, error) {
	return step.Run(ctx, id, func(ctx context.Context) (T, error) {
		if before != nil {
			bctx, cancel := context.WithTimeout(ctx, beforeBudget)
			err := before(bctx)
			cancel()
			if err != nil {
				var zero T
				return zero, err
			}
		}
		ctx, cancel := context.WithTimeout(ctx, r.budget)
		defer cancel()
		res, err := f(clerk.WithMaxRetryWait(ctx, maxStepWait))
		return res, retryWhenAsked(err, time.Now())
	})
}

// beforeBudget is the deadline of what a step does before its own work (runStepAfter): the
// users' pass renews its lease there, so that the renewal does not eat into the step's budget.
// A step takes at most StepBudget plus beforeBudget, within the server's write timeout.
const beforeBudget = 10 * time.Second

// retryWhenAsked returns err, as an inngestgo.RetryAtError at now plus Clerk's Retry-After when
// err is a 429 that carried one, and unchanged otherwise (nil stays nil).
func retryWhenAsked(err error, now time.Time) error {
	var rl *clerk.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		return err
	}
	return inngestgo.RetryAtError(err, now.Add(rl.RetryAfter))
}

// CheckImport makes the checks of Run for an import that writes Clerk's users, organizations
// and memberships without deleting any (backfill from the API), before it writes anything: it
// refuses a secret key for another Clerk instance than the collection follows; when none is
// recorded yet, it surveys Clerk's users when the database has live users, and Clerk's
// organizations when it has live organizations, and refuses a list that shares fewer than
// MinSharedShare of them (unless AllowMassDelete); then it records the instance. A recorded
// instance that matches needs no survey.
//
// It returns what it found for the users, and an error wrapping ErrWrongInstance or
// ErrFewShared when it refuses (the message says what to check), store.ErrDatabase,
// clerk.ErrRateLimited, or Clerk's or the network's error.
func (r *Reconciler) CheckImport(ctx context.Context) (Check, error) {
	inst, err := r.checkInstance(ctx)
	if err != nil {
		return Check{}, err
	}
	if inst.Recorded != "" {
		return Check{Instance: inst.Instance}, nil
	}
	chk, err := checkImportOf(ctx, r, inst, usersKind(r))
	if err != nil {
		return chk, err
	}
	orgs, err := checkImportOf(ctx, r, inst, organizationsKind(r))
	if err != nil {
		return chk, err
	}
	r.logger.Debug("organizations checked", "live_organizations", orgs.Live, "listed_and_stored", orgs.Shared)
	if err := r.recordInstance(ctx, inst); err != nil {
		return chk, err
	}
	return chk, nil
}

// checkImportOf is CheckImport's survey of one kind k: when the database has live ones, it
// reads Clerk's list of them and compares. It returns an error wrapping ErrFewShared when the
// list shares too few of them, and the database's, Clerk's or the network's error.
func checkImportOf[T any](ctx context.Context, r *Reconciler, inst Instances, k kind[T]) (Check, error) {
	live, err := k.live(ctx)
	if err != nil {
		return Check{}, err
	}
	var listed []string
	if len(live) > 0 {
		r.logger.Info("no Clerk instance recorded for this database yet: reading Clerk's list once to compare it with the stored "+k.plural,
			"clerk_instance", inst.Instance, "live_"+k.plural, len(live))
		listed, err = r.survey(ctx, k.plural, func(ctx context.Context, offset int) (surveyPage, error) {
			p, err := surveyOne(ctx, r, k, offset)
			if p.NotEnabled {
				// None in Clerk: a database with live ones shares none of them.
				r.logger.Info("the Clerk instance has "+k.plural+" turned off", "clerk_instance", inst.Instance)
			}
			return p, err
		})
		if err != nil {
			return Check{}, err
		}
	}
	chk := r.compareLists(inst, k.plural, live, listed)
	if chk.Refused {
		return chk, fmt.Errorf("%w: only %d of the %d live %s in the database are among the %d %s of Clerk instance %s; nothing was written. "+
			"Check that CLERK_SECRET_KEY is the secret key of the Clerk instance this database follows, and that MONGODB_URI names the right database; "+
			"if the database really must take this instance's %s, run `clerk-user-sync backfill --allow-mass-delete` once",
			ErrFewShared, chk.Shared, chk.Live, k.plural, chk.Listed, k.plural, chk.Instance, k.plural)
	}
	return chk, nil
}

// checkInstance reads the Clerk instance the secret key belongs to and the one the collection
// follows (InstanceCheck.Compare). It returns an error wrapping ErrWrongInstance (not to be
// retried) when they differ, and the error of Clerk or the database when either cannot be
// read; each is logged.
func (r *Reconciler) checkInstance(ctx context.Context) (Instances, error) {
	inst, err := r.instances.Compare(ctx)
	var wrong *WrongInstanceError
	switch {
	case errors.As(err, &wrong):
		return Instances{}, r.wrongInstance(wrong.Key, wrong.Recorded)
	case errors.Is(err, store.ErrDatabase):
		r.logger.Error("reading the Clerk instance the database follows failed", "error", err)
		return Instances{}, err
	case err != nil:
		r.logger.Error("reading the Clerk instance of CLERK_SECRET_KEY failed", "error", err)
		return Instances{}, err
	}
	return inst, nil
}

// wrongInstance logs and returns the refusal of a key for instance keyInst when the collection
// follows recorded: a *WrongInstanceError that Inngest does not retry.
func (r *Reconciler) wrongInstance(keyInst, recorded string) error {
	err := &WrongInstanceError{Key: keyInst, Recorded: recorded}
	r.logger.Error("refusing to read another Clerk instance than the database follows", "error", err)
	return inngestgo.NoRetryError(err)
}

// checkOverlap compares live, the live users stored before any write, with the listed users
// on Clerk's list, shared of them live in the database (compareCounts) and, unless that
// refuses, records the instance when none is recorded yet. It returns an error wrapping
// store.ErrDatabase when the record cannot be written, and one wrapping ErrWrongInstance when
// another instance was recorded meanwhile.
func (r *Reconciler) checkOverlap(ctx context.Context, inst Instances, live, listed, shared int) (Check, error) {
	chk := r.compareCounts(inst, "users", live, listed, shared)
	if chk.Refused {
		return chk, nil
	}
	if err := r.recordInstance(ctx, inst); err != nil {
		return Check{}, err
	}
	return chk, nil
}

// compareLists compares the live ids of kind ("users", "organizations") stored before any
// write with the ids on Clerk's list: when the database has live ones and fewer than
// MinSharedShare of them are listed, it refuses (Refused, and a warning saying what to
// check) unless AllowMassDelete.
func (r *Reconciler) compareLists(inst Instances, kind string, live, listed []string) Check {
	inList := make(map[string]struct{}, len(listed))
	for _, id := range listed {
		inList[id] = struct{}{}
	}
	shared := 0
	for _, id := range live {
		if _, ok := inList[id]; ok {
			shared++
		}
	}
	return r.compareCounts(inst, kind, len(live), len(inList), shared)
}

// compareCounts is compareLists on counts: live ones stored, listed on Clerk's list (each
// once), shared of the live ones listed.
func (r *Reconciler) compareCounts(inst Instances, kind string, live, listed, shared int) Check {
	chk := Check{Instance: inst.Instance, Live: live, Listed: listed, Shared: shared}
	attrs := []any{"clerk_instance", inst.Instance, "live_" + kind, chk.Live, "listed_by_clerk", chk.Listed, "listed_and_stored", chk.Shared, "min_shared_share", r.cfg.MinSharedShare}
	if chk.Live > 0 && float64(chk.Shared) < r.cfg.MinSharedShare*float64(chk.Live) {
		if !r.cfg.AllowMassDelete {
			r.logger.Warn("Clerk's list shares too few "+kind+" with the database: writing and deleting nothing. "+
				"Check that CLERK_SECRET_KEY is the secret key of the Clerk instance this database follows, and that MONGODB_URI names the right database; "+
				"if the database really must take this instance's "+kind+", "+allowOnce, attrs...)
			chk.Refused = true
			return chk
		}
		r.logger.Warn("Clerk's list shares few "+kind+" with the database; going on, as this run was started with --allow-mass-delete", attrs...)
	}
	return chk
}

// recordInstance records inst's instance as the one the database follows when none is
// recorded yet. It returns an error wrapping store.ErrDatabase when the record cannot be
// written, and one wrapping ErrWrongInstance when another instance was recorded meanwhile.
func (r *Reconciler) recordInstance(ctx context.Context, inst Instances) error {
	if inst.Recorded != "" {
		return nil
	}
	recorded, err := r.users.RecordClerkInstance(ctx, inst.Instance, r.cfg.Now())
	if err != nil {
		r.logger.Error("recording the Clerk instance the database follows failed", "error", err)
		return err
	}
	if recorded != inst.Instance {
		return r.wrongInstance(inst.Instance, recorded)
	}
	r.logger.Info("recorded the Clerk instance the database follows", "clerk_instance", inst.Instance,
		"collection", store.MetaCollection, "_id", store.ClerkInstanceDoc)
	return nil
}

// writeAll writes items through write, writeWorkers at a time, and counts the outcomes. An
// item that cannot be written (no usable data) is counted as Failed and does not stop the
// others. It returns the first database error (wrapping store.ErrDatabase), in the items'
// order, or the error of an item written after ctx ended.
func writeAll[T any](ctx context.Context, items []T, write func(context.Context, T) (store.Outcome, error)) (writeCounts, error) {
	outcomes := make([]store.Outcome, len(items))
	errs := make([]error, len(items))
	var g errgroup.Group
	g.SetLimit(writeWorkers)
	for i, item := range items {
		g.Go(func() error {
			// Each item keeps its own error: one that cannot be written must not stop the
			// others, and the first database error in order is reported below.
			outcomes[i], errs[i] = write(ctx, item)
			return nil
		})
	}
	_ = g.Wait() // every write returns nil; their errors are in errs
	var c writeCounts
	for i := range items {
		switch {
		case errs[i] == nil:
			c.count(outcomes[i])
		case errors.Is(errs[i], store.ErrDatabase) || ctx.Err() != nil:
			return writeCounts{}, errs[i]
		default:
			c.Failed++
		}
	}
	return c, nil
}

// count counts one upsert's outcome.
func (w *writeCounts) count(o store.Outcome) {
	switch o {
	case store.Inserted:
		w.Inserted++
	case store.Updated:
		w.Updated++
	default:
		w.Skipped++
	}
}

// confirmEach deals with the candidates in order, as one delete step, through confirm, which
// counts what it did in the result (a candidate of the kind what: "user", "organization",
// "membership"). It starts no candidate after stopAt but the first, so that the step ends
// within its budget; Done counts the candidates dealt with. When a candidate fails after
// others were dealt with, it returns those (the next step starts at the failing one, and
// fails with its error if it persists). It returns an error only when the first candidate
// fails: Clerk cannot be asked (a 429, the budget's deadline, the network) or the database
// fails.
func confirmEach[T any](ctx context.Context, r *Reconciler, candidates []T, stopAt time.Time, what string,
	confirm func(ctx context.Context, c T, res *deletionResult) error) (deletionResult, error) {
	var res deletionResult
	done, err := eachWithinBudget(ctx, r, candidates, stopAt, what+" deletion", func(ctx context.Context, c T) error {
		return confirm(ctx, c, &res)
	})
	if err != nil {
		return deletionResult{}, err
	}
	res.Done = done
	return res, nil
}

// eachWithinBudget calls one for each item in order, within one step whose kind is what: it
// starts no item after stopAt but the first, and stops at an item that fails, unless it is the
// first. It returns how many items it dealt with, and the first item's error when that one
// fails (then nothing was dealt with).
func eachWithinBudget[T any](ctx context.Context, r *Reconciler, items []T, stopAt time.Time, what string, one func(context.Context, T) error) (int, error) {
	done := 0
	for _, item := range items {
		if done > 0 && time.Now().After(stopAt) {
			r.logger.Info(what+" step stopping within its budget; the next step goes on", "done", done, "left", len(items)-done)
			break
		}
		if err := one(ctx, item); err != nil {
			if done == 0 {
				return 0, err
			}
			r.logger.Info(what+" step stopping after a failure; the next step starts there", "at", item, "done", done, "error", err)
			break
		}
		done++
	}
	return done, nil
}

// stillInClerk counts a deletion candidate that Clerk still has, and the outcome of writing it
// (out, err) instead. It returns err when it wraps store.ErrDatabase (nothing counted), and nil
// otherwise (a candidate that cannot be written is counted as Failed).
func (res *deletionResult) stillInClerk(out store.Outcome, err error) error {
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

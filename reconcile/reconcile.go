// Package reconcile brings the users collection back in line with Clerk, for what webhooks
// missed: reconcile-users-with-clerk (a cron Inngest function) pages through Clerk's Backend
// API and writes every user through the store's guarded upsert, so it never overwrites a newer
// webhook write, then tombstones the live users Clerk no longer has, with a safety cap. The
// backfill command uses the same client and writes (Import), from the API or a Clerk export.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/inngest/inngestgo/step"

	"clerksync/functions"
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
}

// Clerk is where reconciliation reads the users from. *ClerkAPI implements it.
type Clerk interface {
	// ListUsers returns at most limit users from offset on, in a stable order.
	ListUsers(ctx context.Context, limit, offset int) (Page, error)
	// GetUser returns one user, or an error wrapping ErrUserNotInClerk when Clerk has none.
	GetUser(ctx context.Context, id string) (functions.ClerkUser, error)
}

// Config tunes a reconciliation.
type Config struct {
	// PageSize is how many users each page (and step) asks Clerk for: 1 to MaxPageSize; 0
	// means MaxPageSize.
	PageSize int
	// MaxDeleteShare is the largest share (0 to 1) of the live users one run may delete. When
	// more are missing from Clerk, the run deletes none of them and reports them as refused
	// (a wrong secret key or an empty Clerk instance must not empty the collection).
	MaxDeleteShare float64
	// AllowMassDelete lifts MaxDeleteShare for a run that must delete that many.
	AllowMassDelete bool
	// Now is the clock for deletion times; nil means time.Now.
	Now func() time.Time
	// Metrics, when set, is told the result of every finished run of the cron function.
	Metrics Metrics
}

// Metrics counts reconciliation results. The service's Prometheus metrics implement it.
type Metrics interface {
	// Reconciled is called once per finished run with its summary and error (nil: success).
	Reconciled(sum Summary, err error)
}

// maxPages bounds the pages of one run, below Inngest's limit of 1,000 steps per run.
const maxPages = 900

// deleteChunk is how many deletion candidates one step confirms and deletes.
const deleteChunk = 100

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
}

// Reconciler reconciles the users collection with Clerk.
type Reconciler struct {
	users  Store
	clerk  Clerk
	logger *slog.Logger
	cfg    Config
}

// New returns a Reconciler reading users from clerk, writing them to users and logging to
// logger.
func New(users Store, clerk Clerk, logger *slog.Logger, cfg Config) *Reconciler {
	if cfg.PageSize <= 0 || cfg.PageSize > MaxPageSize {
		cfg.PageSize = MaxPageSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Reconciler{users: users, clerk: clerk, logger: logger, cfg: cfg}
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
	Live       int      `json:"live"`
	Candidates []string `json:"candidates,omitempty"`
	Refused    int      `json:"refused,omitempty"`
}

// deletionResult is the memoized output of one delete step.
type deletionResult struct {
	Deleted      int `json:"deleted"`
	StillInClerk int `json:"still_in_clerk"`
	Inserted     int `json:"inserted"`
	Updated      int `json:"updated"`
	Skipped      int `json:"skipped"`
	Failed       int `json:"failed"`
}

// Run reconciles once. Each page is its own step (page-0, page-500, ...) that writes every
// user on it through the guarded upsert; plan-deletions then lists the live users missing
// from the pages and applies the safety cap, and each delete-N step confirms up to 100 of
// them with Clerk (404: gone) and tombstones those gone. Inside an Inngest run each step is
// retried on its own; outside one (tests, backfill) the steps run inline.
//
// It returns the summary so far and the first error that a step gave up on: an error
// wrapping store.ErrDatabase, ErrRateLimited, or Clerk's or the network's error. Refusing a
// mass deletion is not an error: the summary reports it (Refused) and the log says how to
// allow it.
func (r *Reconciler) Run(ctx context.Context) (Summary, error) {
	var sum Summary
	seen := map[string]struct{}{}
	for offset := 0; ; offset += r.cfg.PageSize {
		if sum.Pages >= maxPages {
			return sum, fmt.Errorf("reconcile: more than %d pages of %d users; raise the page size", maxPages, r.cfg.PageSize)
		}
		page, err := step.Run(ctx, fmt.Sprintf("page-%d", offset), func(ctx context.Context) (pageResult, error) {
			return r.syncPage(ctx, offset)
		})
		if err != nil {
			return sum, err
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
			break
		}
	}

	plan, err := step.Run(ctx, "plan-deletions", func(ctx context.Context) (deletionPlan, error) {
		return r.planDeletions(ctx, seen)
	})
	if err != nil {
		return sum, err
	}
	sum.Refused = plan.Refused
	for i := 0; i < len(plan.Candidates); i += deleteChunk {
		chunk := plan.Candidates[i:min(i+deleteChunk, len(plan.Candidates))]
		res, err := step.Run(ctx, fmt.Sprintf("delete-%d", i), func(ctx context.Context) (deletionResult, error) {
			return r.deleteMissing(ctx, chunk)
		})
		if err != nil {
			return sum, err
		}
		sum.Deleted += res.Deleted
		sum.StillInClerk += res.StillInClerk
		sum.Inserted += res.Inserted
		sum.Updated += res.Updated
		sum.Skipped += res.Skipped
		sum.Failed += res.Failed
	}
	r.logger.Info("reconciliation with Clerk done",
		"pages", sum.Pages, "seen", sum.Seen, "inserted", sum.Inserted, "updated", sum.Updated, "skipped", sum.Skipped,
		"failed", sum.Failed, "deleted", sum.Deleted, "still_in_clerk", sum.StillInClerk, "refused", sum.Refused)
	return sum, nil
}

// syncPage reads the page at offset and writes its users. It returns an error when Clerk
// cannot be read or the database fails; users that cannot be written are counted as Failed.
func (r *Reconciler) syncPage(ctx context.Context, offset int) (pageResult, error) {
	page, err := r.clerk.ListUsers(ctx, r.cfg.PageSize, offset)
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
	sem := make(chan struct{}, writeWorkers)
	var wg sync.WaitGroup
	for i, u := range page.Users {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			outcomes[i], errs[i] = r.write(ctx, u)
		}()
	}
	wg.Wait()
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
func (r *Reconciler) write(ctx context.Context, c functions.ClerkUser) (store.Outcome, error) {
	u, err := functions.UserFromClerk(c, 0)
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

// planDeletions lists the live users that no page had and applies the safety cap. It returns
// an error wrapping store.ErrDatabase when the live users cannot be listed.
func (r *Reconciler) planDeletions(ctx context.Context, seen map[string]struct{}) (deletionPlan, error) {
	live, err := r.users.LiveUserIDs(ctx)
	if err != nil {
		r.logger.Error("listing live users failed", "error", err)
		return deletionPlan{}, err
	}
	plan := deletionPlan{Live: len(live)}
	for _, id := range live {
		if _, ok := seen[id]; !ok {
			plan.Candidates = append(plan.Candidates, id)
		}
	}
	n := len(plan.Candidates)
	if n == 0 {
		return plan, nil
	}
	limit := r.cfg.MaxDeleteShare * float64(len(live))
	if float64(n) > limit {
		if !r.cfg.AllowMassDelete {
			r.logger.Warn("reconciliation refuses a mass deletion: deleting nothing. Check CLERK_SECRET_KEY names the right Clerk instance; "+
				"if these users really are gone, set RECONCILE_ALLOW_MASS_DELETE=1 for one run",
				"missing_from_clerk", n, "live_users", len(live), "max_delete_share", r.cfg.MaxDeleteShare)
			return deletionPlan{Live: len(live), Refused: n}, nil
		}
		r.logger.Warn("mass deletion allowed by RECONCILE_ALLOW_MASS_DELETE", "missing_from_clerk", n, "live_users", len(live), "max_delete_share", r.cfg.MaxDeleteShare)
	}
	r.logger.Info("live users missing from Clerk's list; confirming each with Clerk before deleting", "candidates", n, "live_users", len(live))
	return plan, nil
}

// deleteMissing asks Clerk for each candidate: a 404 turns the user into a tombstone, as
// user.deleted would; a user Clerk still has is written instead. It returns an error when
// Clerk cannot be asked or the database fails.
func (r *Reconciler) deleteMissing(ctx context.Context, ids []string) (deletionResult, error) {
	var res deletionResult
	for _, id := range ids {
		c, err := r.clerk.GetUser(ctx, id)
		if errors.Is(err, ErrUserNotInClerk) {
			out, err := r.users.DeleteUser(ctx, id, r.cfg.Now().UnixMilli())
			if err != nil {
				r.logger.Error("deleting a user missing from Clerk failed", "user_id", id, "error", err)
				return deletionResult{}, err
			}
			if out == store.Deleted {
				res.Deleted++
				r.logger.Info("user missing from Clerk deleted", "user_id", id)
			}
			continue
		}
		if err != nil {
			r.logger.Error("confirming a deletion with Clerk failed", "user_id", id, "error", err)
			return deletionResult{}, err
		}
		res.StillInClerk++
		out, err := r.write(ctx, c)
		switch {
		case err == nil && out == store.Inserted:
			res.Inserted++
		case err == nil && out == store.Updated:
			res.Updated++
		case err == nil:
			res.Skipped++
		case errors.Is(err, store.ErrDatabase):
			return deletionResult{}, err
		default:
			res.Failed++
		}
	}
	return res, nil
}

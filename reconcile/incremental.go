package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/robfig/cron/v3"

	"clerksync/clerk"
	"clerksync/store"
)

// DefaultIncrementalSchedule runs an incremental reconciliation of the users every hour, at 15
// minutes past (away from the full pass's DefaultSchedule, 03:00, and from
// DefaultOrganizationsSchedule, 03:30).
const DefaultIncrementalSchedule = "15 * * * *"

// DefaultOrganizationsSchedule runs reconcile-organizations-with-clerk daily at 03:30 UTC, half
// an hour after the users' full pass starts, so that the two do not start together on Clerk's
// shared rate limit.
const DefaultOrganizationsSchedule = "30 3 * * *"

// IncrementalSlack is how far before the watermark an incremental run reads: the users whose
// updated_at is at most this much older than the newest one the last run saw (or than the
// start of the last full pass) are read again. It covers the clocks of Clerk and the service
// disagreeing (the full pass's watermark is the service's clock), a user updated while a run
// paged (it moves to the list's front, past pages already read) and Clerk's list lagging
// behind its writes. Users read again cost one guarded upsert each, skipped as not newer.
const IncrementalSlack = 10 * time.Minute

// cronEvent is the name of the event Inngest starts a cron run with; its data's "cron" field
// is the schedule that fired.
const cronEvent = "inngest/scheduled.timer"

// Outputs of an incremental run's steps, as Inngest memoizes them: counts and times.
type (
	// incrementalStart is incremental-start's: the watermark (Unix ms, 0 when none is
	// recorded: the run is a full pass), or Busy naming the pass that holds the lease.
	incrementalStart struct {
		Watermark int64  `json:"watermark,omitempty"`
		Busy      string `json:"busy,omitempty"`
	}
	// changedPage is a changed-N step's: Count users on the page at offset N of Clerk's list
	// by -updated_at, of which Changed updated at or after the run's cutoff (written);
	// Newest and Oldest are the page's first and last updated_at (Unix ms).
	changedPage struct {
		Count   int   `json:"count"`
		Changed int   `json:"changed"`
		Newest  int64 `json:"newest"`
		Oldest  int64 `json:"oldest"`
		writeCounts
	}
)

// RunIncremental reconciles the users that changed in Clerk since the watermark (see
// incremental), in steps run inline, outside Inngest. When it has to be a full pass instead
// (no watermark, no instance recorded, too many changes for one run), the pass runs in this
// call, to its end. It returns the run's summary and the first error a step gave up on.
func (r *Reconciler) RunIncremental(ctx context.Context) (Summary, error) {
	sum, next, err := r.incremental(ctx, newPassID(r.cfg.Now()))
	if err != nil || next == nil {
		return sum, err
	}
	err = r.runInline(ctx, next)
	return next.Summary, err
}

// incremental runs one incremental reconciliation of the users, its steps counting against
// maxRunSteps, under the pass id id (the run's):
//
//   - incremental-start reads the watermark; with none, the run is a full pass: incremental
//     returns its state, to run now. Otherwise it takes the users' pass lease, as a pass
//     does; when another pass holds it, the run does nothing (Summary.SkippedBusy).
//   - incremental-check-instance refuses a key for another Clerk instance; with no instance
//     recorded the run is a full pass (whose overlap check records one).
//   - changed-N read the page at offset N of Clerk's list by -updated_at and write, through
//     the guarded upsert, the users on it updated at or after the cutoff (the watermark less
//     IncrementalSlack); they stop after a page whose oldest user is older than the cutoff,
//     or a short page. They delete nothing: only a full pass finds deletions.
//   - incremental-end records the newest updated_at seen as the watermark (forward only)
//     and ends the lease. A run that fails before it records nothing: the next one reads
//     from the same watermark.
//
// When the run's steps are spent before the list is (more than about 399,000 changed users
// at 500 a page), the step incremental-to-full ends the lease and hands over to a full pass:
// through ContinueEvent, which starts it in the next run, when r has a sender, and otherwise
// by returning its state, to run now. The watermark is left for the full pass to move.
//
// It returns the run's summary and, when a full pass is to run now, its state; or the first
// error a step gave up on (see runPass).
func (r *Reconciler) incremental(ctx context.Context, id string) (Summary, *passState, error) {
	p := &passRun{r: r, st: &passState{passHead: passHead{Pass: id}}}
	sum := Summary{Incremental: true}
	p.steps++
	start, err := runStep(ctx, r, "incremental-start", func(ctx context.Context) (incrementalStart, error) {
		wm, ok, err := r.users.ReconcileWatermark(ctx, passScope)
		if err != nil || !ok {
			return incrementalStart{}, err
		}
		err = r.users.ClaimReconcilePass(ctx, passScope, id, true, r.cfg.Now(), passStaleAfter)
		if errors.Is(err, store.ErrPassBusy) {
			return incrementalStart{Busy: err.Error()}, nil
		}
		return incrementalStart{Watermark: wm.UnixMilli()}, err
	})
	switch {
	case err != nil:
		return sum, nil, err
	case start.Busy != "":
		r.logger.Info("a full reconciliation pass of the users is going: this incremental run does nothing", "busy", start.Busy)
		sum.SkippedBusy = true
		return sum, nil, nil
	case start.Watermark == 0:
		r.logger.Info("no reconciliation watermark recorded yet: this run is a full pass", "pass", id)
		return sum, &passState{passHead: passHead{Pass: id}, Summary: Summary{FullPass: "no watermark"}}, nil
	}
	inst, err := passStep(ctx, p, "incremental-check-instance", r.checkInstance)
	if err != nil {
		return sum, nil, err
	}
	if inst.Recorded == "" {
		// The lease is id's: the full pass, under the same id, goes on holding it.
		r.logger.Info("no Clerk instance recorded: this run is a full pass, whose overlap check records one", "pass", id)
		return sum, &passState{passHead: passHead{Pass: id}, Summary: Summary{FullPass: "no instance recorded"}}, nil
	}
	cutoff := start.Watermark - IncrementalSlack.Milliseconds()
	sum.Since = cutoff
	users := usersKind(r)
	newest := int64(0)
	for offset := 0; ; offset += r.cfg.PageSize {
		res, err := passStep(ctx, p, fmt.Sprintf("changed-%d", offset), func(ctx context.Context) (changedPage, error) {
			return r.changedUsers(ctx, users, offset, cutoff)
		})
		if errors.Is(err, errHandOver) {
			return r.incrementalToFull(ctx, p, sum)
		}
		if err != nil {
			return sum, nil, err
		}
		sum.Pages++
		sum.Seen += res.Changed
		sum.addWrites(res.writeCounts)
		newest = max(newest, res.Newest)
		if res.Count < r.cfg.PageSize || res.Oldest < cutoff {
			break
		}
	}
	if _, err := passStep(ctx, p, "incremental-end", func(ctx context.Context) (struct{}, error) {
		if newest > 0 {
			if err := r.users.RecordReconcileWatermark(ctx, passScope, time.UnixMilli(newest), r.cfg.Now()); err != nil {
				r.logger.Error("recording the reconciliation watermark failed", "error", err)
				return struct{}{}, err
			}
		}
		return struct{}{}, r.users.EndReconcilePass(ctx, passScope, id, r.cfg.Now())
	}); err != nil {
		return sum, nil, err
	}
	r.logger.Info("incremental reconciliation with Clerk done", "pass", id, "since", time.UnixMilli(cutoff).UTC(),
		"pages", sum.Pages, "changed", sum.Seen, "inserted", sum.Inserted, "updated", sum.Updated, "skipped", sum.Skipped, "failed", sum.Failed)
	return sum, nil, nil
}

// incrementalToFull is the step incremental-to-full: it ends the incremental run's lease and
// sends ContinueEvent with a new full pass (its id the run's, suffixed -full), or, without a
// sender, returns that pass's state to run now. It returns the run's summary and the error of
// the step when it fails for good.
func (r *Reconciler) incrementalToFull(ctx context.Context, p *passRun, sum Summary) (Summary, *passState, error) {
	id := p.st.head().Pass
	next := passState{passHead: passHead{Pass: id + "-full"}, Summary: Summary{FullPass: "too many changes"}}
	sum.FullPass = next.Summary.FullPass
	r.logger.Warn("more users changed than one incremental run reads: handing over to a full pass", "pass", next.Pass, "pages_read", sum.Pages)
	if _, err := runStep(ctx, r, "incremental-to-full", func(ctx context.Context) (string, error) {
		if err := r.users.EndReconcilePass(ctx, passScope, id, r.cfg.Now()); err != nil || r.sender == nil {
			return "", err
		}
		return r.sender.Send(ctx, continuation(&next))
	}); err != nil {
		return sum, nil, err
	}
	if r.sender == nil {
		return sum, &next, nil
	}
	sum.Continued = true
	return sum, nil, nil
}

// changedUsers reads the page at offset of Clerk's users by -updated_at and writes those
// updated at or after cutoff (Unix ms) through the guarded upsert (so a newer webhook write or a
// deletion stays). It returns an error when Clerk cannot be read or the database fails; users
// that cannot be written are counted as Failed.
func (r *Reconciler) changedUsers(ctx context.Context, users kind[clerk.User], offset int, cutoff int64) (changedPage, error) {
	page, err := r.api.ListUsersUpdated(ctx, r.cfg.PageSize, offset)
	if err != nil {
		r.logger.Error("reading a page of Clerk users by updated_at failed", "offset", offset, "error", err)
		return changedPage{}, err
	}
	res := changedPage{Count: len(page.Users)}
	changed := make([]clerk.User, 0, len(page.Users))
	for i, u := range page.Users {
		if i == 0 {
			res.Newest, res.Oldest = u.UpdatedAt, u.UpdatedAt
		}
		res.Newest, res.Oldest = max(res.Newest, u.UpdatedAt), min(res.Oldest, u.UpdatedAt)
		if u.UpdatedAt >= cutoff {
			changed = append(changed, u)
		}
	}
	res.Changed = len(changed)
	if res.writeCounts, err = writeAll(ctx, changed, users.write); err != nil {
		return changedPage{}, err
	}
	return res, nil
}

// recordPassWatermark records, at the end of the users' full pass st, the time it started as
// the incremental runs' watermark: every change before it has been read. A pass that wrote
// nothing (RefusedForeign) records none. It returns an error wrapping store.ErrDatabase,
// logged, when the database fails.
func (r *Reconciler) recordPassWatermark(ctx context.Context, st passState) error {
	if st.Since == 0 || st.Summary.RefusedForeign {
		return nil
	}
	if err := r.users.RecordReconcileWatermark(ctx, passScope, time.UnixMilli(st.Since), r.cfg.Now()); err != nil {
		r.logger.Error("recording the reconciliation watermark failed", "error", err)
		return err
	}
	return nil
}

// cronParser parses schedules as Inngest does (see the service's RECONCILE_* settings).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// incrementalEvent reports whether the run evt starts is an incremental one: a cron run, when
// Config.FullSchedule is set, of another schedule than FullSchedule, at a minute when
// FullSchedule does not fire as well (when both fire together, the run is the full pass, and
// the function's singleton skips the other), or a RequestEvent asking for one
// (IncrementalField). Every other run (RequestEvent without it, ContinueEvent, a dashboard
// invocation) is a full pass.
func (r *Reconciler) incrementalEvent(evt inngestgo.GenericEvent[map[string]any]) bool {
	if incrementalRequest(evt) {
		return true
	}
	if evt.Name != cronEvent || r.cfg.FullSchedule == "" {
		return false
	}
	if c, _ := evt.Data["cron"].(string); c == r.cfg.FullSchedule {
		return false
	}
	return !fullDue(r.cfg.FullSchedule, time.UnixMilli(evt.Timestamp))
}

// incrementalRequest reports whether evt is a RequestEvent that asks for an incremental run
// (IncrementalField true, a JSON boolean).
func incrementalRequest(evt inngestgo.GenericEvent[map[string]any]) bool {
	inc, _ := evt.Data[IncrementalField].(bool)
	return evt.Name == RequestEvent && inc
}

// fullDue reports whether schedule fires within the two minutes up to at (when a cron event
// sent at at was due). A schedule that does not parse is never due.
func fullDue(schedule string, at time.Time) bool {
	s, err := cronParser.Parse(schedule)
	if err != nil || at.IsZero() {
		return false
	}
	return !s.Next(at.Add(-2 * time.Minute)).After(at)
}

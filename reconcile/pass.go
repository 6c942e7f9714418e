package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/inngest/inngestgo"

	"clerksync/clerk"
	"clerksync/store"
)

// ContinueEvent is the event a run of reconcile-users-with-clerk sends when its pass needs more
// steps than one run may take (maxRunSteps): its data's "pass" field carries the pass's state
// (where it stands, and its summary so far), and the run it starts goes on from there. Its id is
// the pass's id and the run's number, so that a retried send starts no second run. The
// function's singleton leaves this event out (a continuation must not be skipped because the
// run that sent it is still ending); the pass's lease in the database keeps one pass at a time.
const ContinueEvent = "clerk-sync/reconcile.users.continue"

// passScope is the users' pass's scope in the store's marks and lease.
const passScope = "users"

// The sets of ids a users' pass marks in the database.
const (
	// setListed: the ids the survey steps read on Clerk's list (counted once each).
	setListed = "listed"
	// setCandidates: the live users the survey did not list, found by the scan steps.
	setCandidates = "candidates"
)

const (
	// findChunk is how many live organizations one org-find-deletions step compares with the
	// ids the write steps marked (orgpass.go).
	findChunk = 20_000
	// scanBatch is how many live users' ids a scan step reads at a time (one request each).
	scanBatch = 1_000
	// maxScanRestarts is how many times the pass starts its scan of the live users again
	// after losing it (store.ErrScanLost) before it fails.
	maxScanRestarts = 3
)

// phaseScan is the users' pass's phase between the survey and the overlap check.
const phaseScan phase = "scan"

// passState is where a users' pass stands between two steps: what ContinueEvent carries to
// the next run. It holds counts and cursors, never a list of ids.
type passState struct {
	passHead
	// Listed and Shared count the users on Clerk's list and the live ones among them.
	Listed int `json:"listed"`
	Shared int `json:"listed_and_stored"`
	// Live counts the live users the scan has read; Scanned is true once it is over.
	Live    int  `json:"live"`
	Scanned bool `json:"scanned,omitempty"`
	// Restarts counts the scans of the live users lost and started again.
	Restarts int `json:"restarts,omitempty"`
	// Check is check-overlap's outcome.
	Check Check `json:"check"`
	// Found counts the deletion candidates.
	Found int `json:"found"`
	// Summary is the pass's summary so far.
	Summary Summary `json:"summary"`
	// Since is when the pass started (Unix ms, the service's clock): it records it as the
	// watermark of the incremental runs when it ends (incremental.go).
	Since int64 `json:"since,omitempty"`
}

// Outputs of the users' pass's steps, as Inngest memoizes them: counts and cursors, each of a
// size that does not grow with the users' count.
type (
	// surveyCount is a survey step's (list-N): Count users on the page, of which Listed not on
	// an earlier page. (How many of them are live in the database, the scan tells: the live
	// users less the candidates.)
	surveyCount struct {
		Count  int `json:"count"`
		Listed int `json:"listed"`
	}
	// writeResult is a write step's (write-N).
	writeResult struct {
		Offset int `json:"offset"`
		// Count is how many users Clerk returned; fewer than the page size ends the list.
		Count int `json:"count"`
		writeCounts
	}
	// scanResult is a scan step's: it read Live live users, of which Found were not listed,
	// and the scan goes on from Next, or is over (Done), or was lost (Lost: it starts again).
	scanResult struct {
		Live  int    `json:"live"`
		Found int    `json:"found"`
		Next  string `json:"next,omitempty"`
		Done  bool   `json:"done,omitempty"`
		Lost  bool   `json:"lost,omitempty"`
	}
	// capResult is cap-deletions's.
	capResult struct {
		// Live counts the live users before the pass wrote anything, the base of the cap.
		Live       int `json:"live"`
		Candidates int `json:"candidates"`
		Refused    int `json:"refused"`
	}
)

// Run reconciles the users once, in steps (see passState.next), outside Inngest (runInline).
// It returns the pass's summary and the first error a step gave up on (see passState.next).
func (r *Reconciler) Run(ctx context.Context) (Summary, error) {
	st := &passState{passHead: passHead{Pass: newPassID(r.cfg.Now()), AllowMassDelete: r.cfg.AllowMassDelete}}
	err := r.runInline(ctx, st)
	return st.Summary, err
}

// kind names the users' pass.
func (*passState) kind() passKind {
	return passKind{scope: passScope, start: "start-pass", resume: "resume-pass", handOver: "continue-pass",
		event: ContinueEvent, eventID: "%s-run-%d", name: "reconciliation with Clerk"}
}

// started returns where the users' pass keeps when it started: the watermark it records when
// it ends (incremental.go).
func (st *passState) started() *int64 { return &st.Since }

// skippedBusy records that the run did nothing: another pass of the users is going.
func (st *passState) skippedBusy() { st.Summary.SkippedBusy = true }

// handedOver returns the summary so far, Continued.
func (st *passState) handedOver() any {
	sum := st.Summary
	sum.Continued = true
	return sum
}

// done records the runs the users' pass took, and logs its summary.
func (st *passState) done(logger *slog.Logger) {
	sum := st.Summary
	if st.Run > 0 {
		st.Summary.Runs = st.Run + 1
	}
	logger.Info("reconciliation with Clerk done", "pass", st.Pass, "runs", st.Run+1,
		"pages", sum.Pages, "seen", sum.Seen, "inserted", sum.Inserted, "updated", sum.Updated, "skipped", sum.Skipped,
		"failed", sum.Failed, "deleted", sum.Deleted, "still_in_clerk", sum.StillInClerk, "refused", sum.Refused,
		"refused_foreign", sum.RefusedForeign)
}

// next takes the users' pass's next step, through p (the runner's runPass, which starts or
// resumes the pass and checks the instance first). The pass writes nothing to the users before
// its checks have passed:
//
//   - start-pass (a new pass) takes the pass's lease, or ends the pass at once when another
//     pass holds it (Summary.SkippedBusy); resume-pass (each next run) renews it. Every step
//     renews it too.
//   - check-instance (each run) reads which Clerk instance the secret key belongs to and
//     refuses another one than the collection follows (or than the pass's first run found).
//   - clear-marks drops the marks an earlier pass left (one that never ended).
//   - list-N read one page of Clerk's list each, mark its ids (listed) and count those live in
//     the database.
//   - scan-N (rescan-K-N after K lost scans) read the live users once, in batches, each
//     until half its budget is spent, N being the live users read before: they count them
//     and mark those not listed (candidates). The scan goes on across steps and runs from a
//     token (store.ScanLiveUsers); a scan lost (store.ErrScanLost) starts again, at most
//     maxScanRestarts times.
//   - check-overlap refuses a list that shares fewer than MinSharedShare of the live users
//     the scan counted, and records the instance when none is recorded yet.
//   - write-N read each page again and write every user on it through the guarded upsert.
//   - cap-deletions applies the safety cap to the candidates' count (a share of the live
//     users before the pass wrote anything). A candidate Clerk still has (one that a webhook
//     created after the survey, or that offset paging hid from it) is confirmed with Clerk
//     before any deletion, and written instead.
//   - delete-N confirm up to deleteChunk candidates each with Clerk (404: gone), in _id
//     order, and tombstone those gone; N counts the candidates dealt with before.
//   - drop-marks drops the pass's marks; end-pass ends its lease.
//
// Each step runs within StepBudget and outputs counts and cursors only. When the run has
// taken maxRunSteps-1 steps before the pass is done, runPass returns errHandOver, st being
// where to go on from. Otherwise it returns the first error that a step gave up on: an error
// wrapping ErrWrongInstance, store.ErrDatabase, store.ErrPassBusy (another pass took over),
// store.ErrScanLost (the scan of the live users lost more than maxScanRestarts times),
// clerk.ErrRateLimited (also an inngestgo.RetryAtError when Clerk said when to come back),
// context.DeadlineExceeded (a step ran out of its budget), or Clerk's or the network's error.
// Refusing a mass deletion, or a list that shares too few users, is not an error: the summary
// reports it (Refused, RefusedForeign) and the log says what to check and how to allow it.
func (st *passState) next(ctx context.Context, p *passRun) error {
	r := p.r
	users := usersKind(r)
	switch st.Phase {
	case phaseClear:
		if err := p.forgetMarks(ctx, "clear-marks", st.Pass); err != nil {
			return err
		}
		st.Phase, st.Offset = phaseSurvey, 0
	case phaseSurvey:
		res, err := passStep(ctx, p, fmt.Sprintf("list-%d", st.Offset), func(ctx context.Context) (surveyCount, error) {
			return r.surveyUsers(ctx, users, st.Pass, st.Offset)
		})
		if err != nil {
			return err
		}
		st.Listed += res.Listed
		st.Offset += r.cfg.PageSize
		if res.Count < r.cfg.PageSize {
			st.Phase, st.Offset = phaseScan, 0
		}
	case phaseScan:
		id := fmt.Sprintf("scan-%d", st.Offset)
		if st.Restarts > 0 {
			id = fmt.Sprintf("rescan-%d-%d", st.Restarts, st.Offset)
		}
		res, err := passStep(ctx, p, id, func(ctx context.Context) (scanResult, error) {
			return r.scanUsers(ctx, st.Pass, st.Offset, st.Cursor, time.Now().Add(r.budget/2))
		})
		if err != nil {
			return err
		}
		if res.Lost {
			st.Restarts++
			st.Offset, st.Cursor, st.Live, st.Found = 0, "", 0, 0
			if st.Restarts > maxScanRestarts {
				err := fmt.Errorf("reconcile: pass %s lost its scan of the live users %d times (the database restarted, or another pass closed it): %w",
					st.Pass, st.Restarts, store.ErrScanLost)
				r.logger.Error("reconciliation with Clerk failed: nothing written or deleted", "pass", st.Pass, "error", err)
				return inngestgo.NoRetryError(err)
			}
			r.logger.Warn("the scan of the live users was lost: starting it again", "pass", st.Pass, "restarts", st.Restarts)
			return nil
		}
		st.Live += res.Live
		st.Found += res.Found
		st.Offset += res.Live
		st.Cursor = res.Next
		if res.Done {
			// The live users the survey listed: those the scan did not find unlisted.
			st.Shared = st.Live - st.Found
			st.Phase, st.Offset, st.Cursor, st.Scanned = phaseOverlap, 0, "", true
		}
	case phaseOverlap:
		if !st.Scanned {
			// A pass that an earlier version handed over before its check: its state holds
			// no live count, so the check must not pass on a count of 0.
			st.Phase, st.Offset, st.Cursor, st.Live, st.Found = phaseScan, 0, "", 0, 0
			return nil
		}
		chk, err := passStep(ctx, p, "check-overlap", func(ctx context.Context) (Check, error) {
			return r.checkOverlap(ctx, p.inst, st.Live, st.Listed, st.Shared)
		})
		if err != nil {
			return err
		}
		st.Check = chk
		st.Phase = phaseWrite
		if chk.Refused {
			st.Summary.RefusedForeign = true
			r.logger.Info("reconciliation with Clerk refused: nothing written or deleted", "refused_foreign", true,
				"clerk_instance", chk.Instance, "live_users", chk.Live, "listed_by_clerk", chk.Listed, "listed_and_stored", chk.Shared)
			st.Phase = phaseCleanup
		}
	case phaseWrite:
		res, err := passStep(ctx, p, fmt.Sprintf("write-%d", st.Offset), func(ctx context.Context) (writeResult, error) {
			return r.writeUsers(ctx, users, st.Offset)
		})
		if err != nil {
			return err
		}
		st.Summary.Pages++
		st.Summary.Seen += res.Count
		st.Summary.addWrites(res.writeCounts)
		st.Offset += r.cfg.PageSize
		if res.Count < r.cfg.PageSize {
			st.Phase, st.Offset = phaseCap, 0
		}
	case phaseCap:
		res, err := passStep(ctx, p, "cap-deletions", func(context.Context) (capResult, error) {
			res := capResult{Live: st.Check.Live, Candidates: st.Found}
			if !r.allowDeletions("users", st.Found, st.Check.Live) {
				res.Refused = st.Found
			}
			return res, nil
		})
		if err != nil {
			return err
		}
		st.Summary.Refused = res.Refused
		st.Phase = phaseDelete
		if res.Refused > 0 || res.Candidates == 0 {
			st.Phase = phaseCleanup
		}
	case phaseDelete:
		res, err := passStep(ctx, p, fmt.Sprintf("delete-%d", st.Offset), func(ctx context.Context) (deleteStep, error) {
			return p.confirmMarked(ctx, setCandidates, users.singular, func(ctx context.Context, id string, res *deletionResult) error {
				return confirmGone(ctx, r, users, id, res)
			})
		})
		if err != nil {
			return err
		}
		st.Summary.addDeletions(res.deletionResult)
		if st.deleted(res) {
			st.Phase, st.Offset, st.Cursor = phaseCleanup, 0, ""
		}
	case phaseCleanup:
		if err := p.forgetMarks(ctx, "drop-marks", ""); err != nil {
			return err
		}
		st.Phase, st.Offset = phaseEnd, 0
	case phaseEnd:
		if _, err := passStep(ctx, p, "end-pass", func(ctx context.Context) (struct{}, error) {
			if err := r.recordPassWatermark(ctx, *st); err != nil {
				return struct{}{}, err
			}
			return struct{}{}, r.users.EndReconcilePass(ctx, passScope, st.Pass, r.cfg.Now())
		}); err != nil {
			return err
		}
		st.Phase = phaseDone
	default:
		return inngestgo.NoRetryError(fmt.Errorf("reconcile: pass %s has an unknown phase %q", st.Pass, st.Phase))
	}
	return nil
}

// surveyUsers reads the page of Clerk's users at offset, marks its ids as listed, and counts
// those no earlier page had. It returns Clerk's, the network's or the database's error.
func (r *Reconciler) surveyUsers(ctx context.Context, users kind[clerk.User], pass string, offset int) (surveyCount, error) {
	page, err := users.list(ctx, r.cfg.PageSize, offset)
	if err != nil {
		r.logger.Error("reading a page of Clerk users failed", "offset", offset, "error", err)
		return surveyCount{}, err
	}
	fresh, err := r.users.MarkReconciled(ctx, passScope, pass, setListed, offset, pageIDs(users, page))
	if err != nil {
		r.logger.Error("marking the users listed failed", "offset", offset, "error", err)
		return surveyCount{}, err
	}
	return surveyCount{Count: len(page), Listed: len(fresh)}, nil
}

// writeUsers reads the page of Clerk's users at offset and writes what it holds. It returns an
// error when Clerk cannot be read or the database fails; users that cannot be written are
// counted as Failed.
func (r *Reconciler) writeUsers(ctx context.Context, users kind[clerk.User], offset int) (writeResult, error) {
	page, err := users.list(ctx, r.cfg.PageSize, offset)
	if err != nil {
		r.logger.Error("reading a page of Clerk users failed", "offset", offset, "error", err)
		return writeResult{}, err
	}
	res := writeResult{Offset: offset, Count: len(page)}
	if res.writeCounts, err = writeAll(ctx, page, users.write); err != nil {
		return writeResult{}, err
	}
	return res, nil
}

// scanUsers reads the live users from the scan's token (a new scan when ""), one batch at a
// time, until the scan is over or stopAt has passed (it reads at least one live user, unless
// the scan ends first), and marks those the survey did not list as deletion candidates (step
// is the count of live users read before). A new scan first drops the candidates a lost one
// marked. A lost scan is not an error: its result says Lost. It returns an error wrapping
// store.ErrDatabase when the database fails.
func (r *Reconciler) scanUsers(ctx context.Context, pass string, step int, token string, stopAt time.Time) (scanResult, error) {
	if token == "" {
		if err := r.users.ForgetReconcileSet(ctx, passScope, pass, setCandidates); err != nil {
			r.logger.Error("dropping the deletion candidates of a lost scan failed", "error", err)
			return scanResult{}, err
		}
	}
	var res scanResult
	for batches := 1; ; batches++ {
		ids, next, err := r.users.ScanLiveUsers(ctx, passScope, pass, token, r.scanBatch)
		if errors.Is(err, store.ErrScanLost) {
			r.logger.Warn("the scan of the live users is lost", "pass", pass, "step", step, "error", err)
			return scanResult{Lost: true}, nil
		}
		if err != nil {
			r.logger.Error("scanning the live users failed", "error", err)
			return scanResult{}, err
		}
		listed, err := r.users.ReconcileMarked(ctx, passScope, pass, setListed, ids)
		if err != nil {
			r.logger.Error("reading the users listed failed", "error", err)
			return scanResult{}, err
		}
		missing := ids
		if len(listed) > 0 {
			in := make(map[string]struct{}, len(listed))
			for _, id := range listed {
				in[id] = struct{}{}
			}
			missing = make([]string, 0, len(ids)-len(listed))
			for _, id := range ids {
				if _, ok := in[id]; !ok {
					missing = append(missing, id)
				}
			}
		}
		marked, err := r.users.MarkReconciled(ctx, passScope, pass, setCandidates, step, missing)
		if err != nil {
			r.logger.Error("marking deletion candidates failed", "error", err)
			return scanResult{}, err
		}
		res.Live += len(ids)
		res.Found += len(marked)
		token = next
		if token == "" {
			res.Done = true
			return res, nil
		}
		if res.Live > 0 && (time.Now().After(stopAt) || (r.scanBatches > 0 && batches >= r.scanBatches)) {
			res.Next = token
			return res, nil
		}
	}
}

package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/inngest/inngestgo"

	"clerksync/store"
)

// passField is the field of a continuation event's data that holds the pass's state.
const passField = "pass"

const (
	// defaultMaxRunSteps is how many steps one run of a pass takes, the hand-over to the next
	// run included: Inngest allows 1,000 per run, so 200 stay spare.
	defaultMaxRunSteps = 800
	// passStaleAfter is how long a pass's lease lasts without a step: past it, a new pass may
	// take over (the old one's run has failed for good, or was cancelled).
	passStaleAfter = 30 * time.Minute
)

// errHandOver ends a run whose steps are spent before its pass is: the next run goes on.
var errHandOver = errors.New("reconcile: this run's steps are spent; the pass goes on in the next run")

// phase is where a pass stands.
type phase string

// The phases the passes share (each pass's next takes them in its order, with its own).
const (
	phaseStart   phase = ""
	phaseClear   phase = "clear"
	phaseSurvey  phase = "survey"
	phaseOverlap phase = "overlap"
	phaseWrite   phase = "write"
	phaseCap     phase = "cap"
	phaseDelete  phase = "delete"
	phaseCleanup phase = "cleanup"
	phaseEnd     phase = "end"
	phaseDone    phase = "done"
)

// passKind names a kind of pass: its scope, the ids of the runner's steps, its event.
type passKind struct {
	// scope is the pass's scope in the store's lease and marks.
	scope string
	// start and resume are the ids of the steps that take the lease in the pass's first run
	// and renew it in each next run; handOver sends the continuation.
	start, resume, handOver string
	// event is the continuation event; eventID formats its id from the pass's id and the
	// number of the run it starts.
	event, eventID string
	// name is what the log lines of a run call the reconciliation.
	name string
}

// passHead is what the state of every pass starts with (its JSON too); a pass's state embeds
// it, and the runner reads and moves it.
type passHead struct {
	// Pass is the pass's id: the id of its first run.
	Pass string `json:"pass"`
	// Run counts the runs of the pass before the current one.
	Run int `json:"run"`
	// AllowMassDelete is the first run's (RequestEvent with allow_mass_delete).
	AllowMassDelete bool `json:"allow_mass_delete,omitempty"`
	// Instance is the Clerk instance the first run's check found.
	Instance string `json:"instance,omitempty"`
	Phase    phase  `json:"phase"`
	// Offset is the offset of the next page of Clerk's list (survey, write), or the count
	// of what the phase dealt with so far (the N of the next step's id).
	Offset int `json:"offset"`
	// Cursor is where the phase goes on from: the last id it dealt with (the users' scan:
	// the scan's token).
	Cursor string `json:"cursor,omitempty"`
}

// head returns h: through it, the runner reads and moves the head of the state that embeds h.
func (h *passHead) head() *passHead { return h }

// deleted moves h past the candidates a delete step dealt with, and reports whether they were
// the last.
func (h *passHead) deleted(res deleteStep) bool {
	h.Offset += res.Done
	if res.Last != "" {
		h.Cursor = res.Last
	}
	return res.Fetched < deleteChunk && res.Done >= res.Fetched
}

// passer is a reconciliation pass that spans Inngest runs, as the runner (this file) drives
// it: *passState (the users', pass.go) and *orgPassState (the organizations', orgpass.go). The
// runner counts a run's steps against maxRunSteps (passStep), holds the pass's lease, checks
// the Clerk instance each run (runPass), and hands the pass over to the next run through the
// pass's continuation event (handOver, runOf); each pass supplies its state, its names (kind)
// and its phases, in order (next).
type passer interface {
	// head returns the state's passHead.
	head() *passHead
	// kind returns the pass's names.
	kind() passKind
	// started returns where the pass keeps when it started (Unix ms, the service's clock),
	// nil when it keeps none: start-pass then outputs no time.
	started() *int64
	// next takes the pass's next step (passStep, through p) and moves the state on; it returns
	// the step's error.
	next(ctx context.Context, p *passRun) error
	// skippedBusy records in the summary that the run did nothing: another pass holds the
	// lease.
	skippedBusy()
	// done records in the summary the runs the pass took, and logs what it did.
	done(logger *slog.Logger)
	// handedOver returns the summary so far, marked Continued: the output of a run that hands
	// the pass on.
	handedOver() any
}

// Outputs of the runner's steps, as Inngest memoizes them.
type (
	// claimResult is start-pass's: Busy names the pass that holds the lease ("" when this one
	// got it).
	claimResult struct {
		Busy string `json:"busy,omitempty"`
		// At is when the pass started (Unix ms), for a pass that keeps it (passer.started).
		At int64 `json:"at,omitempty"`
	}
	// forgetResult is a clear-marks or drop-marks step's (forgetMarks): the collections of
	// marks it dropped.
	forgetResult struct {
		Dropped int `json:"dropped"`
	}
	// deleteStep is a delete step's: it read Fetched candidates and dealt with Done of them,
	// up to Last.
	deleteStep struct {
		deletionResult
		Fetched int    `json:"fetched"`
		Last    string `json:"last,omitempty"`
	}
)

// passRun is one run of a pass: its state and the steps it has taken.
type passRun struct {
	r     *Reconciler
	st    passer
	steps int
	// inst is what the run's check-instance found.
	inst Instances
}

// passStep runs f as the pass's step id (runStep), unless the run has no step left but the
// hand-over: then it returns errHandOver. Unless it is the pass's start step, the step first
// renews the pass's lease (ahead of f's budget: runStepAfter), and fails for good when another
// pass has taken it over.
func passStep[T any](ctx context.Context, p *passRun, id string, f func(context.Context) (T, error)) (T, error) {
	var zero T
	if p.r.maxRunSteps > 0 && p.steps >= p.r.maxRunSteps-1 {
		return zero, errHandOver
	}
	p.steps++
	k, pass := p.st.kind(), p.st.head().Pass
	var renew func(context.Context) error
	if id != k.start {
		renew = func(ctx context.Context) error {
			err := p.r.users.ClaimReconcilePass(ctx, k.scope, pass, false, p.r.cfg.Now(), passStaleAfter)
			if errors.Is(err, store.ErrPassBusy) {
				p.r.logger.Error("another reconciliation pass of the "+k.scope+" has taken over: stopping this one", "pass", pass, "error", err)
				return inngestgo.NoRetryError(err)
			}
			return err
		}
	}
	return runStepAfter(ctx, p.r, id, renew, f)
}

// forgetMarks is the step id that drops the pass's marks, all but keep's (all when "").
func (p *passRun) forgetMarks(ctx context.Context, id, keep string) error {
	_, err := passStep(ctx, p, id, func(ctx context.Context) (forgetResult, error) {
		n, err := p.r.users.ForgetReconcileMarks(ctx, p.st.kind().scope, keep)
		return forgetResult{Dropped: n}, err
	})
	return err
}

// confirmMarked is a delete step's work: it reads the next deleteChunk ids the pass marked in
// set after its cursor, and confirms each through confirm (confirmEach: what names one in the
// log), starting none past half the step's budget but the first. It returns an error when the
// candidates cannot be read, or when the first cannot be confirmed.
func (p *passRun) confirmMarked(ctx context.Context, set, what string,
	confirm func(ctx context.Context, id string, res *deletionResult) error) (deleteStep, error) {
	r, h := p.r, p.st.head()
	stopAt := time.Now().Add(r.budget / 2)
	ids, err := r.users.ReconcileMarksAfter(ctx, p.st.kind().scope, h.Pass, set, h.Cursor, deleteChunk)
	if err != nil {
		r.logger.Error("reading deletion candidates failed", "error", err)
		return deleteStep{}, err
	}
	res, err := confirmEach(ctx, r, ids, stopAt, what, confirm)
	if err != nil {
		return deleteStep{}, err
	}
	out := deleteStep{deletionResult: res, Fetched: len(ids)}
	if res.Done > 0 {
		out.Last = ids[res.Done-1]
	}
	return out, nil
}

// newPassID returns a fresh pass id, for a pass run outside Inngest.
func newPassID(now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("run-%d-%s", now.UnixMilli(), hex.EncodeToString(b[:]))
}

// runInline runs st's pass outside Inngest: the steps run inline, and when a run's steps are
// spent the next run goes on at once, in this call. It returns the first error a step gave up
// on (see runPass).
func (r *Reconciler) runInline(ctx context.Context, st passer) error {
	for {
		err := r.runPass(ctx, st)
		if !errors.Is(err, errHandOver) {
			return err
		}
		st.head().Run++
	}
}

// runPass runs st's pass for one run, and moves st on to where it stands. The start step (a
// new pass) takes the pass's lease, or ends the pass at once when another pass holds it
// (skippedBusy); the resume step (each next run) renews it, and so does every step.
// check-instance (each run) refuses another Clerk instance than the database follows (or than
// the pass's first run found). Then the pass takes its steps (next) until it is done.
//
// When the run has taken maxRunSteps-1 steps before the pass is done, runPass returns
// errHandOver, st being where to go on from. Otherwise it returns the first error a step gave
// up on: see passState.next and orgPassState.next.
func (r *Reconciler) runPass(ctx context.Context, st passer) error {
	p := &passRun{r: r, st: st}
	h, k := st.head(), st.kind()
	if h.Phase == phaseStart {
		since := st.started()
		res, err := passStep(ctx, p, k.start, func(ctx context.Context) (claimResult, error) {
			err := r.users.ClaimReconcilePass(ctx, k.scope, h.Pass, true, r.cfg.Now(), passStaleAfter)
			if errors.Is(err, store.ErrPassBusy) {
				return claimResult{Busy: err.Error()}, nil
			}
			var res claimResult
			if since != nil {
				res.At = r.cfg.Now().UnixMilli()
			}
			return res, err
		})
		if err != nil {
			return err
		}
		if res.Busy != "" {
			r.logger.Warn("another reconciliation pass of the "+k.scope+" is going: this run does nothing", "pass", h.Pass, "busy", res.Busy)
			st.skippedBusy()
			h.Phase = phaseDone
			return nil
		}
		h.Phase = phaseClear
		if since != nil {
			*since = res.At
		}
	} else if _, err := passStep(ctx, p, k.resume, func(context.Context) (struct{}, error) { return struct{}{}, nil }); err != nil {
		return err
	}
	inst, err := passStep(ctx, p, "check-instance", r.checkInstance)
	if err != nil {
		return err
	}
	if h.Instance != "" && inst.Instance != h.Instance {
		return r.wrongInstance(inst.Instance, h.Instance)
	}
	h.Instance, p.inst = inst.Instance, inst
	for h.Phase != phaseDone {
		if err := st.next(ctx, p); err != nil {
			return err
		}
	}
	st.done(r.logger)
	return nil
}

// runOf returns the reconciler of the Inngest run in, and sets st to the run's pass: a new
// one (forRun), its id the run's, or the one the pass's continuation event carries, with its
// AllowMassDelete. It returns an inngestgo.NoRetryError, logged, when such an event carries no
// pass.
func (r *Reconciler) runOf(in inngestgo.Input[map[string]any], st passer) (*Reconciler, error) {
	h, k := st.head(), st.kind()
	run := r.forRun(in.Event)
	if in.Event.Name != k.event {
		h.Pass, h.AllowMassDelete = in.InputCtx.RunID, run.cfg.AllowMassDelete
	} else {
		if err := passOf(in.Event.Data, st); err != nil {
			r.logger.Error(k.name+" cannot go on", "error", err)
			return r, inngestgo.NoRetryError(err)
		}
		run.cfg.AllowMassDelete = h.AllowMassDelete
		run.logger = r.logger.With("event", k.event, "pass", h.Pass, AllowMassDeleteField, h.AllowMassDelete)
	}
	// Inngest calls the function once per step, replaying the steps done: hence Debug.
	run.logger.Debug(k.name+" invoked", "run_id", in.InputCtx.RunID, "attempt", in.InputCtx.Attempt, "pass", h.Pass, "pass_run", h.Run)
	return run, nil
}

// handOver is the step that sends the pass's continuation event with st, moved on to the next
// run, after a run whose steps are spent (errHandOver). It returns the run's output, the
// summary so far (handedOver), or the step's error.
func (r *Reconciler) handOver(ctx context.Context, st passer) (any, error) {
	h, k := st.head(), st.kind()
	h.Run++
	if _, err := runStep(ctx, r, k.handOver, func(ctx context.Context) (string, error) {
		return r.sender.Send(ctx, continuation(st))
	}); err != nil {
		return nil, err
	}
	r.logger.Info(k.name+" goes on in the next run", "pass", h.Pass, "next_run", h.Run, "phase", h.Phase)
	return st.handedOver(), nil
}

// continuation is the event that starts the run after st's: the pass's continuation event,
// carrying st, with an id of the pass and the run, so that Inngest takes a retried send for
// the same event.
func continuation(st passer) inngestgo.Event {
	h, k := st.head(), st.kind()
	id := fmt.Sprintf(k.eventID, h.Pass, h.Run)
	return inngestgo.Event{ID: &id, Name: k.event, Data: map[string]any{passField: st}}
}

// passOf reads st from the data of the pass's continuation event. It returns an error when
// the data holds no pass's state.
func passOf(data map[string]any, st passer) error {
	b, err := json.Marshal(data[passField])
	if err == nil {
		err = json.Unmarshal(b, st)
	}
	if err == nil && st.head().Pass == "" {
		err = errors.New("no pass id")
	}
	if err != nil {
		return fmt.Errorf("reconcile: %s without a pass's state in its data (%v)", st.kind().event, err)
	}
	return nil
}

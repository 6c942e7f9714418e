package functions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/step"
	"golang.org/x/sync/errgroup"

	"clerksync/clerk"
	"clerksync/store"
	"clerksync/syncevent"
)

// upsertUser is the body of sync-user-from-clerk and update-user-from-clerk: both write the
// user through the same guarded upsert, so a create and an update are interchangeable and
// their order does not matter. A run of more than one event is a batch (upsertBatch).
func (f *Functions) upsertUser(ctx context.Context, function string, in Input) (any, error) {
	if len(in.Events) > 1 {
		return f.upsertBatch(ctx, function, in)
	}
	return run(ctx, f, function, in, write[clerk.User, store.User]{
		step: "upsert-user", noun: "user", bad: clerk.ErrBadUser,
		ids:     func(d clerk.User) []any { return []any{"user_id", strings.TrimSpace(d.ID)} },
		prepare: clerk.User.StoreUser,
		object:  syncevent.ObjectUser, id: func(u store.User) string { return u.ID },
		apply: func(ctx context.Context, u store.User) (store.Change, error) {
			return f.users.UpsertUserChange(ctx, u)
		},
		logged: func(u store.User) []any { return []any{"updated_at", u.UpdatedAt} },
		result: func(_ clerk.User, u store.User, out store.Outcome) any {
			return Result{UserID: u.ID, Outcome: out}
		},
	})
}

// batchWorkers bounds the concurrent writes of one batch.
const batchWorkers = 4

// BatchResult is what a batched run of sync-user-from-clerk or update-user-from-clerk returns;
// the Inngest dashboard shows it as the run's output.
type BatchResult struct {
	// Written has the outcome of each event written (or skipped as stale), in batch order.
	Written []Result `json:"written"`
	// Failed lists the events that failed for good, each recorded in sync_failures.
	Failed []FailedEvent `json:"failed,omitempty"`
	// Duplicates lists, once per extra copy, the ids of the events the batch held more than
	// once (a webhook delivery Svix sent twice: Inngest does not drop a repeated event id for
	// a batched function). Only the first copy is written or recorded.
	Duplicates []string `json:"duplicates,omitempty"`
}

// FailedEvent is one event of a batch that failed for good.
type FailedEvent struct {
	EventID   string `json:"event_id"`
	EventName string `json:"event_name"`
	// UserID is the event's data.id, empty when it has none.
	UserID string `json:"user_id,omitempty"`
	// Error is why the event failed.
	Error string `json:"error"`
}

// unrecordedMarker introduces, at the end of the error of a batch run, the JSON list
// ([]FailedEvent) of the events that were neither written nor recorded in sync_failures.
// record-sync-failure reads it (unrecordedEvents) when such a run fails for good.
const unrecordedMarker = "unrecorded events: "

// maxEventError bounds an event's error in that list (in bytes), so that the error of a large
// batch stays small.
const maxEventError = 300

// batchEvent is one event of a batch: its ids, and the user it maps to or why it has none.
type batchEvent struct {
	id, name, userID string
	user             store.User
	// bad is why the event can never be stored: its data cannot be read (eventData), or
	// clerk.User.StoreUser's error.
	bad error
	// duplicate: an earlier event of the batch has the same id; this one is not written.
	duplicate bool
}

// upsertBatch writes a batch of users (Config.BatchSize) in one step, each through its own
// guarded upsert, so the guarantees are those of single events; Inngest retries the step, and
// the writes it already made are replays.
//
// Inngest drops an event whose id it has seen only for functions that are not batched: a
// batch can hold the same delivery twice (a Svix retry, under the same clerk-<svix id>). The
// guarded upsert would skip the second copy, but the step writes each event id once, so that a
// delivery is one write however often the batch holds it; the copies are listed in
// BatchResult.Duplicates. The same delivery in two batches is two runs, and the guarded upsert
// is what keeps the second from changing anything.
//
// Inngest tells record-sync-failure only of a batch's first event, so the step records the
// events that fail for good itself, each under its own event id: an event that cannot be
// stored (clerk.ErrBadUser: data that cannot be read, no id, no updated_at; or
// store.ErrInvalidUser) at once, while the rest of the batch is written, and one whose write
// fails on the last attempt (Attempt maxRetries) then. The run completes once every event is
// written or recorded. When an event can be neither (the database fails on the last attempt), the step
// fails, and so does the run; its error lists those events after unrecordedMarker, and
// record-sync-failure records each when the database is back.
func (f *Functions) upsertBatch(ctx context.Context, function string, in Input) (any, error) {
	events := make([]batchEvent, len(in.Events))
	seen := make(map[string]bool, len(in.Events))
	for i, evt := range in.Events {
		data, err := eventData[clerk.User](evt, clerk.ErrBadUser)
		e := batchEvent{id: eventIDOf(evt), name: evt.Name, userID: strings.TrimSpace(data.ID), bad: err}
		if err == nil {
			e.user, e.bad = data.StoreUser(evt.Timestamp)
		}
		// An event without an id (not one of the bridge's) is never taken for a copy.
		e.duplicate = e.id != "" && seen[e.id]
		seen[e.id] = true
		events[i] = e
	}
	// Logs, metrics and records are all made inside the step, so that the invocation that
	// only replays the step's memoized result does not repeat them. (The step was
	// "upsert-users" when it returned []Result: a run memoized under that id by an earlier
	// version runs this step again, which only replays its writes.)
	res, err := step.Run(ctx, "write-batch", func(ctx context.Context) (BatchResult, error) {
		return f.writeBatch(ctx, function, in.InputCtx, events)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// writeBatch is the step of upsertBatch. It returns an error (retried by Inngest, wrapping the
// first failure) when an event was neither written nor recorded in the failure store.
func (f *Functions) writeBatch(ctx context.Context, function string, ic inngestgo.InputCtx, events []batchEvent) (BatchResult, error) {
	outs := make([]store.Outcome, len(events))
	evtIDs := make([]string, len(events))
	errs := make([]error, len(events))
	var g errgroup.Group
	g.SetLimit(batchWorkers)
	for i, e := range events {
		if e.duplicate {
			continue
		}
		if e.bad != nil {
			errs[i] = e.bad
			continue
		}
		g.Go(func() error {
			// Each event keeps its own error: one failed write (or send) must not stop the
			// others. A user applied (or found already stored) sends its event; a failed send
			// leaves the event unwritten for this attempt, and the retry, which finds the
			// version stored, sends the same event.
			change, err := f.users.UpsertUserChange(ctx, e.user)
			if err == nil {
				evtIDs[i], err = f.emit(ctx, syncevent.ObjectUser, e.user.ID, change)
			}
			outs[i], errs[i] = reported(change), err
			return nil
		})
	}
	_ = g.Wait() // every write returns nil; their errors are in errs

	lastAttempt := ic.Attempt >= maxRetries
	var (
		res        = BatchResult{Written: []Result{}}
		unrecorded []FailedEvent
		cause      error // the first error that left an event unrecorded
	)
	for i, e := range events {
		log := f.runLogger(function, &e.id, ic, "user_id", e.userID)
		if e.duplicate {
			log.Debug("event already in the batch (a delivery sent twice); not written again")
			res.Duplicates = append(res.Duplicates, e.id)
			continue
		}
		err := errs[i]
		if err == nil {
			log.Debug("user written", "outcome", outs[i], "updated_at", e.user.UpdatedAt, "sync_event_id", evtIDs[i])
			f.cfg.Metrics.FunctionRun(function, string(outs[i]))
			res.Written = append(res.Written, Result{UserID: e.user.ID, Outcome: outs[i]})
			continue
		}
		permanent := e.bad != nil || errors.Is(err, store.ErrInvalidUser)
		if permanent {
			f.cfg.Metrics.FunctionRun(function, OutcomeInvalid)
		} else {
			f.cfg.Metrics.FunctionRun(function, OutcomeError)
		}
		failed := FailedEvent{EventID: e.id, EventName: e.name, UserID: e.userID, Error: err.Error()}
		if !permanent && !lastAttempt {
			log.Error("writing user failed; Inngest will retry the batch", "error", err)
			unrecorded = append(unrecorded, failed)
			if cause == nil {
				cause = err
			}
			continue
		}
		recorded, rerr := f.failures.RecordFailure(ctx, store.Failure{
			RunID:      ic.RunID,
			FunctionID: f.cfg.AppID + "-" + function,
			EventID:    e.id,
			EventName:  e.name,
			UserID:     e.userID,
			Error:      failed.Error,
			FailedAt:   time.Now().UTC(),
		})
		switch {
		case rerr != nil:
			log.Error("event failed for good, and recording it in "+store.FailuresCollection+" failed; the batch fails, and "+RecordFailureID+" records it", "error", err, "record_error", rerr)
			unrecorded = append(unrecorded, failed)
			if cause == nil {
				cause = rerr
			}
		case recorded:
			log.Error("event failed for good; recorded in "+store.FailuresCollection+"; replay it from the Inngest dashboard once fixed", "error", err)
			res.Failed = append(res.Failed, failed)
		default:
			log.Debug("failed event already recorded", "error", err)
			res.Failed = append(res.Failed, failed)
		}
	}
	if len(unrecorded) > 0 {
		for i := range unrecorded {
			unrecorded[i].Error = truncate(unrecorded[i].Error, maxEventError)
		}
		list, _ := json.Marshal(unrecorded) // strings only: cannot fail
		err := fmt.Errorf("%d of the batch's %d events were neither written nor recorded in %s: %w\n%s%s",
			len(unrecorded), len(events), store.FailuresCollection, cause, unrecordedMarker, list)
		return BatchResult{}, err
	}
	f.logger.Info("batch of users written", "function", function, "run_id", ic.RunID, "attempt", ic.Attempt,
		"events", len(events), "written", len(res.Written), "failed", len(res.Failed), "duplicates", len(res.Duplicates))
	return res, nil
}

// truncate returns s cut to at most n bytes (at a rune boundary), marked with "..." when cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// errorOutcome is the metrics outcome of a failed write: invalid for input the store refuses
// (not retried), error otherwise (retried).
func errorOutcome(err error) string {
	if invalidInput(err) {
		return OutcomeInvalid
	}
	return OutcomeError
}

// invalidInput reports whether err is the store refusing its input, which no retry changes.
func invalidInput(err error) bool {
	return errors.Is(err, store.ErrInvalidUser) || errors.Is(err, store.ErrInvalidOrganization) || errors.Is(err, store.ErrInvalidMembership)
}

// retryUnlessInvalid returns err as a NoRetryError when it is the store refusing its input
// (invalidInput), and as it is (retried by Inngest) otherwise.
func retryUnlessInvalid(err error) error {
	if invalidInput(err) {
		return inngestgo.NoRetryError(err)
	}
	return err
}

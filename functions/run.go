package functions

import (
	"context"
	"fmt"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/step"

	"clerksync/store"
	"clerksync/syncevent"
)

// write is what one of the nine functions does with its event, besides what run does for all
// of them: D is the event's data as decoded, V what the store is handed.
type write[D, V any] struct {
	// step is the id of the step that writes. Inngest memoizes the step's outcome under it, so
	// a run in flight across an upgrade needs it unchanged.
	step string
	// noun names what is written, in the log lines: user, organization, membership.
	noun string
	// deletes is true when the write turns the object into a tombstone (the log lines say
	// deleting and deleted, not writing and written).
	deletes bool
	// bad is what the error of data that does not read as a D wraps: clerk.ErrBadUser,
	// clerk.ErrBadOrganization or clerk.ErrBadMembership.
	bad error
	// ids returns the log attributes naming the object, from the data as far as it was read.
	ids func(d D) []any
	// prepare returns what the store is handed, from the data and the event's ts, or an error
	// wrapping bad when the event cannot be applied (no id, nothing to order it by).
	prepare func(d D, ts int64) (V, error)
	// object is what the events of the write are about (syncevent.ObjectUser, ...), and id
	// returns the object's id from what the store is handed.
	object string
	id     func(v V) string
	// apply is the store's write, telling what it changed.
	apply func(ctx context.Context, v V) (store.Change, error)
	// logged returns the attributes of a write's log line besides its outcome; nil: none.
	logged func(v V) []any
	// result returns the run's output.
	result func(d D, v V, out store.Outcome) any
}

// run is the body of the nine functions (a batch aside, see upsertBatch): it decodes the
// event's data, prepares the write and makes it inside the step w.step, logging the run's ids
// (runLogger) and counting each attempt's outcome in Config.Metrics. Its error policy is the
// same for all nine: data that cannot be read, an event that cannot be applied, and input the
// store refuses (invalidInput) fail with a NoRetryError, counted as invalid; any other error
// of the store (the database is down) is returned as it is, counted as error, and Inngest
// retries the step.
//
// After a write that applied a change, or that found its own version already stored (the
// retry of a step whose write succeeded and whose send failed), the step sends the change's
// event (emit) when Config.Events is set: in the same step, so that a change still costs one
// run and one step. A failed send fails the step, counted as error, and Inngest retries it.
func run[D, V any](ctx context.Context, f *Functions, function string, in Input, w write[D, V]) (any, error) {
	evt := in.Event
	data, err := eventData[D](evt, w.bad)
	log := f.runLogger(function, evt.ID, in.InputCtx, w.ids(data)...)
	if err != nil {
		log.Error("event data cannot be read; not retrying", "error", err)
		f.cfg.Metrics.FunctionRun(function, OutcomeInvalid)
		return nil, inngestgo.NoRetryError(err)
	}
	writing, written, unusable := "writing ", " written", "event cannot be stored; not retrying"
	if w.deletes {
		writing, written, unusable = "deleting ", " deleted", "event cannot be applied; not retrying"
	}
	v, err := w.prepare(data, evt.Timestamp)
	if err != nil {
		log.Error(unusable, "error", err)
		f.cfg.Metrics.FunctionRun(function, OutcomeInvalid)
		return nil, inngestgo.NoRetryError(err)
	}
	outcome, err := step.Run(ctx, w.step, func(ctx context.Context) (store.Outcome, error) {
		change, err := w.apply(ctx, v)
		if err != nil {
			next := "Inngest will retry"
			if invalidInput(err) {
				next = "not retrying"
			}
			log.Error(writing+w.noun+" failed; "+next, "error", err)
			f.cfg.Metrics.FunctionRun(function, errorOutcome(err))
			return "", err
		}
		out := reported(change)
		attrs := []any{"outcome", out}
		if w.logged != nil {
			attrs = append(attrs, w.logged(v)...)
		}
		evtID, err := f.emit(ctx, w.object, w.id(v), change)
		if err != nil {
			log.Error(w.noun+written+", but sending its event failed; Inngest will retry", append(attrs, "error", err)...)
			f.cfg.Metrics.FunctionRun(function, OutcomeError)
			return "", err
		}
		if evtID != "" {
			attrs = append(attrs, "sync_event_id", evtID)
		}
		log.Info(w.noun+written, attrs...)
		f.cfg.Metrics.FunctionRun(function, string(out))
		return out, nil
	})
	if err != nil {
		return nil, retryUnlessInvalid(err)
	}
	return w.result(data, v, outcome), nil
}

// deletion is what a delete function hands the store: the id of the object to delete, and
// when it was deleted (Unix milliseconds).
type deletion struct {
	id string
	at int64
}

// deletionAt returns the deletion of id at the event's ts, or now when the event has none.
func deletionAt(id string, ts int64) deletion {
	if ts <= 0 {
		ts = time.Now().UnixMilli()
	}
	return deletion{id: id, at: ts}
}

// reported returns the outcome a run reports, counts and logs for change: the store's, with
// AlreadyStored reported as Skipped (the write changed nothing), as before the events.
func reported(c store.Change) store.Outcome {
	if c.Outcome == store.AlreadyStored {
		return store.Skipped
	}
	return c.Outcome
}

// eventOf returns the event of change, a write of the object id, and whether it has one: an
// applied upsert (Inserted, Updated) or its version found already stored (AlreadyStored) is
// created or updated, by how the stored version was written; a deletion (Deleted, or
// AlreadyDeleted: the tombstone's first deletion) is deleted. A stale or refused write
// (Skipped) has none.
func eventOf(object, id string, c store.Change) (syncevent.Event, bool) {
	var kind string
	switch c.Outcome {
	case store.Inserted, store.Updated, store.AlreadyStored:
		kind = syncevent.Updated
		if c.Created {
			kind = syncevent.Created
		}
	case store.Deleted, store.AlreadyDeleted:
		kind = syncevent.Deleted
	default:
		return syncevent.Event{}, false
	}
	return syncevent.New(object, kind, id, c.At, c.Fields), true
}

// emit sends the event of change (eventOf) through Config.Events, and returns its id: "" when
// events are off or the change has none. It returns the sender's error when the send failed.
func (f *Functions) emit(ctx context.Context, object, id string, change store.Change) (string, error) {
	if f.cfg.Events == nil {
		return "", nil
	}
	evt, ok := eventOf(object, id, change)
	if !ok {
		return "", nil
	}
	if _, err := f.cfg.Events.Send(ctx, evt); err != nil {
		return "", fmt.Errorf("send %s %s: %w", evt.Name, evt.ID, err)
	}
	return evt.ID, nil
}

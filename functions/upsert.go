package functions

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/step"

	"clerksync/store"
)

// upsertUser is the body of sync-user-from-clerk and update-user-from-clerk: both write the
// user through the same guarded upsert, so a create and an update are interchangeable and
// their order does not matter.
func (f *Functions) upsertUser(ctx context.Context, function string, in inngestgo.Input[ClerkUser]) (any, error) {
	if len(in.Events) > 1 {
		return f.upsertBatch(ctx, function, in)
	}
	evt := in.Event
	log := f.runLogger(function, evt.ID, evt.Data.ID, in.InputCtx)
	u, err := UserFromClerk(evt.Data, evt.Timestamp)
	if err != nil {
		log.Error("event cannot be stored; not retrying", "error", err)
		f.cfg.Metrics.FunctionRun(function, OutcomeInvalid)
		return nil, inngestgo.NoRetryError(err)
	}
	outcome, err := step.Run(ctx, "upsert-user", func(ctx context.Context) (store.Outcome, error) {
		out, err := f.users.UpsertUser(ctx, u)
		if err != nil {
			log.Error("writing user failed; Inngest will retry", "error", err)
			f.cfg.Metrics.FunctionRun(function, errorOutcome(err))
			return "", err
		}
		log.Info("user written", "outcome", out, "updated_at", u.UpdatedAt)
		f.cfg.Metrics.FunctionRun(function, string(out))
		return out, nil
	})
	if err != nil {
		if errors.Is(err, store.ErrInvalidUser) {
			return nil, inngestgo.NoRetryError(err)
		}
		return nil, err
	}
	return Result{UserID: u.ID, Outcome: outcome}, nil
}

// batchWorkers bounds the concurrent writes of one batch.
const batchWorkers = 4

// upsertBatch writes a batch of users (Config.BatchSize) in one step, each through its own
// guarded upsert, so the guarantees are those of single events. An event that cannot be
// stored is logged and left out (failing the batch would drop the others); a database error
// fails the step, and Inngest retries the whole batch, whose writes already made are replays.
func (f *Functions) upsertBatch(ctx context.Context, function string, in inngestgo.Input[ClerkUser]) (any, error) {
	var users []store.User
	for _, evt := range in.Events {
		u, err := UserFromClerk(evt.Data, evt.Timestamp)
		if err != nil {
			f.runLogger(function, evt.ID, evt.Data.ID, in.InputCtx).Error("event cannot be stored; left out of the batch", "error", err)
			continue
		}
		users = append(users, u)
	}
	// Unusable events are counted with the writes (inside the step), so that the invocation
	// that only replays the step's memoized result does not count them again.
	countInvalid := func() {
		for range len(in.Events) - len(users) {
			f.cfg.Metrics.FunctionRun(function, OutcomeInvalid)
		}
	}
	if len(users) == 0 {
		countInvalid()
		return nil, inngestgo.NoRetryError(fmt.Errorf("%w: none of the %d events in the batch", ErrBadUser, len(in.Events)))
	}
	return step.Run(ctx, "upsert-users", func(ctx context.Context) ([]Result, error) {
		results := make([]Result, len(users))
		errs := make([]error, len(users))
		sem := make(chan struct{}, batchWorkers)
		var wg sync.WaitGroup
		for i, u := range users {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				out, err := f.users.UpsertUser(ctx, u)
				results[i], errs[i] = Result{UserID: u.ID, Outcome: out}, err
			}()
		}
		wg.Wait()
		countInvalid()
		for i := range results {
			if errs[i] != nil {
				f.cfg.Metrics.FunctionRun(function, errorOutcome(errs[i]))
			} else {
				f.cfg.Metrics.FunctionRun(function, string(results[i].Outcome))
			}
		}
		if err := errors.Join(errs...); err != nil {
			f.logger.Error("writing a batch of users failed; Inngest will retry the batch", "function", function, "run_id", in.InputCtx.RunID, "events", len(in.Events), "error", err)
			return nil, err
		}
		f.logger.Info("batch of users written", "function", function, "run_id", in.InputCtx.RunID, "events", len(in.Events))
		return results, nil
	})
}

// errorOutcome is the metrics outcome of a failed write: invalid for input the store refuses
// (not retried), error otherwise (retried).
func errorOutcome(err error) string {
	if errors.Is(err, store.ErrInvalidUser) {
		return OutcomeInvalid
	}
	return OutcomeError
}

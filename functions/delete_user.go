package functions

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/step"

	"clerksync/clerk"
	"clerksync/store"
)

// DeleteUser is delete-user-with-clerk, run for each clerk/user.deleted event. It turns the
// user into a tombstone without personal data that no later create or update brings back;
// deleting a user the database never saw succeeds (and leaves a tombstone). It returns a
// NoRetryError for data it cannot read as Clerk's DeletedObject or without a user id, and the
// store's error (which Inngest retries) when the database fails.
func (f *Functions) DeleteUser(ctx context.Context, in Input) (any, error) {
	evt := in.Event
	data, err := eventData[clerk.DeletedObject](evt, clerk.ErrBadUser)
	id := strings.TrimSpace(data.ID)
	log := f.runLogger(DeleteUserID, evt.ID, id, in.InputCtx)
	if err != nil {
		log.Error("event data cannot be read; not retrying", "error", err)
		f.cfg.Metrics.FunctionRun(DeleteUserID, OutcomeInvalid)
		return nil, inngestgo.NoRetryError(err)
	}
	if id == "" {
		err := fmt.Errorf("%w: data.id is missing", clerk.ErrBadUser)
		log.Error("event cannot be applied; not retrying", "error", err)
		f.cfg.Metrics.FunctionRun(DeleteUserID, OutcomeInvalid)
		return nil, inngestgo.NoRetryError(err)
	}
	deletedAt := evt.Timestamp
	if deletedAt <= 0 {
		deletedAt = time.Now().UnixMilli()
	}
	outcome, err := step.Run(ctx, "delete-user", func(ctx context.Context) (store.Outcome, error) {
		out, err := f.users.DeleteUser(ctx, id, deletedAt)
		if err != nil {
			log.Error("deleting user failed; Inngest will retry", "error", err)
			f.cfg.Metrics.FunctionRun(DeleteUserID, errorOutcome(err))
			return "", err
		}
		log.Info("user deleted", "outcome", out)
		f.cfg.Metrics.FunctionRun(DeleteUserID, string(out))
		return out, nil
	})
	if err != nil {
		return nil, retryUnlessInvalid(err)
	}
	return Result{UserID: id, Outcome: outcome}, nil
}

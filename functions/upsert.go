package functions

import (
	"context"
	"errors"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/step"

	"clerksync/store"
)

// upsertUser is the body of sync-user-from-clerk and update-user-from-clerk: both write the
// user through the same guarded upsert, so a create and an update are interchangeable and
// their order does not matter.
func (f *Functions) upsertUser(ctx context.Context, function string, in inngestgo.Input[ClerkUser]) (any, error) {
	evt := in.Event
	log := f.runLogger(function, evt.ID, evt.Data.ID, in.InputCtx)
	u, err := UserFromClerk(evt.Data, evt.Timestamp)
	if err != nil {
		log.Error("event cannot be stored; not retrying", "error", err)
		return nil, inngestgo.NoRetryError(err)
	}
	outcome, err := step.Run(ctx, "upsert-user", func(ctx context.Context) (store.Outcome, error) {
		out, err := f.users.UpsertUser(ctx, u)
		if err != nil {
			log.Error("writing user failed; Inngest will retry", "error", err)
			return "", err
		}
		log.Info("user written", "outcome", out, "updated_at", u.UpdatedAt)
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

package functions

import (
	"context"
	"fmt"
	"strings"

	"clerksync/clerk"
	"clerksync/store"
	"clerksync/syncevent"
)

// DeleteUser is delete-user-with-clerk, run for each clerk/user.deleted event. It turns the
// user into a tombstone without personal data that no later create or update brings back;
// deleting a user the database never saw succeeds (and leaves a tombstone). The deletion time
// is the event's ts. It returns a NoRetryError for data it cannot read as Clerk's
// DeletedObject, without a user id, or that the store refuses, and the store's error (which
// Inngest retries) when the database fails.
func (f *Functions) DeleteUser(ctx context.Context, in Input) (any, error) {
	return run(ctx, f, DeleteUserID, in, write[clerk.DeletedObject, deletion]{
		step: "delete-user", noun: "user", deletes: true, bad: clerk.ErrBadUser,
		ids: func(d clerk.DeletedObject) []any { return []any{"user_id", strings.TrimSpace(d.ID)} },
		prepare: func(d clerk.DeletedObject, ts int64) (deletion, error) {
			id := strings.TrimSpace(d.ID)
			if id == "" {
				return deletion{}, fmt.Errorf("%w: data.id is missing", clerk.ErrBadUser)
			}
			return deletionAt(id, ts), nil
		},
		object: syncevent.ObjectUser, id: func(d deletion) string { return d.id },
		apply: func(ctx context.Context, d deletion) (store.Change, error) {
			return f.users.DeleteUserChange(ctx, d.id, d.at)
		},
		result: func(_ clerk.DeletedObject, d deletion, out store.Outcome) any {
			return Result{UserID: d.id, Outcome: out}
		},
	})
}

package store

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// conditionalWrites is the users' strategy of WritesConditional (what WritesAuto picks on
// MongoDB): every write carries its guard in its filter, so it is one atomic write whatever
// the number of writers, in this process or others. The caller's read only chooses what to
// write. It gives the results userWrites describes: errStale when the filter matched nothing,
// and a unique-index violation from the username index, or from the _id index when an
// upsert's filter missed a user that exists.
type conditionalWrites struct{ users *mongo.Collection }

// upsert updates the user only while it is live with an older (or no, or non-numeric)
// updated_at, and inserts it when no document matches: which fails on the _id index if the
// user exists (conditionalDocs, the core every collection shares). found is not needed: the
// filter holds the guard. A repair (u.Repair) also updates a user with the same updated_at,
// which UpsertUser found differing from u: its filter is {_id, updated_at not > new, deleted
// != true}, so it still never writes over a newer user or a tombstone.
func (w conditionalWrites) upsert(ctx context.Context, u User, set, unset bson.D, found bool) (Outcome, error) {
	if u.Repair {
		return upsertWhere(ctx, w.users, "user", u.ID, notAbove(u.UpdatedAt), set, unset)
	}
	return conditionalDocs{}.upsert(ctx, w.users, "user", u.ID, u.UpdatedAt, set, unset, found)
}

// rename sets the username of h only while h is live and still holds the username and the
// updated_at (matched exactly, or missing) it was read with: other processes write too.
func (w conditionalWrites) rename(ctx context.Context, h userDoc, next string) error {
	updated := bson.E{Key: fieldUpdatedAt, Value: h.RawUpdatedAt}
	if h.RawUpdatedAt.Type == 0 {
		updated.Value = bson.D{{Key: "$exists", Value: false}}
	}
	filter := append(idIs(h.ID), bson.E{Key: fieldUsername, Value: h.Username}, updated, notDeleted())
	return renameWhere(ctx, w.users, filter, h.ID, next)
}

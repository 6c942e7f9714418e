package store

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// conditionalWrites is the strategy of WritesConditional (what WritesAuto picks on MongoDB):
// every write carries its guard in its filter, so it is one atomic write whatever the number
// of writers, in this process or others. The caller's read only chooses what to write. It
// gives the results userWrites describes: errStale when the filter matched nothing, and a
// unique-index violation from the username index, or from the _id index when an upsert's
// filter missed a user that exists.
type conditionalWrites struct{ users *mongo.Collection }

// upsert updates the user only while it is live with an older (or no, or non-numeric)
// updated_at, and inserts it when no document matches: which fails on the _id index if the
// user exists. found is not needed: the filter holds the guard.
func (w conditionalWrites) upsert(ctx context.Context, u User, name string, _ bool) (Outcome, error) {
	filter := append(idIs(u.ID),
		bson.E{Key: fieldUpdatedAt, Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$gte", Value: u.UpdatedAt}}}}},
		notDeleted())
	res, err := w.users.UpdateOne(ctx, filter, updateOf(userFields(u, name)), options.UpdateOne().SetUpsert(true))
	switch {
	case err != nil:
		return "", writeErr("upsert user", u.ID, err)
	case res.UpsertedCount > 0:
		return Inserted, nil
	case res.MatchedCount > 0:
		return Updated, nil
	}
	return "", errStale
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

// delete replaces the user while it is live, or inserts tomb when no document matches: which
// fails on the _id index if a tombstone exists. found is not needed: the filter holds the
// guard.
func (w conditionalWrites) delete(ctx context.Context, id string, _ bool, tomb bson.D) error {
	res, err := w.users.ReplaceOne(ctx, append(idIs(id), notDeleted()), tomb, options.Replace().SetUpsert(true))
	if err != nil {
		return writeErr("delete user", id, err)
	}
	if res.MatchedCount+res.UpsertedCount == 0 {
		return errStale
	}
	return nil
}

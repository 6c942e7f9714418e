package store

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// byIDWrites is the strategy of WritesByID (what WritesAuto picks on FerretDB): every write has
// a filter of _id alone, the one filter FerretDB v1 looks up without scanning the collection.
// The caller's read, under the user's lock, is the guard: an insert when it found no user, an
// update or replacement by _id otherwise. Atomic for the writers of one process. It gives the
// results userWrites describes: errStale only from rename, when the user vanished since the
// read; a unique-index violation from the username index (or from the _id index, when a
// document appeared since the read).
type byIDWrites struct{ users *mongo.Collection }

// upsert inserts u when the caller found no stored user, and updates it by _id otherwise.
func (w byIDWrites) upsert(ctx context.Context, u User, name string, found bool) (Outcome, error) {
	set, unset := userFields(u, name)
	if !found {
		if _, err := w.users.InsertOne(ctx, append(idIs(u.ID), set...)); err != nil {
			return "", writeErr("insert user", u.ID, err)
		}
		return Inserted, nil
	}
	if _, err := w.users.UpdateOne(ctx, idIs(u.ID), updateOf(set, unset)); err != nil {
		return "", writeErr("update user", u.ID, err)
	}
	return Updated, nil
}

// rename sets the username of h by _id: the caller holds h's lock.
func (w byIDWrites) rename(ctx context.Context, h userDoc, next string) error {
	return renameWhere(ctx, w.users, idIs(h.ID), h.ID, next)
}

// delete inserts tomb when the caller found no stored user, and replaces it by _id otherwise.
func (w byIDWrites) delete(ctx context.Context, id string, found bool, tomb bson.D) error {
	var err error
	if found {
		_, err = w.users.ReplaceOne(ctx, idIs(id), tomb)
	} else {
		_, err = w.users.InsertOne(ctx, tomb)
	}
	if err != nil {
		return writeErr("delete user", id, err)
	}
	return nil
}

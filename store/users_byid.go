package store

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// byIDWrites is the users' strategy of WritesByID (what WritesAuto picks on FerretDB): every
// write has a filter of _id alone, the one filter FerretDB v1 looks up without scanning the
// collection. The caller's read, under the user's lock, is the guard: an insert when it found
// no user, an update by _id otherwise (byIDDocs, the core every collection shares). Atomic for
// the writers of one process. It gives the results userWrites describes: errStale only from
// rename, when the user vanished since the read; a unique-index violation from the username
// index (or from the _id index, when a document appeared since the read).
type byIDWrites struct{ users *mongo.Collection }

// upsert inserts u when the caller found no stored user, and updates it by _id otherwise.
func (w byIDWrites) upsert(ctx context.Context, u User, set, unset bson.D, found bool) (Outcome, error) {
	return byIDDocs{}.upsert(ctx, w.users, "user", u.ID, u.UpdatedAt, set, unset, found)
}

// rename sets the username of h by _id: the caller holds h's lock.
func (w byIDWrites) rename(ctx context.Context, h userDoc, next string) error {
	return renameWhere(ctx, w.users, idIs(h.ID), h.ID, next)
}

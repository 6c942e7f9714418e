package store

import (
	"context"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// LiveUserIDs returns the ids of every live (not deleted) user, in ascending order. Reconciling
// with Clerk compares them with the users Clerk lists. Documents whose _id is not a string
// (an application's own, in a collection it shares) are not Clerk users and are left out. It
// returns an error wrapping ErrDatabase when the read fails.
func (s *Store) LiveUserIDs(ctx context.Context) ([]string, error) {
	opts := options.Find().SetProjection(bson.D{{Key: fieldID, Value: 1}})
	cur, err := s.users.Find(ctx, bson.D{notDeleted()}, opts)
	if err != nil {
		return nil, dbErr("list", "live users", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	ids := []string{}
	for cur.Next(ctx) {
		if id, ok := cur.Current.Lookup(fieldID).StringValueOK(); ok {
			ids = append(ids, id)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, dbErr("list", "live users", err)
	}
	// Sorted here rather than by the server: FerretDB's SQLite backend sorts in memory anyway.
	slices.Sort(ids)
	return ids, nil
}

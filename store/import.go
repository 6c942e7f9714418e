package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// InsertNewUsers writes users the collection does not hold yet, in one request: each as
// UpsertUser would insert it (its Clerk username, or the first username derived for it), and
// never over a stored document, live or deleted. It is the fast path of a first import (tens of
// thousands of users a second on the embedded FerretDB, where UpsertUser takes two requests per
// user); UpsertUser remains the guarded write for everything else. It returns the ids it did not
// insert, in the order given: those the collection already holds, those whose username another
// user holds, and repeated ids; write them with UpsertUser, which settles each case. It returns
// an error wrapping ErrInvalidUser when a user has no id, and one wrapping ErrDatabase when the
// database fails (then some users may have been inserted: UpsertUser skips them as stored).
func (s *Store) InsertNewUsers(ctx context.Context, users []User) (notInserted []string, err error) {
	if len(users) == 0 {
		return nil, nil
	}
	docs := make([]any, len(users))
	for i, u := range users {
		if u.ID == "" {
			return nil, fmt.Errorf("%w: no user id (user %d of %d)", ErrInvalidUser, i+1, len(users))
		}
		set, _ := userFields(u, usernamesFor(u, userDoc{}, false)[0])
		set, _ = recordChange(set, nil, nil, false, u.UpdatedAt)
		docs[i] = append(bson.D{{Key: fieldID, Value: u.ID}}, set...)
	}
	_, err = s.users.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return nil, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return nil, dbErr("insert", fmt.Sprintf("%d users", len(users)), err)
	}
	refused := make([]bool, len(users))
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 && (we.Code != 1 || !strings.Contains(we.Message, "UNIQUE constraint failed")) {
			return nil, dbErr("insert", fmt.Sprintf("%d users", len(users)), err)
		}
		if we.Index >= 0 && we.Index < len(users) {
			refused[we.Index] = true
		}
	}
	for i, r := range refused {
		if r {
			notInserted = append(notInserted, users[i].ID)
		}
	}
	return notInserted, nil
}

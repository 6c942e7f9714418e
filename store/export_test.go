package store

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Test hooks, compiled only into this package's tests.

// InsertRaw inserts doc into the users collection as it is, as an application's own code
// might have written it.
func InsertRaw(ctx context.Context, s *Store, doc bson.D) error {
	_, err := s.users.InsertOne(ctx, doc)
	return err
}

// RawUser returns the users document id as stored.
func RawUser(ctx context.Context, s *Store, id string) (bson.M, error) {
	var m bson.M
	err := s.users.FindOne(ctx, bson.D{{Key: fieldID, Value: id}}).Decode(&m)
	return m, err
}

// WriteStrategy names the write strategy s uses: "by-id" or "conditional".
func WriteStrategy(s *Store) string {
	switch s.writes.(type) {
	case byIDWrites:
		return "by-id"
	case conditionalWrites:
		return "conditional"
	}
	return ""
}

// UsernameCandidate is usernameCandidate.
var UsernameCandidate = usernameCandidate

// IsDuplicate is isDuplicate.
var IsDuplicate = isDuplicate

// SetUsernameRaw sets the username of the user id with a plain update by _id, bypassing the
// store's rules, and returns the driver's error.
func SetUsernameRaw(ctx context.Context, s *Store, id, name string) error {
	_, err := s.users.UpdateOne(ctx, bson.D{{Key: fieldID, Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: fieldUsername, Value: name}}}})
	return err
}

// InsertRawFailure inserts doc into the sync_failures collection as it is, as an earlier
// version of the service wrote it.
func InsertRawFailure(ctx context.Context, s *Store, doc bson.D) error {
	_, err := s.failures().InsertOne(ctx, doc)
	return err
}

// InsertClerkInstanceRaw inserts the clerk_instance document with instance_id set to v as it
// is, as someone editing the database by hand might.
func InsertClerkInstanceRaw(ctx context.Context, s *Store, v any) error {
	_, err := s.meta().InsertOne(ctx, bson.D{{Key: fieldID, Value: ClerkInstanceDoc}, {Key: fieldInstanceID, Value: v}})
	return err
}

// RawDoc returns the document id of the collection coll (in the store's database) as stored.
func RawDoc(ctx context.Context, s *Store, coll, id string) (bson.M, error) {
	var m bson.M
	err := s.users.Database().Collection(coll).FindOne(ctx, bson.D{{Key: fieldID, Value: id}}).Decode(&m)
	return m, err
}

// InsertRawDoc inserts doc into the collection coll (in the store's database) as it is,
// bypassing the store's rules: a delete that stopped after its tombstone, before its cascade.
func InsertRawDoc(ctx context.Context, s *Store, coll string, doc bson.D) error {
	_, err := s.users.Database().Collection(coll).InsertOne(ctx, doc)
	return err
}

// SetBeforeMembershipWrite makes f run inside every UpsertMembership of s between its first
// check of the organization and the user and its write (nil: nothing), holding the
// membership's lock.
func SetBeforeMembershipWrite(s *Store, f func(Membership)) { s.beforeMemberWrite = f }

// LockStripe returns the index of the lock of id.
func LockStripe(s *Store, id string) int { return s.stripe(id) }

// RawUserWhere returns the one users document filter matches, as stored: for documents whose
// _id is not a string.
func RawUserWhere(ctx context.Context, s *Store, filter bson.D) (bson.M, error) {
	var m bson.M
	err := s.users.FindOne(ctx, filter).Decode(&m)
	return m, err
}

// CompareUpdatedAt compares a stored updated_at v (nil: missing) with an event's updatedAt as
// both write modes' reads do: -1 when the document is older than the event, 0 when as new, 1
// when newer.
func CompareUpdatedAt(v any, updatedAt int64) int {
	doc := bson.D{{Key: fieldID, Value: "user_x"}}
	if v != nil {
		doc = append(doc, bson.E{Key: fieldUpdatedAt, Value: v})
	}
	raw, err := bson.Marshal(doc)
	if err != nil {
		panic(err)
	}
	d, err := decodeUser(raw)
	if err != nil {
		panic(err)
	}
	return cmpMillis(d.RawUpdatedAt, updatedAt)
}

// WriteUserUnread hands u, with the username name, to the store's write strategy as UpsertUser
// does after reading a stored user, without reading it: what the write's own guard does when
// the user changed since the read. In WritesConditional, that is the filter alone.
func WriteUserUnread(ctx context.Context, s *Store, u User, name string) (Outcome, error) {
	set, unset := userFields(u, name)
	return s.writes.upsert(ctx, u, set, unset, true)
}

// ScanCursor returns the id of the server cursor that scope's scan record holds (0 for none).
func ScanCursor(ctx context.Context, s *Store, scope string) (int64, error) {
	raw, err := s.meta().FindOne(ctx, idIs(scanDocPrefix+scope)).Raw()
	if err != nil {
		return 0, err
	}
	id, _ := raw.Lookup(fieldCursor).AsInt64OK()
	return id, nil
}

// KillCursor closes the server cursor id of the users collection, leaving any record of it:
// what a server restart does to an open scan.
func KillCursor(ctx context.Context, s *Store, id int64) error { return s.killCursor(ctx, id) }

// CursorOpen reports whether the server still has the cursor id of the users collection. It
// asks for the cursor's next document (getMore), so use it only where the cursor should be
// gone.
func CursorOpen(ctx context.Context, s *Store, id int64) (bool, error) {
	cmd := bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: s.users.Name()}, {Key: "batchSize", Value: int32(1)}}
	err := s.users.Database().RunCommand(ctx, cmd).Err()
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.Code == cursorNotFound {
		return false, nil
	}
	return err == nil, err
}

// InsertRawUsers inserts docs into the users collection as they are, in one request.
func InsertRawUsers(ctx context.Context, s *Store, docs []bson.D) error {
	all := make([]any, len(docs))
	for i, d := range docs {
		all[i] = d
	}
	_, err := s.users.InsertMany(ctx, all)
	return err
}

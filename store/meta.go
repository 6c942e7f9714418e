package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// MetaCollection is the name of the collection that holds the service's own facts about the
// users collection, one document per fact.
const MetaCollection = "sync_metadata"

// ClerkInstanceDoc is the _id of the MetaCollection document that records which Clerk instance
// the users collection follows. Deleting that document by hand lets the next reconciliation or
// backfill record another instance:
//
//	db.sync_metadata.deleteOne({_id: "clerk_instance"})
const ClerkInstanceDoc = "clerk_instance"

// ErrInvalidInstance means a Clerk instance id cannot be recorded as given (it is empty).
var ErrInvalidInstance = errors.New("store: invalid Clerk instance id")

// The field names of the clerk_instance document.
const (
	fieldInstanceID = "instance_id"
	fieldRecordedAt = "recorded_at"
)

// meta returns the sync_metadata collection, in the users collection's database.
func (s *Store) meta() *mongo.Collection {
	return s.users.Database().Collection(MetaCollection)
}

// ClerkInstance returns the id (ins_...) of the Clerk instance the users collection follows,
// or "" when none is recorded yet. It returns an error wrapping ErrDatabase when the read fails
// or the recorded document has no instance_id string (someone edited it by hand).
func (s *Store) ClerkInstance(ctx context.Context) (string, error) {
	raw, err := s.meta().FindOne(ctx, bson.D{{Key: fieldID, Value: ClerkInstanceDoc}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", nil
	}
	if err != nil {
		return "", dbErr("read", MetaCollection+" "+ClerkInstanceDoc, err)
	}
	id, ok := raw.Lookup(fieldInstanceID).StringValueOK()
	if !ok || id == "" {
		return "", fmt.Errorf(`%w: the %s document %q has no instance_id string; delete it (db.%s.deleteOne({_id: %q})) and the next run records the instance again`,
			ErrDatabase, MetaCollection, ClerkInstanceDoc, MetaCollection, ClerkInstanceDoc)
	}
	return id, nil
}

// RecordClerkInstance records id as the Clerk instance the users collection follows, at the
// time at, unless an instance is already recorded: one atomic insert on the document's _id, so
// that of two concurrent callers only the first records. It returns the instance recorded
// afterwards, id or the one recorded before (compare it with id). It returns ErrInvalidInstance
// when id is empty, and an error wrapping ErrDatabase when the database fails.
func (s *Store) RecordClerkInstance(ctx context.Context, id string, at time.Time) (string, error) {
	if id == "" {
		return "", fmt.Errorf("%w: empty; read it from Clerk's GET /v1/jwks before recording it", ErrInvalidInstance)
	}
	doc := bson.D{
		{Key: fieldID, Value: ClerkInstanceDoc},
		{Key: fieldInstanceID, Value: id},
		{Key: fieldRecordedAt, Value: at.UTC()},
	}
	_, err := s.meta().InsertOne(ctx, doc)
	switch {
	case isDuplicate(err):
		return s.ClerkInstance(ctx)
	case err != nil:
		return "", dbErr("record Clerk instance", id, err)
	}
	return id, nil
}

// ForgetClerkInstance deletes the record of the Clerk instance the users collection follows,
// so that the next reconciliation or backfill records the instance of its key (once its
// overlap check passes). It returns the instance that was recorded ("" when none was), and an
// error wrapping ErrDatabase when the database fails.
func (s *Store) ForgetClerkInstance(ctx context.Context) (string, error) {
	// A record without an instance id (edited by hand) is deleted all the same; whether the
	// database answers at all, the delete says.
	recorded, _ := s.ClerkInstance(ctx)
	if _, derr := s.meta().DeleteOne(ctx, bson.D{{Key: fieldID, Value: ClerkInstanceDoc}}); derr != nil {
		return "", dbErr("delete", MetaCollection+" "+ClerkInstanceDoc, derr)
	}
	return recorded, nil
}

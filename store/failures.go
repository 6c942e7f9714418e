package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// FailuresCollection is the name of the collection that records the sync runs that failed for
// good (after their last retry, or at once for data that can never be applied).
const FailuresCollection = "sync_failures"

// ErrInvalidFailure means a failure cannot be recorded as given (it has no run id).
var ErrInvalidFailure = errors.New("store: invalid failure record")

// Failure is one Inngest function run that failed for good.
type Failure struct {
	// RunID is the Inngest run id, the document's _id: one document per failed run.
	RunID string
	// FunctionID is the failed function's full id, <app id>-<function id>.
	FunctionID string
	// EventID is the id of the event the run was started for (clerk-<svix id>).
	EventID string
	// EventName is that event's name, such as clerk/user.created.
	EventName string
	// UserID is the event's data.id; empty when the event had none.
	UserID string
	// Error is the run's error message.
	Error string
	// FailedAt is when Inngest reported the failure.
	FailedAt time.Time
}

// failureDoc is the BSON shape of a document in the sync_failures collection.
type failureDoc struct {
	RunID      string    `bson:"_id"`
	FunctionID string    `bson:"function_id"`
	EventID    string    `bson:"event_id"`
	EventName  string    `bson:"event_name,omitempty"`
	UserID     string    `bson:"user_id,omitempty"`
	Error      string    `bson:"error"`
	FailedAt   time.Time `bson:"failed_at"`
}

// failures returns the sync_failures collection, in the users collection's database.
func (s *Store) failures() *mongo.Collection {
	return s.users.Database().Collection(FailuresCollection)
}

// RecordFailure stores f in the sync_failures collection, keyed by its run id, so recording the
// same run again (a retried recorder, or Inngest sending the failure twice) changes nothing.
// It returns true when f was stored and false when its run was already recorded. It returns
// ErrInvalidFailure when f has no run id, and an error wrapping ErrDatabase when the database
// fails.
func (s *Store) RecordFailure(ctx context.Context, f Failure) (bool, error) {
	if f.RunID == "" {
		return false, fmt.Errorf("%w: no run id", ErrInvalidFailure)
	}
	doc := failureDoc{
		RunID:      f.RunID,
		FunctionID: f.FunctionID,
		EventID:    f.EventID,
		EventName:  f.EventName,
		UserID:     f.UserID,
		Error:      f.Error,
		FailedAt:   f.FailedAt.UTC(),
	}
	// A plain insert: the _id index makes it atomic on MongoDB and FerretDB alike, and a
	// duplicate key means the run is already recorded.
	_, err := s.failures().InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	if err != nil {
		return false, dbErr("record failure of run", f.RunID, err)
	}
	return true, nil
}

// Failures returns every recorded failure, oldest first. It returns an error wrapping
// ErrDatabase when the read fails.
func (s *Store) Failures(ctx context.Context) ([]Failure, error) {
	cur, err := s.failures().Find(ctx, bson.D{})
	if err != nil {
		return nil, dbErr("list", "failures", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	out := []Failure{}
	for cur.Next(ctx) {
		var d failureDoc
		if err := cur.Decode(&d); err != nil {
			return nil, fmt.Errorf("%w: list failures: decode: %v", ErrDatabase, err)
		}
		out = append(out, Failure(d))
	}
	if err := cur.Err(); err != nil {
		return nil, dbErr("list", "failures", err)
	}
	slices.SortFunc(out, func(a, b Failure) int {
		return cmp.Or(a.FailedAt.Compare(b.FailedAt), cmp.Compare(a.RunID, b.RunID))
	})
	return out, nil
}

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

// Failure is one event whose Inngest function run failed for good.
type Failure struct {
	// RunID is the Inngest run id. A failure is stored once per run id and event id: a batched
	// run (several events) can record one failure per event.
	RunID string
	// FunctionID is the failed function's full id, <app id>-<function id>.
	FunctionID string
	// EventID is the id of the event that failed (clerk-<svix id>).
	EventID string
	// EventName is that event's name, such as clerk/user.created.
	EventName string
	// UserID is the event's data.id; empty when the event had none.
	UserID string
	// Error is why the event failed: the run's error message, or the event's own error in a
	// batch.
	Error string
	// FailedAt is when the failure was reported.
	FailedAt time.Time
}

// failureDoc is the BSON shape of a document in the sync_failures collection. Its _id is
// failureKey(run id, event id). Documents written before batches were recorded per event
// have the run id as _id and no run_id field.
type failureDoc struct {
	ID         string    `bson:"_id"`
	RunID      string    `bson:"run_id,omitempty"`
	FunctionID string    `bson:"function_id"`
	EventID    string    `bson:"event_id"`
	EventName  string    `bson:"event_name,omitempty"`
	UserID     string    `bson:"user_id,omitempty"`
	Error      string    `bson:"error"`
	FailedAt   time.Time `bson:"failed_at"`
}

// failureKey returns the _id of the failure of event eventID in run runID: "<run id>/<event
// id>", or the run id alone for a failure without an event id.
func failureKey(runID, eventID string) string {
	if eventID == "" {
		return runID
	}
	return runID + "/" + eventID
}

// failures returns the sync_failures collection, in the users collection's database.
func (s *Store) failures() *mongo.Collection {
	return s.users.Database().Collection(FailuresCollection)
}

// RecordFailure stores f in the sync_failures collection, keyed by its run id and event id
// (_id "<run id>/<event id>"), so recording the same event of the same run again (a retried
// recorder, Inngest sending the failure twice, or a batch run and the recorder both recording
// it) changes nothing, while the events of one batched run are stored apart. It returns true
// when f was stored and false when that event of that run was already recorded. It returns
// ErrInvalidFailure when f has no run id, and an error wrapping ErrDatabase when the database
// fails.
func (s *Store) RecordFailure(ctx context.Context, f Failure) (bool, error) {
	if f.RunID == "" {
		return false, fmt.Errorf("%w: no run id", ErrInvalidFailure)
	}
	key := failureKey(f.RunID, f.EventID)
	doc := failureDoc{
		ID:         key,
		RunID:      f.RunID,
		FunctionID: f.FunctionID,
		EventID:    f.EventID,
		EventName:  f.EventName,
		UserID:     f.UserID,
		Error:      f.Error,
		FailedAt:   f.FailedAt.UTC(),
	}
	// A plain insert: the _id index makes it atomic on MongoDB and FerretDB alike, and a
	// duplicate key means the event of that run is already recorded.
	_, err := s.failures().InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	if err != nil {
		return false, dbErr("record failure", key, err)
	}
	return true, nil
}

// Failures returns every recorded failure, oldest first (then by run id and event id),
// including those recorded before failures were keyed by event. It returns an error wrapping
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
		runID := d.RunID
		if runID == "" {
			runID = d.ID // recorded once per run, keyed by its id alone
		}
		out = append(out, Failure{
			RunID:      runID,
			FunctionID: d.FunctionID,
			EventID:    d.EventID,
			EventName:  d.EventName,
			UserID:     d.UserID,
			Error:      d.Error,
			FailedAt:   d.FailedAt,
		})
	}
	if err := cur.Err(); err != nil {
		return nil, dbErr("list", "failures", err)
	}
	slices.SortFunc(out, func(a, b Failure) int {
		return cmp.Or(a.FailedAt.Compare(b.FailedAt), cmp.Compare(a.RunID, b.RunID), cmp.Compare(a.EventID, b.EventID))
	})
	return out, nil
}

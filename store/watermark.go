package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// watermarkDocPrefix is the prefix of the MetaCollection document that records how far a
// scope's reconciliation has read Clerk: reconcile_watermark_users for the users,
// {_id, at: <date>, recorded_at: <date>}. Deleting it by hand makes the next incremental run a
// full pass:
//
//	db.sync_metadata.deleteOne({_id: "reconcile_watermark_users"})
const watermarkDocPrefix = "reconcile_watermark_"

// fieldWatermark is the watermark document's time.
const fieldWatermark = "at"

// ReconcileWatermark returns the watermark of scope's reconciliation (for example "users"):
// the time up to which every change in Clerk has been read by a complete pass or incremental
// run, and true; or the zero time and false when none is recorded. It returns an error
// wrapping ErrDatabase when the read fails or the document has no date (edited by hand).
func (s *Store) ReconcileWatermark(ctx context.Context, scope string) (time.Time, bool, error) {
	docID := watermarkDocPrefix + scope
	raw, err := s.meta().FindOne(ctx, idIs(docID)).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, dbErr("read", MetaCollection+" "+docID, err)
	}
	at, ok := raw.Lookup(fieldWatermark).DateTimeOK()
	if !ok {
		return time.Time{}, false, dbErr("read", MetaCollection+" "+docID, errors.New("no date in its at field; delete the document and the next run is a full pass"))
	}
	return time.UnixMilli(at).UTC(), true, nil
}

// RecordReconcileWatermark moves the watermark of scope's reconciliation forward to at (now is
// when, for the record); a recorded watermark already at or after at stays (a pass that
// ends after a later incremental run must not move it back). It returns an error wrapping
// ErrDatabase when the database fails.
func (s *Store) RecordReconcileWatermark(ctx context.Context, scope string, at, now time.Time) error {
	docID := watermarkDocPrefix + scope
	set := bson.D{{Key: "$set", Value: bson.D{{Key: fieldWatermark, Value: at.UTC()}, {Key: fieldRecordedAt, Value: now.UTC()}}}}
	// Forward only: the update matches an older watermark; none matched is either no document
	// (inserted below) or a newer one (the insert's duplicate key says so).
	res, err := s.meta().UpdateOne(ctx, bson.D{{Key: fieldID, Value: docID}, {Key: fieldWatermark, Value: bson.D{{Key: "$lt", Value: at.UTC()}}}}, set)
	if err != nil {
		return dbErr("record", MetaCollection+" "+docID, err)
	}
	if res.MatchedCount > 0 {
		return nil
	}
	_, err = s.meta().InsertOne(ctx, bson.D{{Key: fieldID, Value: docID}, {Key: fieldWatermark, Value: at.UTC()}, {Key: fieldRecordedAt, Value: now.UTC()}})
	if err != nil && !isDuplicate(err) {
		return dbErr("record", MetaCollection+" "+docID, err)
	}
	return nil
}

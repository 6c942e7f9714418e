package store

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ReconcilePrefix starts the names of the collections where a reconciliation pass records
// what it has seen, so that its memoized steps carry counts and cursors rather than lists of
// ids: reconcile_<scope>_<pass>_<set> (for example reconcile_users_01J..._seen), one small
// document {_id: <Clerk id>, step} per id. Dropping a pass's collections is what forgets it:
// one cheap command each, where deleting millions of documents from one collection would take
// FerretDB v1 a scan per batch. A pass forgets its marks when it ends, and those of an earlier
// pass that never ended when it starts (ForgetReconcileMarks).
const ReconcilePrefix = "reconcile_"

// The field names of the marks, and of the pass lease (in MetaCollection).
const (
	fieldStep      = "step"
	fieldPass      = "pass"
	fieldHeartbeat = "heartbeat_at"
	fieldDone      = "done"
)

// reconcileDocPrefix is the prefix of the MetaCollection document that leases a scope's
// reconciliation to one pass at a time: reconcile_pass_users for the users.
const reconcileDocPrefix = "reconcile_pass_"

// ErrPassBusy means another reconciliation pass of the same scope holds the lease
// (ClaimReconcilePass).
var ErrPassBusy = errors.New("store: another reconciliation pass is going")

// ErrInvalidPass means a reconciliation scope, pass or set name cannot name a collection: each
// must be letters, digits, '-' or '.', and not empty.
var ErrInvalidPass = errors.New("store: invalid reconciliation pass name")

// marks returns the collection of the set of scope's pass. It returns an error wrapping
// ErrInvalidPass when a name is empty or holds another character than letters, digits, '-' and '.'.
func (s *Store) marks(scope, pass, set string) (*mongo.Collection, error) {
	for _, name := range []string{scope, pass, set} {
		if name == "" || strings.IndexFunc(name, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.')
		}) >= 0 {
			return nil, fmt.Errorf("%w: %q", ErrInvalidPass, name)
		}
	}
	return s.users.Database().Collection(ReconcilePrefix + scope + "_" + pass + "_" + set), nil
}

// MarkReconciled records ids (Clerk ids, none empty) in the set (for example "listed",
// "seen") of the reconciliation pass of scope (for example "users"), as step (a number the
// caller gives each of its steps) saw them. It returns the ids that no other step had marked
// before, in the order given, each once: those this call marked, and those an earlier attempt
// of the same step did (so that a retried step counts what it saw once more, and an id that two
// steps saw, offset paging having shifted it, is counted once). It returns an error wrapping
// ErrInvalidPass for a name that cannot name a collection, and one wrapping ErrDatabase when
// the database fails.
func (s *Store) MarkReconciled(ctx context.Context, scope, pass, set string, step int, ids []string) ([]string, error) {
	c, err := s.marks(scope, pass, set)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	if err := s.newMarks(ctx, c); err != nil {
		return nil, err
	}
	docs := make([]any, len(ids))
	for i, id := range ids {
		docs[i] = bson.D{{Key: fieldID, Value: id}, {Key: fieldStep, Value: step}}
	}
	_, err = c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	dup := map[int]bool{}
	if err != nil {
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
			return nil, dbErr("mark", c.Name(), err)
		}
		for _, we := range bwe.WriteErrors {
			if we.Code != 11000 && (we.Code != 1 || !strings.Contains(we.Message, "UNIQUE constraint failed")) {
				return nil, dbErr("mark", c.Name(), err)
			}
			dup[we.Index] = true
		}
	}
	// The marks made before (by this step's earlier attempt, by another step, or twice in
	// this call), read in one request: rare, as a step is seldom retried and paging seldom
	// shifts.
	var dupIDs []string
	for i := range dup {
		dupIDs = append(dupIDs, ids[i])
	}
	stepOf := map[string]int64{}
	if len(dupIDs) > 0 {
		cur, err := c.Find(ctx, bson.D{{Key: fieldID, Value: bson.D{{Key: "$in", Value: dupIDs}}}})
		if err != nil {
			return nil, dbErr("read marks", c.Name(), err)
		}
		defer cur.Close(context.WithoutCancel(ctx))
		for cur.Next(ctx) {
			id, _ := cur.Current.Lookup(fieldID).StringValueOK()
			n, _ := cur.Current.Lookup(fieldStep).AsInt64OK()
			stepOf[id] = n
		}
		if err := cur.Err(); err != nil {
			return nil, dbErr("read marks", c.Name(), err)
		}
	}
	fresh := make([]string, 0, len(ids))
	taken := map[string]bool{}
	for i, id := range ids {
		if taken[id] {
			continue
		}
		if n, ok := stepOf[id]; !dup[i] || (ok && n == int64(step)) {
			fresh = append(fresh, id)
			taken[id] = true
		}
	}
	return fresh, nil
}

// newMarks creates the collection of marks c, when the store has a SetOnNewCollection hook and
// has not done so in this process, and runs the hook: on the embedded FerretDB, the index that
// makes MarkReconciled's and ReconcileMarked's reads by _id point lookups rather than scans of
// the set. It returns an error wrapping ErrDatabase when the collection cannot be created, and
// the hook's error.
func (s *Store) newMarks(ctx context.Context, c *mongo.Collection) error {
	if s.onNewMarks == nil {
		return nil
	}
	if _, ok := s.indexed.Load(c.Name()); ok {
		return nil
	}
	var ce mongo.CommandError
	if err := c.Database().CreateCollection(ctx, c.Name()); err != nil && !(errors.As(err, &ce) && ce.Code == 48) {
		return dbErr("create", c.Name(), err)
	}
	if err := s.onNewMarks(ctx); err != nil {
		return fmt.Errorf("%w: index %s: %v", ErrDatabase, c.Name(), err)
	}
	s.indexed.Store(c.Name(), struct{}{})
	return nil
}

// ReconcileMarked returns those of ids that the set of scope's pass holds, in the order of ids.
// In WritesByID (FerretDB v1, which pushes down a lone _id and nothing else) it reads each id
// by _id: one point lookup each, whatever the set's size. In WritesConditional (MongoDB) it
// reads them in one request ($in, served by the _id index). It returns an error wrapping
// ErrInvalidPass or ErrDatabase when the read fails.
func (s *Store) ReconcileMarked(ctx context.Context, scope, pass, set string, ids []string) ([]string, error) {
	c, err := s.marks(scope, pass, set)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	var got []string
	if s.mode == WritesByID {
		held, err := eachByID(ctx, c, ids)
		if err != nil {
			return nil, dbErr("read marks", c.Name(), err)
		}
		for i, id := range ids {
			if held[i] {
				got = append(got, id)
			}
		}
		return got, nil
	}
	held := map[string]bool{}
	if err := eachID(ctx, c, bson.D{{Key: fieldID, Value: bson.D{{Key: "$in", Value: ids}}}}, func(id string) { held[id] = true }); err != nil {
		return nil, dbErr("read marks", c.Name(), err)
	}
	for _, id := range ids {
		if held[id] {
			got = append(got, id)
		}
	}
	return got, nil
}

// ReconcileMarksAfter returns the first limit ids (ascending) of the set of scope's pass that
// come after after ("" for the first ones). It returns an error wrapping ErrInvalidPass or
// ErrDatabase when the read fails.
func (s *Store) ReconcileMarksAfter(ctx context.Context, scope, pass, set, after string, limit int) ([]string, error) {
	c, err := s.marks(scope, pass, set)
	if err != nil {
		return nil, err
	}
	ids, err := smallestIDs(ctx, c, bson.D{{Key: fieldID, Value: bson.D{{Key: "$gt", Value: after}}}}, limit)
	if err != nil {
		return nil, dbErr("read marks", c.Name(), err)
	}
	return ids, nil
}

// ForgetReconcileMarks drops the collections of the marks of scope's reconciliation passes:
// every pass's but keep's ("" for none kept). It first closes the scan of the live users
// (ScanLiveUsers) that one of those passes left open, so that an abandoned pass's server
// cursor does not pin FerretDB's SQLite snapshot until the server stops. It returns how many
// collections it dropped, an error wrapping ErrInvalidPass for a scope that cannot name a
// collection, and one wrapping ErrDatabase when the database fails.
func (s *Store) ForgetReconcileMarks(ctx context.Context, scope, keep string) (int, error) {
	if _, err := s.marks(scope, "p", "s"); err != nil {
		return 0, err
	}
	if err := s.closeScan(ctx, scope, keep); err != nil {
		return 0, err
	}
	db := s.users.Database()
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return 0, dbErr("list", "collections", err)
	}
	prefix := ReconcilePrefix + scope + "_"
	n := 0
	for _, name := range names {
		if !strings.HasPrefix(name, prefix) || (keep != "" && strings.HasPrefix(name, prefix+keep+"_")) {
			continue
		}
		s.indexed.Delete(name)
		if err := db.Collection(name).Drop(ctx); err != nil {
			return n, dbErr("drop", name, err)
		}
		n++
	}
	return n, nil
}

// ForgetReconcileSet drops the set of scope's pass (nothing when it holds no marks). It returns
// an error wrapping ErrInvalidPass for a name that cannot name a collection, and one wrapping
// ErrDatabase when the database fails.
func (s *Store) ForgetReconcileSet(ctx context.Context, scope, pass, set string) error {
	c, err := s.marks(scope, pass, set)
	if err != nil {
		return err
	}
	s.indexed.Delete(c.Name())
	if err := c.Drop(ctx); err != nil {
		return dbErr("drop", c.Name(), err)
	}
	return nil
}

// ErrScanLost means a scan of the live users (ScanLiveUsers) cannot go on from the token given:
// its server cursor is gone (the server restarted, a later pass closed it), a call has already
// read on from that token (a retried step), or the token is not one this store's mode made.
// Nothing is wrong with the database: start the scan again, from "".
var ErrScanLost = errors.New("store: the scan of the live users is lost; start it again")

// scanDocPrefix is the prefix of the MetaCollection document that records the server cursor
// of scope's scan of the live users in WritesByID: reconcile_scan_users for the users.
const scanDocPrefix = "reconcile_scan_"

// The fields of the scan's record, and its tokens' prefixes.
const (
	fieldCursor = "cursor"
	fieldSeq    = "seq"
	rangeToken  = "r."
	cursorToken = "c."
	// cursorNotFound is the code of the server's CursorNotFound error.
	cursorNotFound = 43
)

// ScanLiveUsers reads the live users' ids (string _ids, deleted != true) in batches of about
// batch, resumably: each call reads the batch after token ("" to start a scan) and returns its
// ids and the token of the next call, "" when the scan is over. The token is opaque and under
// 50 bytes; a later call may come from another step, run or replica. Every live user that
// stays live from the scan's start to its end comes exactly once.
//
// In WritesConditional (MongoDB) the token is the last id read and each call one request,
// {_id: {$gt: last}, deleted: {$ne: true}} sorted by _id, which the _id index serves.
//
// In WritesByID (FerretDB v1, which pushes down neither a range nor a sort) a scan is one
// server cursor (find, then getMore by its id from any connection), which reads the
// collection once, from the snapshot of its start. The cursor's id and the count of batches
// read are recorded in MetaCollection (reconcile_scan_<scope>, on behalf of pass), so that a
// new scan of scope, and ForgetReconcileMarks for any other pass (and for this one once it
// ends), close a cursor left open; and so that a call from a token that another call has
// read on from (a step that failed after reading, retried) is refused rather than skipping a
// batch.
//
// It returns an error wrapping ErrScanLost when the scan cannot go on from token (start it
// again from ""), ErrInvalidPass when scope or pass cannot name a collection, and ErrDatabase
// when the database fails.
func (s *Store) ScanLiveUsers(ctx context.Context, scope, pass, token string, batch int) (ids []string, next string, err error) {
	if _, err := s.marks(scope, pass, "scan"); err != nil {
		return nil, "", err
	}
	batch = max(batch, 1)
	if s.mode == WritesByID {
		return s.scanByCursor(ctx, scope, pass, token, batch)
	}
	return s.scanByRange(ctx, token, batch)
}

// scanByRange is ScanLiveUsers in WritesConditional: token is rangeToken and the last id read.
func (s *Store) scanByRange(ctx context.Context, token string, batch int) ([]string, string, error) {
	after := ""
	if token != "" {
		var ok bool
		if after, ok = strings.CutPrefix(token, rangeToken); !ok || after == "" {
			return nil, "", fmt.Errorf("%w: %q is not a token of a scan by _id range", ErrScanLost, token)
		}
	}
	filter := bson.D{{Key: fieldID, Value: bson.D{{Key: "$gt", Value: after}}}, notDeleted()}
	opts := options.Find().SetProjection(bson.D{{Key: fieldID, Value: 1}}).
		SetSort(bson.D{{Key: fieldID, Value: 1}}).SetLimit(int64(batch))
	cur, err := s.users.Find(ctx, filter, opts)
	if err != nil {
		return nil, "", dbErr("scan", "live users", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var ids []string
	read := 0
	for cur.Next(ctx) {
		read++
		if id, ok := cur.Current.Lookup(fieldID).StringValueOK(); ok {
			ids = append(ids, id)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, "", dbErr("scan", "live users", err)
	}
	if read < batch || len(ids) == 0 {
		return ids, "", nil
	}
	return ids, rangeToken + ids[len(ids)-1], nil
}

// scanByCursor is ScanLiveUsers in WritesByID: token is cursorToken, the cursor's id and the
// count of batches read ("c.<id>.<n>"), which the scan's record must match.
func (s *Store) scanByCursor(ctx context.Context, scope, pass, token string, batch int) ([]string, string, error) {
	db := s.users.Database()
	docID := scanDocPrefix + scope
	if token == "" {
		// A new scan: close the one an earlier attempt (or an abandoned pass) left open.
		if err := s.closeScan(ctx, scope, ""); err != nil {
			return nil, "", err
		}
		cmd := bson.D{{Key: "find", Value: s.users.Name()}, {Key: "filter", Value: bson.D{notDeleted()}},
			{Key: "projection", Value: bson.D{{Key: fieldID, Value: 1}}}, {Key: "batchSize", Value: int32(batch)}}
		raw, err := db.RunCommand(ctx, cmd).Raw()
		if err != nil {
			return nil, "", dbErr("scan", "live users", err)
		}
		id, ids, err := cursorBatch(raw, "firstBatch")
		if err != nil || id == 0 {
			return ids, "", err
		}
		rec := bson.D{{Key: fieldPass, Value: pass}, {Key: fieldCursor, Value: id}, {Key: fieldSeq, Value: int64(1)}}
		if _, err := s.meta().UpdateOne(ctx, idIs(docID), bson.D{{Key: "$set", Value: rec}}, options.UpdateOne().SetUpsert(true)); err != nil {
			_ = s.killCursor(context.WithoutCancel(ctx), id)
			return nil, "", dbErr("record", MetaCollection+" "+docID, err)
		}
		return ids, cursorTokenOf(id, 1), nil
	}
	id, seq, ok := parseCursorToken(token)
	if !ok {
		return nil, "", fmt.Errorf("%w: %q is not a token of a scan by server cursor", ErrScanLost, token)
	}
	// Move the record on before reading: a call that fails past this point, retried with the
	// same token, finds the record moved on and is refused, instead of skipping the batch this
	// one may have read.
	res, err := s.meta().UpdateOne(ctx,
		bson.D{{Key: fieldID, Value: docID}, {Key: fieldPass, Value: pass}, {Key: fieldCursor, Value: id}, {Key: fieldSeq, Value: seq}},
		bson.D{{Key: "$set", Value: bson.D{{Key: fieldSeq, Value: seq + 1}}}})
	if err != nil {
		return nil, "", dbErr("record", MetaCollection+" "+docID, err)
	}
	if res.MatchedCount == 0 {
		return nil, "", fmt.Errorf("%w: no open scan of pass %s is at %q (%s)", ErrScanLost, pass, token, docID)
	}
	cmd := bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: s.users.Name()}, {Key: "batchSize", Value: int32(batch)}}
	raw, err := db.RunCommand(noDeadline{ctx}, cmd).Raw()
	var ce mongo.CommandError
	if errors.As(err, &ce) && (ce.Code == cursorNotFound || ce.Name == "CursorNotFound") {
		return nil, "", fmt.Errorf("%w: the server has no cursor %d: %v", ErrScanLost, id, err)
	}
	if err != nil {
		return nil, "", dbErr("scan", "live users", err)
	}
	next, ids, err := cursorBatch(raw, "nextBatch")
	if err != nil {
		return nil, "", err
	}
	if next == 0 {
		// Exhausted: the server has closed it; forget it.
		if _, err := s.meta().DeleteOne(ctx, idIs(docID)); err != nil {
			return nil, "", dbErr("delete", MetaCollection+" "+docID, err)
		}
		return ids, "", nil
	}
	return ids, cursorTokenOf(id, seq+1), nil
}

// noDeadline is a context that ends when its parent does but has no deadline: the driver turns
// a context's deadline into a command's maxTimeMS, which the server refuses on getMore of a
// cursor that is not tailable ("cannot set maxTimeMS on getMore command for a non-awaitData
// cursor").
type noDeadline struct{ context.Context }

// Deadline reports no deadline.
func (noDeadline) Deadline() (time.Time, bool) { return time.Time{}, false }

// cursorBatch reads a find or getMore answer: the cursor's id (0 once exhausted) and the
// string _ids of its batch (field firstBatch or nextBatch). It returns an error wrapping
// ErrDatabase when the answer has no cursor.
func cursorBatch(raw bson.Raw, field string) (int64, []string, error) {
	cur, ok := raw.Lookup("cursor").DocumentOK()
	if !ok {
		return 0, nil, fmt.Errorf("%w: scan live users: an answer without a cursor: %s", ErrDatabase, raw)
	}
	id, _ := cur.Lookup("id").AsInt64OK()
	arr, _ := cur.Lookup(field).ArrayOK()
	vals, _ := arr.Values()
	ids := make([]string, 0, len(vals))
	for _, v := range vals {
		if doc, ok := v.DocumentOK(); ok {
			if s, ok := doc.Lookup(fieldID).StringValueOK(); ok {
				ids = append(ids, s)
			}
		}
	}
	return id, ids, nil
}

// cursorTokenOf returns the token of the scan by server cursor id after seq batches.
func cursorTokenOf(id, seq int64) string {
	return cursorToken + strconv.FormatInt(id, 10) + "." + strconv.FormatInt(seq, 10)
}

// parseCursorToken reads a token of cursorTokenOf.
func parseCursorToken(token string) (id, seq int64, ok bool) {
	rest, ok := strings.CutPrefix(token, cursorToken)
	a, b, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return 0, 0, false
	}
	id, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	return id, seq, err1 == nil && err2 == nil && id != 0
}

// closeScan closes the server cursor that scope's scan record holds, unless the record is
// keep's ("" keeps none), and deletes the record. A cursor the server no longer has is no
// error. It returns an error wrapping ErrDatabase when the database fails.
func (s *Store) closeScan(ctx context.Context, scope, keep string) error {
	docID := scanDocPrefix + scope
	raw, err := s.meta().FindOne(ctx, idIs(docID)).Raw()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil
	case err != nil:
		return dbErr("read", MetaCollection+" "+docID, err)
	}
	if holder, _ := raw.Lookup(fieldPass).StringValueOK(); keep != "" && holder == keep {
		return nil
	}
	if id, ok := raw.Lookup(fieldCursor).AsInt64OK(); ok && id != 0 {
		if err := s.killCursor(ctx, id); err != nil {
			return err
		}
	}
	if _, err := s.meta().DeleteOne(ctx, idIs(docID)); err != nil {
		return dbErr("delete", MetaCollection+" "+docID, err)
	}
	return nil
}

// killCursor closes the server cursor id of the users collection (killCursors: an id the
// server does not know is no error). It returns an error wrapping ErrDatabase when the command
// fails.
func (s *Store) killCursor(ctx context.Context, id int64) error {
	cmd := bson.D{{Key: "killCursors", Value: s.users.Name()}, {Key: "cursors", Value: bson.A{id}}}
	if err := s.users.Database().RunCommand(ctx, cmd).Err(); err != nil {
		return dbErr("killCursors", strconv.FormatInt(id, 10), err)
	}
	return nil
}

// CountLiveUsers returns how many live users (with a string _id) the collection holds: on
// FerretDB v1, a scan of the collection (about 0.1 ms a user). It returns an error wrapping
// ErrDatabase when the read fails.
func (s *Store) CountLiveUsers(ctx context.Context) (int, error) {
	n := 0
	if err := eachID(ctx, s.users, bson.D{notDeleted()}, func(string) { n++ }); err != nil {
		return 0, dbErr("count", "live users", err)
	}
	return n, nil
}

// ClaimReconcilePass leases the reconciliation of scope to pass at now, so that one pass runs
// at a time even when it spans several Inngest runs. A new pass (takeOver) gets the lease when
// no other pass holds it: none has, the holder has ended (EndReconcilePass), or its last claim
// is older than staleAfter (a pass whose run failed for good). A pass going on (not takeOver)
// keeps it only while it still holds it and has not ended. Each claim renews the lease's
// time. It returns an
// error wrapping ErrPassBusy, naming the holder, when the lease is another pass's, and one
// wrapping ErrDatabase when the database fails. (The read and the write are two requests: the
// Inngest function's singleton already keeps two new passes from claiming at once.)
func (s *Store) ClaimReconcilePass(ctx context.Context, scope, pass string, takeOver bool, now time.Time, staleAfter time.Duration) error {
	docID := reconcileDocPrefix + scope
	raw, err := s.meta().FindOne(ctx, idIs(docID)).Raw()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
	case err != nil:
		return dbErr("read", MetaCollection+" "+docID, err)
	default:
		holder, _ := raw.Lookup(fieldPass).StringValueOK()
		done, _ := raw.Lookup(fieldDone).BooleanOK()
		at, _ := raw.Lookup(fieldHeartbeat).DateTimeOK()
		fresh := now.Sub(time.UnixMilli(at)) < staleAfter
		if holder != pass && (!takeOver || (!done && fresh)) {
			return fmt.Errorf("%w: pass %s holds %s (last claimed %s)", ErrPassBusy, holder, docID, time.UnixMilli(at).UTC().Format(time.RFC3339))
		}
		if holder == pass && done && !takeOver {
			return fmt.Errorf("%w: pass %s has ended (%s)", ErrPassBusy, pass, docID)
		}
	}
	doc := bson.D{{Key: fieldPass, Value: pass}, {Key: fieldHeartbeat, Value: now.UTC()}, {Key: fieldDone, Value: false}}
	_, err = s.meta().UpdateOne(ctx, idIs(docID), bson.D{{Key: "$set", Value: doc}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return dbErr("claim", MetaCollection+" "+docID, err)
	}
	return nil
}

// EndReconcilePass ends pass's lease of the reconciliation of scope, so that the next pass
// need not wait for it to go stale. A lease held by another pass is left alone. It returns an
// error wrapping ErrDatabase when the database fails.
func (s *Store) EndReconcilePass(ctx context.Context, scope, pass string, now time.Time) error {
	docID := reconcileDocPrefix + scope
	_, err := s.meta().UpdateOne(ctx, bson.D{{Key: fieldID, Value: docID}, {Key: fieldPass, Value: pass}},
		bson.D{{Key: "$set", Value: bson.D{{Key: fieldDone, Value: true}, {Key: fieldHeartbeat, Value: now.UTC()}}}})
	if err != nil {
		return dbErr("end", MetaCollection+" "+docID, err)
	}
	return nil
}

// eachID calls f with the string _id of each document of c that filter matches, in the
// server's order. It returns the driver's error.
func eachID(ctx context.Context, c *mongo.Collection, filter bson.D, f func(string)) error {
	cur, err := c.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: fieldID, Value: 1}}))
	if err != nil {
		return err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		if id, ok := cur.Current.Lookup(fieldID).StringValueOK(); ok {
			f(id)
		}
	}
	return cur.Err()
}

// lookups is how many point lookups eachByID has in flight at once: each waits mostly on its
// round trip, so a few at a time read several times faster than one after another.
const lookups = 8

// eachByID reports, for each of ids, whether c has a document with that _id: one point lookup
// each (all FerretDB v1 pushes down), lookups at a time. It returns the first driver error.
func eachByID(ctx context.Context, c *mongo.Collection, ids []string) ([]bool, error) {
	held := make([]bool, len(ids))
	errs := make([]error, lookups)
	opts := options.FindOne().SetProjection(bson.D{{Key: fieldID, Value: 1}})
	var wg sync.WaitGroup
	for w := range lookups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ids) && errs[w] == nil; i += lookups {
				err := c.FindOne(ctx, idIs(ids[i]), opts).Err()
				switch {
				case errors.Is(err, mongo.ErrNoDocuments):
				case err != nil:
					errs[w] = err
				default:
					held[i] = true
				}
			}
		}()
	}
	wg.Wait()
	return held, errors.Join(errs...)
}

// smallestIDs returns the limit smallest string _ids (ascending) of the documents of c that
// filter matches. It keeps at most limit of them in memory: FerretDB v1 would sort the whole
// collection in memory for a server-side sort, so the ids stream unsorted and a bounded heap
// keeps the smallest. It returns the driver's error.
func smallestIDs(ctx context.Context, c *mongo.Collection, filter bson.D, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	h := &maxHeap{}
	err := eachID(ctx, c, filter, func(id string) {
		switch {
		case h.Len() < limit:
			heap.Push(h, id)
		case id < (*h)[0]:
			(*h)[0] = id
			heap.Fix(h, 0)
		}
	})
	if err != nil {
		return nil, err
	}
	ids := []string(*h)
	slices.Sort(ids)
	return ids, nil
}

// maxHeap is a heap of strings with the largest on top.
type maxHeap []string

func (h maxHeap) Len() int           { return len(h) }
func (h maxHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h maxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *maxHeap) Push(x any)        { *h = append(*h, x.(string)) }
func (h *maxHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

package store

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// ReconcileMarked returns those of ids (ascending, as LiveUserIDsAfter returns them) that the
// set of scope's pass holds, ascending. It reads the marks between the first and the last id:
// one range of _id (on FerretDB v1, which pushes down no range, one scan of the set). It
// returns an error wrapping ErrInvalidPass or ErrDatabase when the read fails.
func (s *Store) ReconcileMarked(ctx context.Context, scope, pass, set string, ids []string) ([]string, error) {
	c, err := s.marks(scope, pass, set)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	want := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		want[id] = struct{}{}
	}
	filter := bson.D{{Key: fieldID, Value: bson.D{{Key: "$gte", Value: ids[0]}, {Key: "$lte", Value: ids[len(ids)-1]}}}}
	var got []string
	err = eachID(ctx, c, filter, func(id string) {
		if _, ok := want[id]; ok {
			got = append(got, id)
		}
	})
	if err != nil {
		return nil, dbErr("read marks", c.Name(), err)
	}
	slices.Sort(got)
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
// every pass's but keep's ("" for none kept). It returns how many it dropped, an error wrapping
// ErrInvalidPass for a scope that cannot name a collection, and one wrapping ErrDatabase when
// the database fails.
func (s *Store) ForgetReconcileMarks(ctx context.Context, scope, keep string) (int, error) {
	if _, err := s.marks(scope, "p", "s"); err != nil {
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
		if err := db.Collection(name).Drop(ctx); err != nil {
			return n, dbErr("drop", name, err)
		}
		n++
	}
	return n, nil
}

// LiveUserIDsAfter returns the ids of the first limit live users (ascending) whose id comes
// after after ("" for the first ones). Documents whose _id is not a string are left out, as in
// LiveUserIDs. It holds no more than limit ids at a time, whatever the collection's size; on
// FerretDB v1, which pushes down neither the range nor the sort, each call scans the
// collection once. It returns an error wrapping ErrDatabase when the read fails.
func (s *Store) LiveUserIDsAfter(ctx context.Context, after string, limit int) ([]string, error) {
	filter := bson.D{{Key: fieldID, Value: bson.D{{Key: "$gt", Value: after}}}, notDeleted()}
	ids, err := smallestIDs(ctx, s.users, filter, limit)
	if err != nil {
		return nil, dbErr("list", "live users", err)
	}
	return ids, nil
}

// CountLiveUsers returns how many live users (with a string _id) the collection holds. It
// returns an error wrapping ErrDatabase when the read fails.
func (s *Store) CountLiveUsers(ctx context.Context) (int, error) {
	n := 0
	if err := eachID(ctx, s.users, bson.D{notDeleted()}, func(string) { n++ }); err != nil {
		return 0, dbErr("count", "live users", err)
	}
	return n, nil
}

// CountLiveUsersAmong returns how many of ids are live users, reading each by _id. It
// returns an error wrapping ErrDatabase when a read fails.
func (s *Store) CountLiveUsersAmong(ctx context.Context, ids []string) (int, error) {
	n := 0
	opts := options.FindOne().SetProjection(bson.D{{Key: fieldDeleted, Value: 1}})
	for _, id := range ids {
		raw, err := s.users.FindOne(ctx, idIs(id), opts).Raw()
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			continue
		case err != nil:
			return 0, dbErr("read", id, err)
		}
		if d, _ := raw.Lookup(fieldDeleted).BooleanOK(); !d {
			n++
		}
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

package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The guarded-write core that the users, organizations and memberships collections share: a
// document keyed by a Clerk id, written only when newer (by updated_at) than the stored one and
// not deleted, and deleted as a tombstone (see tombstone) that no later write brings back. Each
// write goes through the store's strategy (docWrites, one per WriteMode); the callers read the
// stored document and decide under its lock (lockIDs), in either mode.

// maxRounds bounds how often a write (UpsertUser, UpsertOrganization, UpsertMembership) starts
// over because what it read changed under it (another process's write) or because it needs one
// more document's lock.
const maxRounds = 16

// errStale means the stored state changed since the write read it: start the write over.
var errStale = errors.New("store: the stored document changed during the write")

// needLock means the write must change another document (a user giving up a username, an
// organization its slug, a stale membership its place) whose lock it does not hold: start
// over holding both locks.
type needLock struct{ id string }

func (e needLock) Error() string { return "store: need the lock of " + e.id }

// guardedWrite runs attempt, one attempt of the upsert of the document id (UpsertUser,
// UpsertOrganization, UpsertMembership), under the locks of the ids in locked: id's, and once an
// attempt has returned needLock, id's and the one it needs. It starts over while attempt
// returns errStale or needLock, at most maxRounds times, and returns the first other result.
// what names the kind of document in errors ("user"). It returns an error wrapping ErrDatabase
// (and ctx's error) when ctx ends between attempts, and one wrapping ErrDatabase when the
// documents involved kept changing for maxRounds attempts.
func (s *Store) guardedWrite(ctx context.Context, what, id string, attempt func(locked []string) (Change, error)) (Change, error) {
	ids := []string{id}
	for range maxRounds {
		unlock := s.lockIDs(ids...)
		out, err := attempt(ids)
		unlock()
		var nl needLock
		switch {
		case errors.As(err, &nl):
			ids = []string{id, nl.id}
		case errors.Is(err, errStale):
		default:
			return out, err
		}
		if err := ctx.Err(); err != nil {
			return Change{}, dbErr("write "+what, id, err)
		}
	}
	return Change{}, fmt.Errorf("%w: write %s %s: the %ss involved kept changing during the write; retry", ErrDatabase, what, id, what)
}

// docWrites is how the store makes a write conditional on the stored document of any of its
// collections, one per WriteMode: byIDDocs and conditionalDocs. (The users' strategies,
// userWrites, delegate their upserts to it.) what names the kind of document in errors
// ("user", "organization", "membership"). The two take the same arguments and give the same
// results:
//   - nil (or an Outcome): written;
//   - errStale: the stored document is no longer as the caller read it, and nothing was
//     written (the caller reads again and starts over);
//   - a unique-index violation (isDuplicate) as the driver reported it, for the caller to
//     resolve: another document holds a unique field (a username, a slug, a live membership
//     key), or the document was inserted meanwhile;
//   - any other failure wrapped in ErrDatabase.
type docWrites interface {
	// upsert applies set and unset to the document id as newer than the stored one, whose
	// updated_at is below updatedAt; found says whether the caller read one. It returns
	// Inserted or Updated.
	upsert(ctx context.Context, c *mongo.Collection, what, id string, updatedAt int64, set, unset bson.D, found bool) (Outcome, error)
	// unsetHeld removes the field h holds (h.key) from h, a live document as the caller read
	// it, only while h is still as read.
	unsetHeld(ctx context.Context, c *mongo.Collection, what string, h held) error
	// replaceHeld replaces h, a live document as the caller read it, by tomb, only while h is
	// still as read.
	replaceHeld(ctx context.Context, c *mongo.Collection, what string, h held, tomb bson.D) error
	// delete replaces the document id, live (found) or never seen, by tomb.
	delete(ctx context.Context, c *mongo.Collection, what, id string, found bool, tomb bson.D) error
	// scrub replaces the document id, marked deleted but holding more than a tombstone's
	// fields, by tomb, only while it is still marked deleted.
	scrub(ctx context.Context, c *mongo.Collection, what, id string, tomb bson.D) error
}

// held is a live document holding the value of a unique field (an organization's slug, a
// membership's live key) as a caller read it: enough to change it only while it is unchanged.
type held struct {
	id         string
	key, value string
	// rawUpdatedAt is updated_at as stored (Type 0 when missing), to match it exactly.
	rawUpdatedAt bson.RawValue
}

// newDocWrites returns the strategy of mode (WritesByID or WritesConditional).
func newDocWrites(mode WriteMode) docWrites {
	if mode == WritesByID {
		return byIDDocs{}
	}
	return conditionalDocs{}
}

// byIDDocs is the core of WritesByID: every write has a filter of _id alone, the one filter
// FerretDB v1 looks up without scanning the collection. The caller's read, under the
// document's lock (and the holder's, for unsetHeld and replaceHeld), is the guard: an insert
// when it found no document, an update or replacement by _id otherwise. Atomic for the writers
// of one process.
type byIDDocs struct{}

func (byIDDocs) upsert(ctx context.Context, c *mongo.Collection, what, id string, _ int64, set, unset bson.D, found bool) (Outcome, error) {
	if !found {
		if _, err := c.InsertOne(ctx, append(idIs(id), set...)); err != nil {
			return "", writeErr("insert "+what, id, err)
		}
		return Inserted, nil
	}
	if _, err := c.UpdateOne(ctx, idIs(id), updateOf(set, unset)); err != nil {
		return "", writeErr("update "+what, id, err)
	}
	return Updated, nil
}

func (byIDDocs) unsetHeld(ctx context.Context, c *mongo.Collection, what string, h held) error {
	return updateHeld(ctx, c, what, idIs(h.id), h, nil)
}

func (byIDDocs) replaceHeld(ctx context.Context, c *mongo.Collection, what string, h held, tomb bson.D) error {
	return updateHeld(ctx, c, what, idIs(h.id), h, tomb)
}

func (byIDDocs) delete(ctx context.Context, c *mongo.Collection, what, id string, found bool, tomb bson.D) error {
	var err error
	if found {
		_, err = c.ReplaceOne(ctx, idIs(id), tomb)
	} else {
		_, err = c.InsertOne(ctx, tomb)
	}
	if err != nil {
		return writeErr("delete "+what, id, err)
	}
	return nil
}

func (byIDDocs) scrub(ctx context.Context, c *mongo.Collection, what, id string, tomb bson.D) error {
	return replaceWhere(ctx, c, what, idIs(id), id, tomb)
}

// conditionalDocs is the core of WritesConditional: every write carries its guard in its
// filter, so it is one atomic write whatever the number of writers, in this process or others.
// The caller's read only chooses what to write.
type conditionalDocs struct{}

// upsert updates the document only while it is live with an older (or no, or non-numeric)
// updated_at, and inserts it when no document matches: which fails on the _id index if the
// document exists. found is not needed: the filter holds the guard.
func (conditionalDocs) upsert(ctx context.Context, c *mongo.Collection, what, id string, updatedAt int64, set, unset bson.D, _ bool) (Outcome, error) {
	return upsertWhere(ctx, c, what, id, below(updatedAt), set, unset)
}

// below is the filter condition of a document older than updatedAt: its updated_at is not a
// number at or above it (so missing, not a number, NaN, or below).
func below(updatedAt int64) bson.E {
	return bson.E{Key: fieldUpdatedAt, Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$gte", Value: updatedAt}}}}}
}

// notAbove is the filter condition of a document no newer than updatedAt: below it, or equal.
func notAbove(updatedAt int64) bson.E {
	return bson.E{Key: fieldUpdatedAt, Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$gt", Value: updatedAt}}}}}
}

// upsertWhere applies set and unset to the document id of c while it is live and matches
// updated (below or notAbove), and inserts it when no document matches: which fails on the _id
// index if the document exists. It returns Inserted or Updated (errStale when it did neither),
// a unique-index violation as it is, and an error wrapping ErrDatabase otherwise.
func upsertWhere(ctx context.Context, c *mongo.Collection, what, id string, updated bson.E, set, unset bson.D) (Outcome, error) {
	filter := append(idIs(id), updated, notDeleted())
	res, err := c.UpdateOne(ctx, filter, updateOf(set, unset), options.UpdateOne().SetUpsert(true))
	switch {
	case err != nil:
		return "", writeErr("upsert "+what, id, err)
	case res.UpsertedCount > 0:
		return Inserted, nil
	case res.MatchedCount > 0:
		return Updated, nil
	}
	return "", errStale
}

func (conditionalDocs) unsetHeld(ctx context.Context, c *mongo.Collection, what string, h held) error {
	return updateHeld(ctx, c, what, heldFilter(h), h, nil)
}

func (conditionalDocs) replaceHeld(ctx context.Context, c *mongo.Collection, what string, h held, tomb bson.D) error {
	return updateHeld(ctx, c, what, heldFilter(h), h, tomb)
}

// delete replaces the document while it is live, or inserts tomb when no document matches:
// which fails on the _id index if a tombstone exists. found is not needed: the filter holds
// the guard.
func (conditionalDocs) delete(ctx context.Context, c *mongo.Collection, what, id string, _ bool, tomb bson.D) error {
	res, err := c.ReplaceOne(ctx, append(idIs(id), notDeleted()), tomb, options.Replace().SetUpsert(true))
	if err != nil {
		return writeErr("delete "+what, id, err)
	}
	if res.MatchedCount+res.UpsertedCount == 0 {
		return errStale
	}
	return nil
}

func (conditionalDocs) scrub(ctx context.Context, c *mongo.Collection, what, id string, tomb bson.D) error {
	return replaceWhere(ctx, c, what, append(idIs(id), bson.E{Key: fieldDeleted, Value: true}), id, tomb)
}

// replaceWhere replaces the document filter matches, the one of id, by tomb. It returns
// errStale when filter matches none, and an error wrapping ErrDatabase when the write fails.
func replaceWhere(ctx context.Context, c *mongo.Collection, what string, filter bson.D, id string, tomb bson.D) error {
	res, err := c.ReplaceOne(ctx, filter, tomb)
	if err != nil {
		return writeErr("delete "+what, id, err)
	}
	if res.MatchedCount == 0 {
		return errStale
	}
	return nil
}

// heldFilter matches h while it is live and still holds its value and the updated_at (matched
// exactly, or missing) it was read with.
func heldFilter(h held) bson.D {
	updated := bson.E{Key: fieldUpdatedAt, Value: h.rawUpdatedAt}
	if h.rawUpdatedAt.Type == 0 {
		updated.Value = bson.D{{Key: "$exists", Value: false}}
	}
	return append(idIs(h.id), bson.E{Key: h.key, Value: h.value}, updated, notDeleted())
}

// updateHeld removes h.key from the document filter matches, or replaces it by tomb when tomb
// is not nil. It returns errStale when filter matches none.
func updateHeld(ctx context.Context, c *mongo.Collection, what string, filter bson.D, h held, tomb bson.D) error {
	var res *mongo.UpdateResult
	var err error
	if tomb != nil {
		res, err = c.ReplaceOne(ctx, filter, tomb)
	} else {
		res, err = c.UpdateOne(ctx, filter, bson.D{{Key: "$unset", Value: bson.D{{Key: h.key, Value: ""}}}})
	}
	if err != nil {
		return writeErr("change "+what, h.id, err)
	}
	if res.MatchedCount == 0 {
		return errStale
	}
	return nil
}

// docState is what the guard needs of any stored document: read leniently, so a value of
// another type reads as missing (an updated_at that is missing or not a number is 0, older
// than any event). Its timestamps are read by the number rule (millis); the guard's own
// comparison uses the stored value as it is (cmpMillis).
type docState struct {
	UpdatedAt int64
	Deleted   bool
	DeletedAt int64
}

// stateOf reads the guard's fields of a document.
func stateOf(raw bson.Raw) docState {
	d, _ := raw.Lookup(fieldDeleted).BooleanOK()
	return docState{UpdatedAt: millis(raw, fieldUpdatedAt), Deleted: d, DeletedAt: millis(raw, fieldDeletedAt)}
}

// The number rule: a stored timestamp (updated_at, created_at, deleted_at) of any BSON number
// type, int32, int64, double or Decimal128, is read by its numeric value, as MongoDB's filters
// compare it ({updated_at: {$not: {$gte: new}}} in WritesConditional), so that the by-id
// guard and the conditional filter decide alike. Anything else (missing, null, a string, a
// Date) is not a number: older than any event.

// cmpMillis compares the stored timestamp v with n exactly, by numeric value, as MongoDB's $gt
// and $gte do: -1 when v is below n, NaN (which MongoDB orders below every number) or not a
// number; 0 when v equals n; +1 when v is above n (+Infinity included).
func cmpMillis(v bson.RawValue, n int64) int {
	switch v.Type {
	case bson.TypeInt32:
		return cmp.Compare(int64(v.Int32()), n)
	case bson.TypeInt64:
		return cmp.Compare(v.Int64(), n)
	case bson.TypeDouble:
		f := v.Double()
		if math.IsNaN(f) {
			return -1
		}
		return new(big.Float).SetFloat64(f).Cmp(new(big.Float).SetInt64(n))
	case bson.TypeDecimal128:
		r, inf, ok := decimalValue(v.Decimal128())
		switch {
		case !ok:
			return -1
		case inf != 0:
			return inf
		}
		return r.Cmp(new(big.Rat).SetInt64(n))
	}
	return -1
}

// millis returns the number at key rounded down to an integer (the largest or smallest int64
// for one beyond int64's range, ±Infinity included), or 0 when it is missing, not a number, or
// NaN: what Get reports, and what the username, slug and membership rules order records by.
// The guards compare the stored value itself (cmpMillis), which keeps a fraction.
func millis(raw bson.Raw, key string) int64 {
	v := raw.Lookup(key)
	switch v.Type {
	case bson.TypeInt32:
		return int64(v.Int32())
	case bson.TypeInt64:
		return v.Int64()
	case bson.TypeDouble:
		switch f := v.Double(); {
		case math.IsNaN(f):
			return 0
		case f >= 1<<63:
			return math.MaxInt64
		case f < -(1 << 63):
			return math.MinInt64
		default:
			return int64(math.Floor(f))
		}
	case bson.TypeDecimal128:
		r, inf, ok := decimalValue(v.Decimal128())
		switch {
		case !ok:
			return 0
		case inf > 0:
			return math.MaxInt64
		case inf < 0:
			return math.MinInt64
		}
		q := new(big.Int).Div(r.Num(), r.Denom()) // Euclidean: rounds down, as Denom > 0
		switch {
		case q.IsInt64():
			return q.Int64()
		case q.Sign() > 0:
			return math.MaxInt64
		default:
			return math.MinInt64
		}
	}
	return 0
}

// decimalValue returns the value of d: exactly, as r, when d is finite; inf (+1 or -1) when it
// is ±Infinity; ok false when it is NaN.
func decimalValue(d bson.Decimal128) (r *big.Rat, inf int, ok bool) {
	if d.IsNaN() {
		return nil, 0, false
	}
	if inf := d.IsInf(); inf != 0 {
		return nil, inf, true
	}
	coef, exp, err := d.BigInt()
	if err != nil {
		return nil, 0, false
	}
	pow := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(exp, -exp))), nil)
	r = new(big.Rat).SetInt(coef)
	if exp >= 0 {
		return r.Mul(r, new(big.Rat).SetInt(pow)), 0, true
	}
	return r.Quo(r, new(big.Rat).SetInt(pow)), 0, true
}

// str returns the string at key, or "" when it is missing or not a string.
func str(raw bson.Raw, key string) string {
	v, _ := raw.Lookup(key).StringValueOK()
	return v
}

// rawUpdatedAt returns updated_at as stored (Type 0 when missing).
func rawUpdatedAt(raw bson.Raw) bson.RawValue {
	v, _ := raw.LookupErr(fieldUpdatedAt)
	return v
}

// findRaw returns the one document of c that filter matches (what names it in errors),
// ErrNotFound, or an error wrapping ErrDatabase.
func findRaw(ctx context.Context, c *mongo.Collection, filter bson.D, what string) (bson.Raw, error) {
	raw, err := c.FindOne(ctx, filter).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, dbErr("find", what, err)
	}
	return raw, nil
}

// stateByID returns the guard's fields of the document id of c and whether there is one, or an
// error wrapping ErrDatabase.
func stateByID(ctx context.Context, c *mongo.Collection, what, id string) (st docState, found bool, err error) {
	raw, err := findRaw(ctx, c, idIs(id), what+" "+id)
	switch {
	case errors.Is(err, ErrNotFound):
		return docState{}, false, nil
	case err != nil:
		return docState{}, false, err
	}
	return stateOf(raw), true, nil
}

// deleteDoc replaces the document id of c by a tombstone deleted at deletedAt, under the
// document's lock, as DeleteUser, DeleteOrganization and DeleteMembership describe: Deleted,
// or AlreadyDeleted for a tombstone (whose deletion time is kept). A document marked deleted
// that holds more than a tombstone's fields (an application's soft delete, an earlier
// version's tombstone) is not one yet: it is replaced by the tombstone it would have left,
// keeping its numeric deleted_at (Clerk's deletion time otherwise), and Deleted is returned.
// It also returns the tombstone's deleted_at (the first deletion's), for the cascade to use;
// and an error wrapping ErrDatabase when the database fails or the document kept changing.
func (s *Store) deleteDoc(ctx context.Context, c *mongo.Collection, what, id string, deletedAt int64) (Outcome, int64, error) {
	defer s.lockIDs(id)()
	for range 3 {
		raw, err := findRaw(ctx, c, idIs(id), what+" "+id)
		found := err == nil
		if errors.Is(err, ErrNotFound) {
			err = nil
		}
		if err != nil {
			return "", 0, err
		}
		var cur docState
		if found {
			cur = stateOf(raw)
		}
		if found && cur.Deleted {
			at := cur.DeletedAt
			if at == 0 {
				at = deletedAt // a deletion time edited by hand, or not a number
			}
			if isTombstone(raw) {
				return AlreadyDeleted, at, nil
			}
			err = s.docs.scrub(ctx, c, what, id, tombstone(id, at, max(at, cur.UpdatedAt)))
			if err == nil {
				return Deleted, at, nil
			}
		} else if err = s.docs.delete(ctx, c, what, id, found, tombstone(id, deletedAt, max(deletedAt, cur.UpdatedAt))); err == nil {
			return Deleted, deletedAt, nil
		}
		if !errors.Is(err, errStale) && !isDuplicate(err) {
			return "", 0, err
		}
		// Inserted or deleted meanwhile by another process: decide again.
	}
	return "", 0, fmt.Errorf("%w: delete %s %s: the document kept changing; retry", ErrDatabase, what, id)
}

// isTombstone reports whether raw holds a tombstone's fields alone (see tombstone): _id,
// deleted, deleted_at and updated_at, or fewer.
func isTombstone(raw bson.Raw) bool {
	elems, err := raw.Elements()
	if err != nil {
		return false
	}
	for _, e := range elems {
		switch e.Key() {
		case fieldID, fieldDeleted, fieldDeletedAt, fieldUpdatedAt:
		default:
			return false
		}
	}
	return true
}

// supersedes reports whether record a (updated_at, created_at, id) is the newer of two records
// that claim one unique value: the newer updated_at; on a tie, the later created_at; then the
// lower id (as for usernames).
func supersedes(aUpdated, aCreated int64, aID string, bUpdated, bCreated int64, bID string) bool {
	switch {
	case aUpdated != bUpdated:
		return aUpdated > bUpdated
	case aCreated != bCreated:
		return aCreated > bCreated
	}
	return aID < bID
}

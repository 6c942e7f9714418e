// Package store keeps the users, organizations and memberships collections in MongoDB (or any
// server that speaks its wire protocol, such as FerretDB). It owns every BSON document and
// driver call: other packages see only User, Organization, Membership, Outcome and the sentinel
// errors below, never the driver's types.
//
// Every write is guarded by the document's stored state, so the collections stay correct
// whatever order, and however many times, events arrive:
//   - an upsert applies a document only when it is newer (by Clerk's updated_at) than the
//     stored one and it has not been deleted; a stored updated_at of any BSON number type is
//     compared by its value, in both write modes, and one that is missing or not a number
//     counts as older than any event;
//   - a delete replaces the document with a tombstone that no later upsert can bring back;
//   - usernames are unique among live users (a unique index), and follow Clerk: a user's Clerk
//     username displaces a derived one, and of two Clerk claims on one username the newer
//     record wins (see UpsertUser); organization slugs and (organization, user) pairs of live
//     memberships are unique the same way (see UpsertOrganization and UpsertMembership);
//   - deleting an organization or a user tombstones its memberships, and a membership written
//     after its organization or user was deleted is stored as a tombstone.
//
// The files: guarded.go is the guarded-write core every collection shares (its two write
// strategies, docWrites, the upserts' lock-and-retry loop, guardedWrite, and the tombstone
// delete); users.go is the users collection (its fields, reads, UpsertUser and DeleteUser);
// users_byid.go and users_conditional.go are the users' two write strategies (see WriteMode);
// usernames.go is UpsertUser's username rule; organizations.go and memberships.go are the
// organizations and memberships collections and their cascades; list.go lists the live users;
// failures.go and meta.go are the service's own collections, and reconcile.go the marks and
// the lease of a reconciliation pass. The embedded FerretDB is package
// store/embedded, apart so that importing store links neither FerretDB nor SQLite.
package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// Sentinel errors. Errors from the database driver are wrapped in ErrDatabase; callers test
// them with errors.Is and never see the driver's own error types.
var (
	// ErrNotFound means no document has the requested id (of a user, an organization or a
	// membership).
	ErrNotFound = errors.New("store: not found")
	// ErrInvalidUser means the user cannot be written as given (for example it has no id).
	// Retrying the same input will fail the same way.
	ErrInvalidUser = errors.New("store: invalid user")
	// ErrInvalidOrganization means the organization cannot be written as given (it has no
	// id). Retrying the same input will fail the same way.
	ErrInvalidOrganization = errors.New("store: invalid organization")
	// ErrInvalidMembership means the membership cannot be written as given (it has no id, no
	// organization id or no user id, or it is marked deleted: DeleteMembership deletes).
	// Retrying the same input will fail the same way.
	ErrInvalidMembership = errors.New("store: invalid membership")
	// ErrDatabase wraps any failure reported by the database or the connection to it.
	// It is usually temporary: retrying later may succeed.
	ErrDatabase = errors.New("store: database error")
)

// Store reads and writes the users, organizations and memberships collections. It is safe for
// concurrent use.
type Store struct {
	client  *mongo.Client
	users   *mongo.Collection
	orgs    *mongo.Collection
	members *mongo.Collection
	// writes is the users' write strategy of the store's WriteMode: byIDWrites or
	// conditionalWrites.
	writes userWrites
	// docs is the write strategy of the store's WriteMode that every collection shares:
	// byIDDocs or conditionalDocs.
	docs docWrites
	// onNewMarks, when set (SetOnNewCollection), runs after the store creates a collection of
	// marks; indexed holds the names of those it ran for, in this process.
	onNewMarks func(context.Context) error
	indexed    sync.Map // string -> struct{}
	// mode is the store's WriteMode (never WritesAuto): ScanLiveUsers pages by _id range in
	// WritesConditional and follows one server cursor in WritesByID.
	mode WriteMode
	// locks serialise this process's writes per id (of a user, an organization or a
	// membership). MongoDB applies a filtered update to a document atomically; FerretDB v1
	// reads the document, checks the filter and writes it back in separate steps, so two
	// concurrent writes for one document could interleave. The embedded FerretDB is only
	// reachable from this process, so a lock here makes each conditional write atomic there
	// too. (An external FerretDB shared by several replicas of the service would not be
	// covered: use MongoDB for that.) A write that displaces another user's username (another
	// organization's slug, a stale membership) holds both documents' locks, taken in stripe
	// order, so that two writes claiming each other's values cannot deadlock (lockIDs).
	locks [256]sync.Mutex
	// beforeMemberWrite, set only by this package's tests, runs in UpsertMembership between
	// its first check of the organization and the user (R1 in docs/design.md) and its write
	// (W), holding the membership's lock: where a concurrent deletion must be caught by the
	// check after writing.
	beforeMemberWrite func(Membership)
}

// WriteMode chooses how the store makes its writes conditional.
type WriteMode int

const (
	// WritesAuto picks WritesByID on FerretDB and WritesConditional otherwise.
	WritesAuto WriteMode = iota
	// WritesConditional puts the conditions in the update's filter ({_id, updated_at < new,
	// deleted != true}): one atomic write on MongoDB, whatever the number of writers.
	WritesConditional
	// WritesByID reads the document by _id, checks the conditions, and writes with a filter of
	// _id alone, under the store's per-document lock. FerretDB v1 evaluates any other filter by
	// scanning the whole collection (it pushes down only a lone _id), which would make every
	// write cost O(users); and it applies filtered updates as read-then-write anyway. Atomic
	// for the writers of one process, which is all the embedded FerretDB ever has.
	WritesByID
)

// Open connects to the server at uri, checks that it answers, and makes sure the users,
// organizations and memberships collections have their indexes. It returns an error wrapping
// ErrDatabase when the server cannot be reached within ctx or refuses the indexes. (For the
// embedded FerretDB, use package store/embedded's Server.Open.)
func Open(ctx context.Context, uri, database string) (*Store, error) {
	return OpenWith(ctx, uri, database, WritesAuto)
}

// OpenWith is Open with an explicit WriteMode (tests use it to exercise both). It returns an
// error wrapping ErrDatabase when the server cannot be reached within ctx or refuses the
// indexes.
func OpenWith(ctx context.Context, uri, database string, mode WriteMode) (*Store, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetAppName("clerk-user-sync"))
	if err != nil {
		return nil, fmt.Errorf("%w: connect: %v", ErrDatabase, err)
	}
	db := client.Database(database)
	// The guards read what they decide on from the primary, with the latest acknowledged
	// writes (read concern local), whatever the URI asks for (readPreference,
	// readConcernLevel): a deletion and a membership write running at once each rely on
	// reading the other's completed write (docs/design.md). These are MongoDB's
	// defaults.
	latest := options.Collection().SetReadPreference(readpref.Primary()).SetReadConcern(readconcern.Local())
	s := &Store{
		client:  client,
		users:   db.Collection(Collection, latest),
		orgs:    db.Collection(OrganizationsCollection, latest),
		members: db.Collection(MembershipsCollection, latest),
	}
	if err := s.Ping(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	if mode == WritesAuto {
		mode = WritesConditional
		var info bson.M
		if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err == nil {
			if _, ok := info["ferretdbVersion"]; ok {
				mode = WritesByID
			}
		}
	}
	s.mode = mode
	s.writes = newUserWrites(mode, s.users)
	s.docs = newDocWrites(mode)
	for _, create := range []func(context.Context) error{
		func(ctx context.Context) error { return createUserIndexes(ctx, s.users) },
		s.createOrganizationIndexes,
		s.createMembershipIndexes,
	} {
		if err := create(ctx); err != nil {
			_ = client.Disconnect(context.Background())
			return nil, err
		}
	}
	return s, nil
}

// SetOnNewCollection makes the store call f after it creates a collection of its own at run
// time (the marks of a reconciliation pass), before writing to it, and when it first writes to
// one in this process: package store/embedded uses it to give the collection the _id lookup
// index that FerretDB v1 on SQLite lacks. An error from f fails the write that created the
// collection. Call it before using the store.
func (s *Store) SetOnNewCollection(f func(context.Context) error) { s.onNewMarks = f }

// Close disconnects from the server. It returns an error wrapping ErrDatabase if the
// connections could not be closed cleanly within ctx.
func (s *Store) Close(ctx context.Context) error {
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("%w: disconnect: %v", ErrDatabase, err)
	}
	return nil
}

// Ping checks that the server answers. It returns an error wrapping ErrDatabase if it does not
// within ctx.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, nil); err != nil {
		return fmt.Errorf("%w: ping: %v", ErrDatabase, err)
	}
	return nil
}

// lockIDs locks the stripes of ids in ascending order (each once) and returns the function
// that unlocks them. The ids are Clerk's, of users, organizations and memberships alike (their
// prefixes keep them apart). A caller takes all the locks it needs in one call, and never
// calls lockIDs while holding any: so no two callers can deadlock, even when two ids share a
// stripe.
func (s *Store) lockIDs(ids ...string) func() {
	stripes := make([]int, 0, len(ids))
	for _, id := range ids {
		stripes = append(stripes, s.stripe(id))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		s.locks[i].Lock()
	}
	return func() {
		for _, i := range slices.Backward(stripes) {
			s.locks[i].Unlock()
		}
	}
}

// stripe returns the index in s.locks of the lock of id.
func (s *Store) stripe(id string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % uint32(len(s.locks)))
}

// isDuplicate reports whether err is a unique-index violation: MongoDB's E11000 (which
// FerretDB also answers for an insert), or FerretDB v1's answer to an update that breaks a
// unique index, an InternalError (code 1) whose message holds SQLite's "UNIQUE constraint
// failed".
func isDuplicate(err error) bool {
	if err == nil {
		return false
	}
	if mongo.IsDuplicateKeyError(err) {
		return true
	}
	sqliteUnique := func(code int, msg string) bool {
		return code == 1 && strings.Contains(msg, "UNIQUE constraint failed")
	}
	var ce mongo.CommandError
	if errors.As(err, &ce) && sqliteUnique(int(ce.Code), ce.Message) {
		return true
	}
	var we mongo.WriteException
	if errors.As(err, &we) {
		for _, e := range we.WriteErrors {
			if sqliteUnique(e.Code, e.Message) {
				return true
			}
		}
	}
	return false
}

// writeErr keeps a unique-index violation as it is (the caller resolves it) and wraps any
// other driver error in ErrDatabase.
func writeErr(op, id string, err error) error {
	if isDuplicate(err) {
		return err
	}
	return dbErr(op, id, err)
}

// dbErr wraps a driver error in ErrDatabase, keeping context cancellation recognisable.
func dbErr(op, id string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s %s: %w", ErrDatabase, op, id, err)
	}
	return fmt.Errorf("%w: %s %s: %v", ErrDatabase, op, id, err)
}

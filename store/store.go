// Package store keeps the users collection in MongoDB (or any server that speaks its wire
// protocol, such as FerretDB). It owns every BSON document and driver call: other packages see
// only User, Outcome and the sentinel errors below, never the driver's types.
//
// Every write is guarded by the user's stored state, so the collection stays correct whatever
// order, and however many times, events arrive:
//   - UpsertUser applies a user only when it is newer (by Clerk's updated_at) than the stored one
//     and the user has not been deleted; a stored updated_at that is missing or not a number
//     counts as older than any event;
//   - DeleteUser replaces the document with a tombstone that no later upsert can bring back;
//   - usernames are unique among live users (a unique index), and follow Clerk: a user's Clerk
//     username displaces a derived one, and of two Clerk claims on one username the newer
//     record wins (see UpsertUser).
//
// The files: users.go is the users collection (its fields, reads, UpsertUser and DeleteUser);
// users_byid.go and users_conditional.go are its two write strategies (see WriteMode);
// usernames.go is UpsertUser's username rule; list.go lists the live users; failures.go and
// meta.go are the service's own collections; embedded.go is the embedded FerretDB.
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
)

// Sentinel errors. Errors from the database driver are wrapped in ErrDatabase; callers test
// them with errors.Is and never see the driver's own error types.
var (
	// ErrNotFound means no document has the requested user id.
	ErrNotFound = errors.New("store: user not found")
	// ErrInvalidUser means the user cannot be written as given (for example it has no id).
	// Retrying the same input will fail the same way.
	ErrInvalidUser = errors.New("store: invalid user")
	// ErrDatabase wraps any failure reported by the database or the connection to it.
	// It is usually temporary: retrying later may succeed.
	ErrDatabase = errors.New("store: database error")
)

// Store reads and writes the users collection. It is safe for concurrent use.
type Store struct {
	client *mongo.Client
	users  *mongo.Collection
	// writes is the write strategy of the store's WriteMode: byIDWrites or conditionalWrites.
	writes userWrites
	// locks serialise this process's writes per user id. MongoDB applies a filtered update to
	// a document atomically; FerretDB v1 reads the document, checks the filter and writes it
	// back in separate steps, so two concurrent writes for one user could interleave. The
	// embedded FerretDB is only reachable from this process, so a lock here makes each
	// conditional write atomic there too. (An external FerretDB shared by several replicas of
	// the service would not be covered: use MongoDB for that.) A write that displaces another
	// user's username holds both users' locks, taken in stripe order, so that two users
	// claiming each other's usernames cannot deadlock.
	locks [256]sync.Mutex
}

// WriteMode chooses how the store makes its writes conditional.
type WriteMode int

const (
	// WritesAuto picks WritesByID on FerretDB and WritesConditional otherwise.
	WritesAuto WriteMode = iota
	// WritesConditional puts the conditions in the update's filter ({_id, updated_at < new,
	// deleted != true}): one atomic write on MongoDB, whatever the number of writers.
	WritesConditional
	// WritesByID reads the user by _id, checks the conditions, and writes with a filter of _id
	// alone, under the store's per-user lock. FerretDB v1 evaluates any other filter by
	// scanning the whole collection (it pushes down only a lone _id), which made every write
	// cost O(users); and it applies filtered updates as read-then-write anyway. Atomic for the
	// writers of one process, which is all the embedded FerretDB ever has.
	WritesByID
)

// Open connects to the server at uri, checks that it answers, and makes sure the users
// collection has its indexes. It returns an error wrapping ErrDatabase when the server cannot
// be reached within ctx or refuses the indexes. (For the embedded FerretDB, use Embedded.Open.)
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
	s := &Store{client: client, users: client.Database(database).Collection(Collection)}
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
	s.writes = newUserWrites(mode, s.users)
	if err := createUserIndexes(ctx, s.users); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	return s, nil
}

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

// lockUsers locks the stripes of ids in ascending order (each once) and returns the function
// that unlocks them.
func (s *Store) lockUsers(ids ...string) func() {
	stripes := make([]int, 0, len(ids))
	for _, id := range ids {
		h := fnv.New32a()
		_, _ = h.Write([]byte(id))
		stripes = append(stripes, int(h.Sum32()%uint32(len(s.locks))))
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

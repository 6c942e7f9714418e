// Package store keeps the users collection in MongoDB (or any server that speaks its wire
// protocol, such as FerretDB). It owns every BSON document and driver call: other packages see
// only User, Outcome and the sentinel errors below, never the driver's types.
//
// Every write is a single conditional write keyed by _id (atomic on MongoDB; on FerretDB, which
// applies a filtered update as read-then-write, made atomic by a per-user lock in the Store),
// so the collection stays correct whatever order, and however many times, events arrive:
//   - UpsertUser applies a user only when it is newer (by Clerk's updated_at) than the stored one
//     and the user has not been deleted;
//   - DeleteUser turns the document into a tombstone that no later upsert can bring back.
package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collection is the name of the collection that holds the users.
const Collection = "users"

// Sentinel errors. Errors from the database driver are wrapped in ErrDatabase; callers test
// them with errors.Is and never see the driver's own error types.
var (
	// ErrNotFound means no document has the requested user id.
	ErrNotFound = errors.New("store: user not found")
	// ErrInvalidUser means the user cannot be written as given (for example it has no id).
	// Retrying the same input will fail the same way.
	ErrInvalidUser = errors.New("store: invalid user")
	// ErrUsernameExhausted means every username candidate for a user was taken.
	ErrUsernameExhausted = errors.New("store: no free username")
	// ErrDatabase wraps any failure reported by the database or the connection to it.
	// It is usually temporary: retrying later may succeed.
	ErrDatabase = errors.New("store: database error")
)

// User is one Clerk user as the collection keeps it.
type User struct {
	// ID is the Clerk user id (user_...), the document's _id.
	ID string
	// Email is the primary email address, or nil when the user has none.
	Email *string
	// FullName is the first and last name joined by one space; empty when both are missing.
	FullName string
	// ProfilePicture is Clerk's image_url.
	ProfilePicture string
	// Username is the wanted username. UpsertUser may store it with a suffix when another live
	// user already has it; Get returns the stored one.
	Username string
	// UsernameFromClerk says that Username is the user's own Clerk username, which replaces the
	// stored one on every newer write. Otherwise Username was derived (from the email or the id)
	// and is only used when the document is first created, so usernames stay stable.
	UsernameFromClerk bool
	// CreatedAt and UpdatedAt are Clerk's created_at and updated_at, in Unix milliseconds.
	// UpdatedAt orders the writes: an older one never replaces a newer one.
	CreatedAt int64
	UpdatedAt int64
	// Deleted is true for a user that Clerk deleted. A deleted user keeps no personal data.
	Deleted bool
	// DeletedAt is when the user was deleted, in Unix milliseconds (zero for live users).
	DeletedAt int64
}

// Outcome says what a write did.
type Outcome string

// The outcomes of UpsertUser and DeleteUser.
const (
	// Inserted: the user was not in the collection and was added.
	Inserted Outcome = "inserted"
	// Updated: the stored user was older and was replaced.
	Updated Outcome = "updated"
	// Skipped: nothing changed, because the stored user is as new or newer (a replay or an
	// event that arrived late) or because the user was deleted.
	Skipped Outcome = "skipped"
	// Deleted: the user was turned into a tombstone (or a tombstone was created for a user the
	// collection never saw, so that late events cannot create it).
	Deleted Outcome = "deleted"
	// AlreadyDeleted: the user was already a tombstone.
	AlreadyDeleted Outcome = "already_deleted"
)

// userDoc is the BSON shape of a document in the users collection.
type userDoc struct {
	ID             string  `bson:"_id"`
	Email          *string `bson:"email"`
	FullName       string  `bson:"full_name,omitempty"`
	ProfilePicture string  `bson:"profile_picture,omitempty"`
	Username       string  `bson:"username,omitempty"`
	CreatedAt      int64   `bson:"created_at,omitempty"`
	UpdatedAt      int64   `bson:"updated_at,omitempty"`
	Deleted        bool    `bson:"deleted,omitempty"`
	DeletedAt      int64   `bson:"deleted_at,omitempty"`
}

// Store reads and writes the users collection. It is safe for concurrent use.
type Store struct {
	client *mongo.Client
	users  *mongo.Collection
	// locks serialise this process's writes per user id. MongoDB applies a filtered update to
	// a document atomically; FerretDB v1 reads the document, checks the filter and writes it
	// back in separate steps, so two concurrent writes for one user could interleave. The
	// embedded FerretDB is only reachable from this process, so a lock here makes each
	// conditional write atomic there too. (An external FerretDB shared by several replicas of
	// the service would not be covered: use MongoDB for that.)
	locks [256]sync.Mutex
	// byID selects WritesByID.
	byID bool
}

// lockUser locks the stripe of id and returns its unlock function.
func (s *Store) lockUser(id string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// Open connects to the server at uri, checks that it answers, and makes sure the users
// collection has its indexes. It returns an error wrapping ErrDatabase when the server cannot
// be reached within ctx or refuses the indexes.
func Open(ctx context.Context, uri, database string) (*Store, error) {
	return OpenWith(ctx, uri, database, WritesAuto)
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

// OpenWith is Open with an explicit WriteMode (tests use it to exercise both).
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
	s.byID = mode == WritesByID
	// username is unique among live users. The index is sparse because tombstones have no
	// username; sparse (rather than partial) indexes also work on FerretDB.
	_, err = s.users.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "username", Value: 1}},
		Options: options.Index().SetName("username_unique").SetUnique(true).SetSparse(true),
	})
	if err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("%w: create index on %s.username: %v", ErrDatabase, Collection, err)
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

// Get returns the stored user with the given id, live or deleted. It returns ErrNotFound when
// there is none, and an error wrapping ErrDatabase when the read fails.
func (s *Store) Get(ctx context.Context, id string) (User, error) {
	var d userDoc
	err := s.users.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("%w: find user %s: %v", ErrDatabase, id, err)
	}
	return User{
		ID:             d.ID,
		Email:          d.Email,
		FullName:       d.FullName,
		ProfilePicture: d.ProfilePicture,
		Username:       d.Username,
		CreatedAt:      d.CreatedAt,
		UpdatedAt:      d.UpdatedAt,
		Deleted:        d.Deleted,
		DeletedAt:      d.DeletedAt,
	}, nil
}

// Count returns how many documents the users collection holds, tombstones included. It
// returns an error wrapping ErrDatabase when the count fails.
func (s *Store) Count(ctx context.Context) (int64, error) {
	n, err := s.users.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("%w: count users: %v", ErrDatabase, err)
	}
	return n, nil
}

// dbErr wraps a driver error in ErrDatabase, keeping context cancellation recognisable.
func dbErr(op, id string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s %s: %w", ErrDatabase, op, id, err)
	}
	return fmt.Errorf("%w: %s %s: %v", ErrDatabase, op, id, err)
}

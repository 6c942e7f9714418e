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
	// Username, as Get returns it, is the stored username ("" for none). As UpsertUser takes
	// it, it is the user's derived username (from the email's local part, or the id): the one
	// used when ClerkUsername is empty, or while another user holds ClerkUsername with a newer
	// claim. A derived username is kept once given.
	Username string
	// ClerkUsername is the user's own username in Clerk, "" when Clerk has none. As Get
	// returns it, it is the username the last applied write claimed; the user holds it when it
	// equals Username.
	ClerkUsername string
	// CreatedAt and UpdatedAt are Clerk's created_at and updated_at, in Unix milliseconds.
	// UpdatedAt orders the writes: an older one never replaces a newer one. UpsertUser leaves
	// the stored created_at as it is when CreatedAt is zero.
	CreatedAt int64
	UpdatedAt int64
	// Deleted is true for a user that Clerk deleted. A deleted user keeps no personal data.
	Deleted bool
	// DeletedAt is when the user was deleted, in Unix milliseconds (zero for live users).
	DeletedAt int64
	// Unknown lists the fields that the source of this user lacks (a Clerk user export has no
	// picture): UpsertUser leaves their stored values as they are. Get returns none.
	Unknown Fields
}

// Fields is a set of User fields.
type Fields uint8

// The fields a User's source can lack.
const (
	// FieldProfilePicture is User.ProfilePicture.
	FieldProfilePicture Fields = 1 << iota
	// FieldCreatedAt is User.CreatedAt.
	FieldCreatedAt
)

// Has reports whether f holds every field of g.
func (f Fields) Has(g Fields) bool { return f&g == g }

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

// The field names of a document in the users collection.
const (
	fieldID            = "_id"
	fieldEmail         = "email"
	fieldFullName      = "full_name"
	fieldPicture       = "profile_picture"
	fieldUsername      = "username"
	fieldClerkUsername = "clerk_username"
	fieldCreatedAt     = "created_at"
	fieldUpdatedAt     = "updated_at"
	fieldDeleted       = "deleted"
	fieldDeletedAt     = "deleted_at"
)

// userDoc is a document of the users collection as read back. It is decoded leniently
// (decodeUser), because the collection may be an application's own, holding fields of other
// types than this service writes: a value of another type reads as missing.
type userDoc struct {
	// User holds the fields; its UpdatedAt is 0 when updated_at is missing or not a number
	// (older than any event), and its Unknown is empty.
	User
	// RawUpdatedAt is updated_at as stored (Type 0 when missing), to match it exactly in a
	// conditional write.
	RawUpdatedAt bson.RawValue
}

// decodeUser reads a users document. It fails only when the document has no string _id.
func decodeUser(raw bson.Raw) (userDoc, error) {
	str := func(key string) string {
		if v, ok := raw.Lookup(key).StringValueOK(); ok {
			return v
		}
		return ""
	}
	num := func(key string) int64 {
		v := raw.Lookup(key)
		switch v.Type {
		case bson.TypeInt32, bson.TypeInt64:
			return v.AsInt64()
		case bson.TypeDouble:
			if f := v.Double(); f > 0 && f < 1<<62 {
				return int64(f)
			}
		}
		return 0
	}
	id, ok := raw.Lookup(fieldID).StringValueOK()
	if !ok {
		return userDoc{}, fmt.Errorf("%w: a users document whose _id is not a string", ErrDatabase)
	}
	d := userDoc{User: User{
		ID:             id,
		FullName:       str(fieldFullName),
		ProfilePicture: str(fieldPicture),
		Username:       str(fieldUsername),
		ClerkUsername:  str(fieldClerkUsername),
		CreatedAt:      num(fieldCreatedAt),
		UpdatedAt:      num(fieldUpdatedAt),
		DeletedAt:      num(fieldDeletedAt),
	}}
	if e, ok := raw.Lookup(fieldEmail).StringValueOK(); ok {
		d.Email = &e
	}
	d.Deleted, _ = raw.Lookup(fieldDeleted).BooleanOK()
	if v, err := raw.LookupErr(fieldUpdatedAt); err == nil {
		d.RawUpdatedAt = v
	}
	return d, nil
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
	// the service would not be covered: use MongoDB for that.) A write that displaces another
	// user's username holds both users' locks, taken in stripe order, so that two users
	// claiming each other's usernames cannot deadlock.
	locks [256]sync.Mutex
	// byID selects WritesByID.
	byID bool
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
	d, err := s.read(ctx, id)
	if err != nil {
		return User{}, err
	}
	return d.User, nil
}

// read returns the stored document of the user id, ErrNotFound, or an error wrapping
// ErrDatabase.
func (s *Store) read(ctx context.Context, id string) (userDoc, error) {
	return s.readOne(ctx, bson.D{{Key: fieldID, Value: id}}, id)
}

// holderOf returns the live user whose username is name, or ErrNotFound. On FerretDB this
// scans the collection; it runs only after a write collided on the username.
func (s *Store) holderOf(ctx context.Context, name string) (userDoc, error) {
	return s.readOne(ctx, bson.D{{Key: fieldUsername, Value: name}}, "username "+name)
}

func (s *Store) readOne(ctx context.Context, filter bson.D, what string) (userDoc, error) {
	raw, err := s.users.FindOne(ctx, filter).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return userDoc{}, ErrNotFound
	}
	if err != nil {
		return userDoc{}, dbErr("find user", what, err)
	}
	return decodeUser(raw)
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

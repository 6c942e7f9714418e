package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collection is the name of the collection that holds the users.
const Collection = "users"

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
	// Repair says that this is Clerk's record of the user, read from Clerk (by reconciliation,
	// a backfill or the on-demand sync) rather than carried by an event: UpsertUser then also
	// writes it over a live user with the same updated_at whose fields taken from Clerk (email,
	// full_name, profile_picture, clerk_username, created_at; not those in Unknown) differ from
	// it or are missing, such as a user stored by an earlier version of the service, which
	// kept no clerk_username. Events leave it false. Get returns false.
	Repair bool
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

// The outcomes of the upserts (UpsertUser, UpsertOrganization, UpsertMembership) and the
// deletes (DeleteUser, DeleteOrganization, DeleteMembership). "Document" is the user, the
// organization or the membership written.
const (
	// Inserted: the document was not in the collection and was added.
	Inserted Outcome = "inserted"
	// Updated: the stored document was older and was replaced (or, for a user written as a
	// repair, User.Repair, as new but differing from Clerk's record).
	Updated Outcome = "updated"
	// Skipped: the event was not applied, because the stored document is as new or newer (a
	// replay or an event that arrived late) or was deleted; or, for a membership, because it
	// is stored as a tombstone instead (its organization or user is deleted, or a newer
	// membership holds its organization and user). The upserts that tell their Change
	// (UpsertUserChange, ...) tell the stored version apart: AlreadyStored.
	Skipped Outcome = "skipped"
	// Deleted: the document was turned into a tombstone (or a tombstone was created for a
	// document the collection never saw, so that late events cannot create it).
	Deleted Outcome = "deleted"
	// AlreadyDeleted: the document was already a tombstone.
	AlreadyDeleted Outcome = "already_deleted"
)

// The field names of a document in the users collection: the one place they are spelled.
// decodeUser reads them; the builders below (userFields, tombstone, the filters) write them.
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

// userFields returns what a write of u with the username name ("" for none) sets, in document
// order, and the fields it removes (username and clerk_username when empty). The fields in
// u.Unknown, and created_at when u.CreatedAt is zero, are left out: their stored values stay.
func userFields(u User, name string) (set, unset bson.D) {
	set = bson.D{
		{Key: fieldEmail, Value: u.Email},
		{Key: fieldFullName, Value: u.FullName},
	}
	if !u.Unknown.Has(FieldProfilePicture) {
		set = append(set, bson.E{Key: fieldPicture, Value: u.ProfilePicture})
	}
	if !u.Unknown.Has(FieldCreatedAt) && u.CreatedAt != 0 {
		set = append(set, bson.E{Key: fieldCreatedAt, Value: u.CreatedAt})
	}
	set = append(set, bson.E{Key: fieldUpdatedAt, Value: u.UpdatedAt})
	for _, f := range []struct{ key, value string }{{fieldUsername, name}, {fieldClerkUsername, u.ClerkUsername}} {
		if f.value != "" {
			set = append(set, bson.E{Key: f.key, Value: f.value})
		} else {
			unset = append(unset, bson.E{Key: f.key, Value: ""})
		}
	}
	return set, unset
}

// updateOf returns the update that sets set and removes unset.
func updateOf(set, unset bson.D) bson.D {
	update := bson.D{{Key: "$set", Value: set}}
	if len(unset) > 0 {
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	return update
}

// tombstone returns the whole document of the deleted user id: _id, deleted, deleted_at and
// updated_at, nothing else.
func tombstone(id string, deletedAt, updatedAt int64) bson.D {
	return bson.D{
		{Key: fieldID, Value: id},
		{Key: fieldDeleted, Value: true},
		{Key: fieldDeletedAt, Value: deletedAt},
		{Key: fieldUpdatedAt, Value: updatedAt},
	}
}

// idIs returns the filter of the user id alone.
func idIs(id string) bson.D { return bson.D{{Key: fieldID, Value: id}} }

// notDeleted is the filter condition of a live user.
func notDeleted() bson.E {
	return bson.E{Key: fieldDeleted, Value: bson.D{{Key: "$ne", Value: true}}}
}

// createUserIndexes makes sure the users collection has its index: username is unique among
// live users. The index is sparse because tombstones have no username; sparse (rather than
// partial) indexes also work on FerretDB. It returns an error wrapping ErrDatabase when the
// server refuses it.
func createUserIndexes(ctx context.Context, users *mongo.Collection) error {
	_, err := users.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: fieldUsername, Value: 1}},
		Options: options.Index().SetName("username_unique").SetUnique(true).SetSparse(true),
	})
	if err != nil {
		return fmt.Errorf("%w: create index on %s.%s: %v", ErrDatabase, Collection, fieldUsername, err)
	}
	return nil
}

// userDoc is a document of the users collection as read back. It is decoded leniently
// (decodeUser), because the collection may be an application's own, holding fields of other
// types than this service writes: a value of another type reads as missing.
type userDoc struct {
	// User holds the fields; its UpdatedAt is read by the number rule (millis: 0 when
	// updated_at is missing or not a number), and its Unknown is empty.
	User
	// RawUpdatedAt is updated_at as stored (Type 0 when missing), to match it exactly in a
	// conditional write.
	RawUpdatedAt bson.RawValue
	// NotClerk is set (by holderOf alone) for a document whose _id is not a string: not a
	// Clerk user, so the service never writes it. Its User holds only the username.
	NotClerk bool
	// raw is the document as read by readOne (nil otherwise), to tell what a write changes
	// (recordChange) and what the stored version's write changed (alreadyStored).
	raw bson.Raw
}

// decodeUser reads a users document. It fails only when the document has no string _id.
func decodeUser(raw bson.Raw) (userDoc, error) {
	id, ok := raw.Lookup(fieldID).StringValueOK()
	if !ok {
		return userDoc{}, fmt.Errorf("%w: a users document whose _id is not a string", ErrDatabase)
	}
	st := stateOf(raw)
	d := userDoc{User: User{
		ID:             id,
		FullName:       str(raw, fieldFullName),
		ProfilePicture: str(raw, fieldPicture),
		Username:       str(raw, fieldUsername),
		ClerkUsername:  str(raw, fieldClerkUsername),
		CreatedAt:      millis(raw, fieldCreatedAt),
		UpdatedAt:      st.UpdatedAt,
		Deleted:        st.Deleted,
		DeletedAt:      st.DeletedAt,
	}, RawUpdatedAt: rawUpdatedAt(raw)}
	if e, ok := raw.Lookup(fieldEmail).StringValueOK(); ok {
		d.Email = &e
	}
	return d, nil
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

// Count returns how many documents the users collection holds, tombstones included. It
// returns an error wrapping ErrDatabase when the count fails.
func (s *Store) Count(ctx context.Context) (int64, error) {
	n, err := s.users.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("%w: count users: %v", ErrDatabase, err)
	}
	return n, nil
}

// read returns the stored document of the user id, ErrNotFound, or an error wrapping
// ErrDatabase.
func (s *Store) read(ctx context.Context, id string) (userDoc, error) {
	return s.readOne(ctx, idIs(id), id)
}

// current returns the stored document of the user id and whether there is one, or an error
// wrapping ErrDatabase.
func (s *Store) current(ctx context.Context, id string) (cur userDoc, found bool, err error) {
	cur, err = s.read(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return userDoc{}, false, nil
	}
	return cur, err == nil, err
}

// readOne returns the one document filter matches (what names it in errors), ErrNotFound, or
// an error wrapping ErrDatabase.
func (s *Store) readOne(ctx context.Context, filter bson.D, what string) (userDoc, error) {
	raw, err := s.users.FindOne(ctx, filter).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return userDoc{}, ErrNotFound
	}
	if err != nil {
		return userDoc{}, dbErr("find user", what, err)
	}
	d, err := decodeUser(raw)
	d.raw = raw
	return d, err
}

// userWrites is how the store makes a write of a user conditional on the stored user, one per
// WriteMode: byIDWrites (users_byid.go) and conditionalWrites (users_conditional.go), which
// hand the document write to the core every collection shares (docWrites, guarded.go) and add
// the username's rename. UpsertUser reads the user and decides under its lock, in either mode,
// then hands each write to the store's strategy. (DeleteUser writes through the core directly,
// deleteDoc.) The two take the same arguments and give the same results:
//   - nil (or an Outcome): written;
//   - errStale: the stored user is no longer as the caller read it, and nothing was written
//     (the caller reads again and starts over);
//   - a unique-index violation (isDuplicate) as the driver reported it, for the caller to
//     resolve: another user holds the username, or the document was inserted meanwhile;
//   - any other failure wrapped in ErrDatabase.
type userWrites interface {
	// upsert writes u as newer than the stored user, setting set and removing unset (u's
	// fields, userFields, with the record of the change); found says whether the caller read
	// one. It returns Inserted or Updated.
	upsert(ctx context.Context, u User, set, unset bson.D, found bool) (Outcome, error)
	// rename changes the username of h, a user as the caller read it, to next ("" removes
	// it), only while h still holds the username it was read with.
	rename(ctx context.Context, h userDoc, next string) error
}

// newUserWrites returns the strategy of mode (WritesByID or WritesConditional) on users.
func newUserWrites(mode WriteMode, users *mongo.Collection) userWrites {
	if mode == WritesByID {
		return byIDWrites{users}
	}
	return conditionalWrites{users}
}

// renameWhere sets the username of the user id to next ("" removes it) in the document filter
// matches. It returns errStale when filter matches none, a unique-index violation as it is, and
// an error wrapping ErrDatabase otherwise. Both strategies rename with it, each with its own
// filter.
func renameWhere(ctx context.Context, users *mongo.Collection, filter bson.D, id, next string) error {
	update := bson.D{{Key: "$set", Value: bson.D{{Key: fieldUsername, Value: next}}}}
	if next == "" {
		update = bson.D{{Key: "$unset", Value: bson.D{{Key: fieldUsername, Value: ""}}}}
	}
	res, err := users.UpdateOne(ctx, filter, update)
	if err != nil {
		return writeErr("change the username of user", id, err)
	}
	if res.MatchedCount == 0 {
		return errStale
	}
	return nil
}

// UpsertUser writes u if it is newer than the stored user: the write applies only when no
// document has u.ID, or the stored one is not deleted and has an older updated_at (a stored
// number of any BSON type is compared by its value; a missing or non-numeric updated_at, or
// NaN, counts as older than any event). So an older event never overwrites a newer one, an
// update that arrives before its create still lands, a replay changes nothing, and a deleted
// user stays deleted. The fields in u.Unknown keep their stored values. A repair (u.Repair)
// also applies over a live user with the same updated_at whose fields taken from Clerk differ
// from u's (see User.Repair).
//
// The username follows Clerk, and never blocks the rest of the write:
//   - u.ClerkUsername, when set, is claimed. A user holding it as a derived username gives it
//     up (it gets the username with a numeric suffix). A user holding it as their own Clerk
//     username keeps it only if their record is newer (by updated_at; a tie goes to the lower
//     id): that claim is the current one and u's is stale, so u gets the claim with a suffix
//     until its own newer event arrives. A document that is not a live Clerk user (its _id
//     is not a string, or it is marked deleted) never yields: u gets the claim with a suffix.
//   - Without a Clerk username, a user keeps the derived username it holds; a user whose
//     Clerk username was removed in Clerk (or who has none yet) gets u.Username (derived from
//     the email or id), with a suffix when another user holds that.
//   - When no candidate is free, the user is written without a username.
//
// It returns Inserted, Updated or Skipped (UpsertUserChange's AlreadyStored too). It returns
// ErrInvalidUser when u has no ID, and an error wrapping ErrDatabase when the database fails
// or the users involved kept changing during the write; both are worth retrying except the
// first.
func (s *Store) UpsertUser(ctx context.Context, u User) (Outcome, error) {
	c, err := s.UpsertUserChange(ctx, u)
	return c.legacy(), err
}

// UpsertUserChange is UpsertUser, telling what the write changed (see Change): Inserted or
// Updated with the names of the stored fields it changed (which it also records in the
// document, _sync_change); AlreadyStored when the stored user is live with u's updated_at (and
// no repair applies), with the fields its write recorded; Skipped when the stored user is
// newer or deleted. Its errors are UpsertUser's.
func (s *Store) UpsertUserChange(ctx context.Context, u User) (Change, error) {
	if u.ID == "" {
		return Change{}, fmt.Errorf("%w: no user id", ErrInvalidUser)
	}
	assumeNew := s.insertFirst(u)
	return s.guardedWrite(ctx, "user", u.ID, func(locked []string) (Change, error) {
		out, err := s.upsert(ctx, u, locked, assumeNew)
		assumeNew = false // the first attempt only
		return out, err
	})
}

// likelyNewWithin is how soon after its creation a user's data must have been updated for
// insertFirst to take it for a sign-up.
const likelyNewWithin = 10_000 // ms

// insertFirst reports whether UpsertUser's first attempt at u skips the read and inserts: on
// FerretDB (WritesByID), for a user whose updated_at is within likelyNewWithin of its
// created_at, as a sign-up's is, which usually finds no stored user. It saves the sign-up one
// of its two database calls. When the user is stored after all (a replay, a tombstone, a newer
// version), the insert fails on the _id index, checkUnchanged sees the user and the next
// attempt reads it first, as every attempt does otherwise. On MongoDB (WritesConditional) the
// read is cheap and the write's filter needs what it read.
func (s *Store) insertFirst(u User) bool {
	_, byID := s.writes.(byIDWrites)
	return byID && u.CreatedAt > 0 && u.UpdatedAt >= u.CreatedAt && u.UpdatedAt-u.CreatedAt <= likelyNewWithin
}

// upsert is one attempt of UpsertUser, holding the locks of the users in locked (u.ID among
// them); assumeNew skips the read, taking the user for one the collection does not have (see
// insertFirst). It returns errStale or needLock when the attempt must start over.
func (s *Store) upsert(ctx context.Context, u User, locked []string, assumeNew bool) (Change, error) {
	var cur userDoc
	found := false
	if !assumeNew {
		var err error
		if cur, found, err = s.current(ctx, u.ID); err != nil {
			return Change{}, err
		}
	}
	if found && !writesOver(u, cur) {
		if !cur.Deleted && cmpMillis(cur.RawUpdatedAt, u.UpdatedAt) == 0 {
			return alreadyStored(cur.raw, u.UpdatedAt), nil
		}
		return Change{Outcome: Skipped}, nil
	}
	names := usernamesFor(u, cur, found)
	displaced := 0
	for i := 0; i < len(names); i++ {
		name := names[i]
		set, unset := userFields(u, name)
		set, change := recordChange(set, unset, cur.raw, found, u.UpdatedAt)
		out, err := s.writes.upsert(ctx, u, set, unset, found)
		if err == nil {
			change.Outcome = out
			return change, nil
		}
		if !isDuplicate(err) {
			return Change{}, err
		}
		// A unique index refused the write: u.ID (another process inserted the user, or wrote
		// a newer version) or the username. Tell them apart.
		if err := s.checkUnchanged(ctx, u.ID, cur, found); err != nil {
			return Change{}, err
		}
		switch name {
		case "":
			return Change{}, errStale
		case u.ClerkUsername:
		default:
			continue // a derived username is taken: the next candidate
		}
		// The user's Clerk username is taken: by whom decides who keeps it.
		holder, err := s.holderOf(ctx, name)
		switch {
		case errors.Is(err, ErrNotFound) || (err == nil && holder.ID == u.ID):
			return Change{}, errStale // freed, or ours, since the write: try again
		case err != nil:
			return Change{}, err
		}
		if !yields(holder, u) {
			continue // the claim with a suffix
		}
		if !slices.Contains(locked, holder.ID) {
			return Change{}, needLock{holder.ID}
		}
		if displaced++; displaced > 3 {
			return Change{}, errStale
		}
		if err := s.displace(ctx, u, holder.ID, name); err != nil {
			return Change{}, err
		}
		i-- // the claim again, now free
	}
	return Change{}, errStale // unreachable: the last candidate ("") cannot collide on a username
}

// writesOver reports whether UpsertUser writes u over cur, the stored user: when cur is live
// and older than u, or, for a repair (u.Repair), as new as u and differing from it in a field
// taken from Clerk (clerkFieldsDiffer).
func writesOver(u User, cur userDoc) bool {
	if cur.Deleted {
		return false
	}
	switch cmpMillis(cur.RawUpdatedAt, u.UpdatedAt) {
	case -1:
		return true
	case 0:
		return u.Repair && clerkFieldsDiffer(u, cur.User)
	}
	return false
}

// clerkFieldsDiffer reports whether the stored user cur differs from u in a field the service
// takes from Clerk: email, full_name, clerk_username, and profile_picture and created_at unless
// u's source lacks them (u.Unknown, or a zero u.CreatedAt). A field that is missing, or of
// another type, reads as empty (see decodeUser).
func clerkFieldsDiffer(u, cur User) bool {
	switch {
	case (u.Email == nil) != (cur.Email == nil), u.Email != nil && *u.Email != *cur.Email,
		u.FullName != cur.FullName, u.ClerkUsername != cur.ClerkUsername:
		return true
	case !u.Unknown.Has(FieldProfilePicture) && u.ProfilePicture != cur.ProfilePicture:
		return true
	}
	return !u.Unknown.Has(FieldCreatedAt) && u.CreatedAt != 0 && u.CreatedAt != cur.CreatedAt
}

// checkUnchanged returns errStale when the user id is no longer as the write read it (found,
// and cur when found): another process wrote it meanwhile.
func (s *Store) checkUnchanged(ctx context.Context, id string, cur userDoc, found bool) error {
	now, err := s.read(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		if found {
			return errStale
		}
		return nil
	case err != nil:
		return err
	case !found || now.Deleted || now.UpdatedAt != cur.UpdatedAt || now.Username != cur.Username:
		return errStale
	}
	return nil
}

// DeleteUser replaces the user with the given id by a tombstone deleted at deletedAt (Unix
// milliseconds): a document of _id, deleted, deleted_at and updated_at (the later of the
// deletion time and the stored updated_at) alone, so that no personal data stays, including
// fields the application added, and the username is free for others. No later UpsertUser can
// bring the user back. A user the collection never saw gets a tombstone too, so that a create
// arriving after its delete is ignored. A document already marked deleted but holding more
// than a tombstone's fields (an application's soft delete, an earlier version's tombstone) is
// replaced by its tombstone too, keeping its deleted_at when that is a number.
//
// Then it tombstones every live membership of the user (deleted at the user's deletion time),
// after the user's tombstone is written: docs/design.md says why that order leaves no live
// membership of a deleted user, whatever runs at the same time. A replay does it again,
// so a delete whose cascade failed half-way completes when retried.
//
// It returns Deleted, or AlreadyDeleted for a replay (a tombstone already: the first deletion
// time is kept). It returns ErrInvalidUser when id is empty and an error wrapping ErrDatabase when the database
// fails.
func (s *Store) DeleteUser(ctx context.Context, id string, deletedAt int64) (Outcome, error) {
	c, err := s.DeleteUserChange(ctx, id, deletedAt)
	return c.Outcome, err
}

// DeleteUserChange is DeleteUser, telling the tombstone's deleted_at too (Change.At: the first
// deletion's, for AlreadyDeleted), so that a replay names the deletion as the first did. Its
// errors are DeleteUser's.
func (s *Store) DeleteUserChange(ctx context.Context, id string, deletedAt int64) (Change, error) {
	if id == "" {
		return Change{}, fmt.Errorf("%w: no user id", ErrInvalidUser)
	}
	out, at, err := s.deleteDoc(ctx, s.users, "user", id, deletedAt)
	if err != nil {
		return Change{}, err
	}
	if err := s.endMemberships(ctx, fieldUserID, id, at); err != nil {
		return Change{}, err
	}
	return Change{Outcome: out, At: at, Fields: []string{}}, nil
}

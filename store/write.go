package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// maxUsernameAttempts bounds how many suffixed username candidates a write tries.
const maxUsernameAttempts = 12

// maxDerivedBase is the longest derived username kept before a suffix is added. A Clerk
// username is kept whole.
const maxDerivedBase = 48

// maxRounds bounds how often UpsertUser starts over because what it read changed under it
// (another process's write) or because it needs one more user's lock.
const maxRounds = 16

// errStale means the stored state changed since the write read it: start the write over.
var errStale = errors.New("store: the stored user changed during the write")

// needLock means the write must change another user (give up a username to this one) whose
// lock it does not hold: start over holding both locks.
type needLock struct{ id string }

func (e needLock) Error() string { return "store: need the lock of user " + e.id }

// UpsertUser writes u if it is newer than the stored user: the write applies only when no
// document has u.ID, or the stored one is not deleted and has an older updated_at (a missing or
// non-numeric updated_at counts as older than any event). So an older event never overwrites a
// newer one, an update that arrives before its create still lands, a replay changes nothing,
// and a deleted user stays deleted. The fields in u.Unknown keep their stored values.
//
// The username follows Clerk, and never blocks the rest of the write:
//   - u.ClerkUsername, when set, is claimed. A user holding it as a derived username gives it
//     up (it gets the username with a numeric suffix). A user holding it as their own Clerk
//     username keeps it only if their record is newer (by updated_at; a tie goes to the lower
//     id): that claim is the current one and u's is stale, so u gets the claim with a suffix
//     until its own newer event arrives.
//   - Without a Clerk username, a user keeps the derived username it holds; a user whose
//     Clerk username was removed in Clerk (or who has none yet) gets u.Username (derived from
//     the email or id), with a suffix when another user holds that.
//   - When no candidate is free, the user is written without a username.
//
// It returns Inserted, Updated or Skipped. It returns ErrInvalidUser when u has no ID, and an
// error wrapping ErrDatabase when the database fails or the users involved kept changing
// during the write; both are worth retrying except the first.
func (s *Store) UpsertUser(ctx context.Context, u User) (Outcome, error) {
	if u.ID == "" {
		return "", fmt.Errorf("%w: no user id", ErrInvalidUser)
	}
	ids := []string{u.ID}
	for range maxRounds {
		unlock := s.lockUsers(ids...)
		out, err := s.upsert(ctx, u, ids)
		unlock()
		var nl needLock
		switch {
		case errors.As(err, &nl):
			ids = []string{u.ID, nl.id}
		case errors.Is(err, errStale):
		default:
			return out, err
		}
		if err := ctx.Err(); err != nil {
			return "", dbErr("write user", u.ID, err)
		}
	}
	return "", fmt.Errorf("%w: write user %s: the users involved kept changing during the write; retry", ErrDatabase, u.ID)
}

// upsert is one attempt of UpsertUser, holding the locks of the users in locked (u.ID among
// them). It returns errStale or needLock when the attempt must start over.
func (s *Store) upsert(ctx context.Context, u User, locked []string) (Outcome, error) {
	cur, err := s.read(ctx, u.ID)
	found := err == nil
	switch {
	case err != nil && !errors.Is(err, ErrNotFound):
		return "", err
	case found && (cur.Deleted || cur.UpdatedAt >= u.UpdatedAt):
		return Skipped, nil
	}
	names := usernamesFor(u, cur, found)
	displaced := 0
	for i := 0; i < len(names); i++ {
		name := names[i]
		out, err := s.writeUser(ctx, u, found, name)
		if err == nil {
			return out, nil
		}
		if !isDuplicate(err) {
			return "", err
		}
		// A unique index refused the write: u.ID (another process inserted the user, or wrote
		// a newer version) or the username. Tell them apart.
		if err := s.checkUnchanged(ctx, cur, found); err != nil {
			return "", err
		}
		switch name {
		case "":
			return "", errStale
		case u.ClerkUsername:
		default:
			continue // a derived username is taken: the next candidate
		}
		// The user's Clerk username is taken: by whom decides who keeps it.
		holder, err := s.holderOf(ctx, name)
		switch {
		case errors.Is(err, ErrNotFound) || (err == nil && holder.ID == u.ID):
			return "", errStale // freed, or ours, since the write: try again
		case err != nil:
			return "", err
		}
		if !yields(holder, u) {
			continue // the claim with a suffix
		}
		if !slices.Contains(locked, holder.ID) {
			return "", needLock{holder.ID}
		}
		if displaced++; displaced > 3 {
			return "", errStale
		}
		if err := s.displace(ctx, u, holder.ID, name); err != nil {
			return "", err
		}
		i-- // the claim again, now free
	}
	return "", errStale // unreachable: the last candidate ("") cannot collide on a username
}

// usernamesFor returns the usernames a write of u tries, in order, ending with "" (no
// username). cur is the stored user when found.
func usernamesFor(u User, cur userDoc, found bool) []string {
	id := u.ID
	if claim := u.ClerkUsername; claim != "" {
		// The claim, then (while a newer claim holds it) the claim with a suffix.
		names := []string{claim}
		for a := 1; a < maxUsernameAttempts; a++ {
			names = append(names, usernameCandidate(claim, id, a))
		}
		return append(names, "")
	}
	var names []string
	if found && cur.Username != "" && cur.ClerkUsername == "" {
		// A derived username is kept once given. (One held while a Clerk claim waited is
		// dropped with the claim.)
		names = append(names, cur.Username)
	}
	base := u.Username
	if len(base) > maxDerivedBase {
		base = base[:maxDerivedBase]
	}
	if base == "" {
		base = id
	}
	for a := range maxUsernameAttempts {
		names = append(names, usernameCandidate(base, id, a))
	}
	return append(names, "")
}

// yields reports whether holder, the user holding u's Clerk username, must give it up to u:
// when holder holds it as a derived username, or as a Clerk claim older than u's record.
func yields(holder userDoc, u User) bool {
	if holder.ClerkUsername != holder.Username {
		return true
	}
	if holder.UpdatedAt != u.UpdatedAt {
		return holder.UpdatedAt < u.UpdatedAt
	}
	return u.ID < holder.ID
}

// usernameCandidate returns the username to try on the given attempt: base itself first, then
// base followed by digits derived from the user id and the attempt.
func usernameCandidate(base, id string, attempt int) string {
	if attempt == 0 {
		return base
	}
	sum := sha256.Sum256([]byte(id + "#" + strconv.Itoa(attempt)))
	n := binary.BigEndian.Uint64(sum[:8])
	if attempt < 4 {
		return fmt.Sprintf("%s%04d", base, n%10_000)
	}
	return fmt.Sprintf("%s%08d", base, n%100_000_000)
}

// checkUnchanged returns errStale when the user is no longer as the write read it (found,
// and cur when found): another process wrote it meanwhile.
func (s *Store) checkUnchanged(ctx context.Context, cur userDoc, found bool) error {
	now, err := s.read(ctx, cur.ID)
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

// writeUser writes u with the username name ("" for none), guarded by the stored state: in
// WritesByID mode the caller read it (found) under the user's lock; in WritesConditional mode
// the filter holds the guard. It returns Inserted or Updated, errStale when the guard no longer
// holds, and the driver's error otherwise (a unique-index violation among them).
func (s *Store) writeUser(ctx context.Context, u User, found bool, name string) (Outcome, error) {
	set := bson.D{
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
	var unset bson.D
	for _, f := range []struct{ key, value string }{{fieldUsername, name}, {fieldClerkUsername, u.ClerkUsername}} {
		if f.value != "" {
			set = append(set, bson.E{Key: f.key, Value: f.value})
		} else {
			unset = append(unset, bson.E{Key: f.key, Value: ""})
		}
	}
	update := bson.D{{Key: "$set", Value: set}}
	if len(unset) > 0 {
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}

	if s.byID {
		if !found {
			if _, err := s.users.InsertOne(ctx, append(bson.D{{Key: fieldID, Value: u.ID}}, set...)); err != nil {
				return "", s.writeErr("insert user", u.ID, err)
			}
			return Inserted, nil
		}
		if _, err := s.users.UpdateOne(ctx, bson.D{{Key: fieldID, Value: u.ID}}, update); err != nil {
			return "", s.writeErr("update user", u.ID, err)
		}
		return Updated, nil
	}
	// The newer-than guard: the filter matches only a live document with an older (or no, or
	// non-numeric) updated_at. When it matches nothing, the upsert inserts u.ID, which fails on
	// the _id index if the user exists.
	filter := bson.D{
		{Key: fieldID, Value: u.ID},
		{Key: fieldUpdatedAt, Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$gte", Value: u.UpdatedAt}}}}},
		{Key: fieldDeleted, Value: bson.D{{Key: "$ne", Value: true}}},
	}
	res, err := s.users.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
	switch {
	case err != nil:
		return "", s.writeErr("upsert user", u.ID, err)
	case res.UpsertedCount > 0:
		return Inserted, nil
	case res.MatchedCount > 0:
		return Updated, nil
	}
	return "", errStale
}

// writeErr keeps a unique-index violation as it is (the caller resolves it) and wraps any
// other driver error in ErrDatabase.
func (s *Store) writeErr(op, id string, err error) error {
	if isDuplicate(err) {
		return err
	}
	return dbErr(op, id, err)
}

// displace gives the user holderID, who holds name but must yield it to u, a derived username
// instead: name with a suffix, or none when every candidate is taken. The caller holds both
// users' locks. It returns errStale when the holder changed since it was found, and an error
// wrapping ErrDatabase when the database fails.
func (s *Store) displace(ctx context.Context, u User, holderID, name string) error {
	h, err := s.read(ctx, holderID)
	switch {
	case errors.Is(err, ErrNotFound):
		return errStale
	case err != nil:
		return err
	case h.Deleted || h.Username != name || !yields(h, u):
		return errStale
	}
	for a := 1; a <= maxUsernameAttempts; a++ {
		next := ""
		if a < maxUsernameAttempts {
			next = usernameCandidate(name, h.ID, a)
		}
		err := s.setUsername(ctx, h, next)
		if err == nil || !isDuplicate(err) {
			return err
		}
	}
	return errStale
}

// setUsername changes the username of the stored user h to next ("" removes it), only if h
// still holds the username it was read with. It returns errStale when it does not, the
// driver's unique-index violation as it is, and an error wrapping ErrDatabase otherwise.
func (s *Store) setUsername(ctx context.Context, h userDoc, next string) error {
	filter := bson.D{{Key: fieldID, Value: h.ID}}
	if !s.byID {
		// By _id alone under the lock on FerretDB; with the state read, on MongoDB, where
		// other processes write too.
		updated := bson.E{Key: fieldUpdatedAt, Value: h.RawUpdatedAt}
		if h.RawUpdatedAt.Type == 0 {
			updated.Value = bson.D{{Key: "$exists", Value: false}}
		}
		filter = append(filter, bson.E{Key: fieldUsername, Value: h.Username}, updated,
			bson.E{Key: fieldDeleted, Value: bson.D{{Key: "$ne", Value: true}}})
	}
	update := bson.D{{Key: "$set", Value: bson.D{{Key: fieldUsername, Value: next}}}}
	if next == "" {
		update = bson.D{{Key: "$unset", Value: bson.D{{Key: fieldUsername, Value: ""}}}}
	}
	res, err := s.users.UpdateOne(ctx, filter, update)
	if err != nil {
		return s.writeErr("change the username of user", h.ID, err)
	}
	if res.MatchedCount == 0 {
		return errStale
	}
	return nil
}

// DeleteUser replaces the user with the given id by a tombstone deleted at deletedAt (Unix
// milliseconds): a document of _id, deleted, deleted_at and updated_at (the later of the
// deletion time and the stored updated_at) alone, so that no personal data stays, including
// fields the application added, and the username is free for others. No later UpsertUser can bring the user back. A user the
// collection never saw gets a tombstone too, so that a create arriving after its delete is
// ignored.
//
// It returns Deleted, or AlreadyDeleted for a replay (the first deletion time is kept). It
// returns ErrInvalidUser when id is empty and an error wrapping ErrDatabase when the database
// fails.
func (s *Store) DeleteUser(ctx context.Context, id string, deletedAt int64) (Outcome, error) {
	if id == "" {
		return "", fmt.Errorf("%w: no user id", ErrInvalidUser)
	}
	defer s.lockUsers(id)()
	for range 3 {
		cur, err := s.read(ctx, id)
		found := err == nil
		switch {
		case err != nil && !errors.Is(err, ErrNotFound):
			return "", err
		case found && cur.Deleted:
			return AlreadyDeleted, nil
		}
		tomb := bson.D{
			{Key: fieldID, Value: id},
			{Key: fieldDeleted, Value: true},
			{Key: fieldDeletedAt, Value: deletedAt},
			{Key: fieldUpdatedAt, Value: max(deletedAt, cur.UpdatedAt)},
		}
		written := true
		switch {
		case s.byID && !found:
			_, err = s.users.InsertOne(ctx, tomb)
		case s.byID:
			_, err = s.users.ReplaceOne(ctx, bson.D{{Key: fieldID, Value: id}}, tomb)
		default:
			// One atomic write: replace a live document, or insert the tombstone; the insert
			// fails on _id when a tombstone exists.
			var res *mongo.UpdateResult
			res, err = s.users.ReplaceOne(ctx, bson.D{
				{Key: fieldID, Value: id},
				{Key: fieldDeleted, Value: bson.D{{Key: "$ne", Value: true}}},
			}, tomb, options.Replace().SetUpsert(true))
			written = err == nil && res.MatchedCount+res.UpsertedCount > 0
		}
		if err == nil && written {
			return Deleted, nil
		}
		if err != nil && !isDuplicate(err) {
			return "", dbErr("delete user", id, err)
		}
		// Inserted or deleted meanwhile by another process: decide again.
	}
	return "", fmt.Errorf("%w: delete user %s: the document kept changing; retry", ErrDatabase, id)
}

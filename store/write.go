package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// maxUsernameAttempts bounds how many username candidates UpsertUser tries.
const maxUsernameAttempts = 12

// maxUsernameBase is the longest username base kept before a suffix is added.
const maxUsernameBase = 48

// UpsertUser writes u if it is newer than the stored user, in one atomic conditional upsert:
// the write applies only when no document has u.ID, or the stored one has an older UpdatedAt
// and is not deleted. So an older event never overwrites a newer one, an update that arrives
// before its create still lands, a replay changes nothing, and a deleted user stays deleted.
//
// Usernames are unique among live users through a unique index. When u.Username is taken by
// another user, UpsertUser retries with a suffix derived from the user id (the same candidates
// in the same order on every retry, so retried events converge).
//
// It returns Inserted, Updated or Skipped. It returns ErrInvalidUser when u has no ID,
// ErrUsernameExhausted when every candidate is taken, and an error wrapping ErrDatabase when
// the database fails; the last two are worth retrying.
func (s *Store) UpsertUser(ctx context.Context, u User) (Outcome, error) {
	if u.ID == "" {
		return "", fmt.Errorf("%w: no user id", ErrInvalidUser)
	}
	defer s.lockUser(u.ID)()
	base := u.Username
	if len(base) > maxUsernameBase {
		base = base[:maxUsernameBase]
	}
	if base == "" {
		base = u.ID
	}
	if s.byID {
		return s.upsertByID(ctx, u, base)
	}
	// newer-than guard: the filter matches only a live, older document. When it matches
	// nothing, the upsert tries to insert u.ID, which fails on the _id index if the user exists.
	filter := bson.D{
		{Key: "_id", Value: u.ID},
		{Key: "updated_at", Value: bson.D{{Key: "$lt", Value: u.UpdatedAt}}},
		{Key: "deleted", Value: bson.D{{Key: "$ne", Value: true}}},
	}
	opts := options.UpdateOne().SetUpsert(true)
	retriedRace := false
	for attempt := 0; attempt < maxUsernameAttempts; attempt++ {
		username := usernameCandidate(base, u.ID, attempt)
		set := bson.D{
			{Key: "email", Value: u.Email},
			{Key: "full_name", Value: u.FullName},
			{Key: "profile_picture", Value: u.ProfilePicture},
			{Key: "created_at", Value: u.CreatedAt},
			{Key: "updated_at", Value: u.UpdatedAt},
		}
		update := bson.D{}
		if u.UsernameFromClerk {
			set = append(set, bson.E{Key: "username", Value: username})
		} else {
			update = append(update, bson.E{Key: "$setOnInsert", Value: bson.D{{Key: "username", Value: username}}})
		}
		update = append(update, bson.E{Key: "$set", Value: set})

		res, err := s.users.UpdateOne(ctx, filter, update, opts)
		if err == nil {
			if res.UpsertedCount > 0 {
				return Inserted, nil
			}
			if res.MatchedCount > 0 {
				return Updated, nil
			}
			// Neither matched nor inserted: cannot happen with upsert; treat as a race.
			continue
		}
		if !mongo.IsDuplicateKeyError(err) {
			return "", dbErr("upsert user", u.ID, err)
		}
		// A duplicate key: either the _id exists (the stored user is newer or deleted, or
		// another writer inserted it between our filter and our insert), or the username is
		// taken. Tell them apart by reading the document by _id.
		cur, gerr := s.Get(ctx, u.ID)
		switch {
		case gerr == nil && (cur.Deleted || cur.UpdatedAt >= u.UpdatedAt):
			return Skipped, nil
		case gerr == nil && !retriedRace:
			// The document exists and is older: a concurrent insert won the race for the
			// _id, or our username is taken. Try the same candidate once more: the filter
			// matches now.
			retriedRace = true
			attempt--
		case gerr == nil || errors.Is(gerr, ErrNotFound):
			// The username is taken by another user: the next candidate.
		default:
			return "", gerr
		}
	}
	return "", fmt.Errorf("%w: user %s, username %q and %d suffixes are taken", ErrUsernameExhausted, u.ID, base, maxUsernameAttempts-1)
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

// DeleteUser turns the user with the given id into a tombstone deleted at deletedAt (Unix
// milliseconds): personal data (email, name, username, picture) is removed, and no later
// UpsertUser can bring the user back. A user the collection never saw gets a tombstone too, so
// that a create arriving after its delete is ignored.
//
// It returns Deleted, or AlreadyDeleted for a replay (the first deletion time is kept). It
// returns ErrInvalidUser when id is empty and an error wrapping ErrDatabase when the database
// fails.
func (s *Store) DeleteUser(ctx context.Context, id string, deletedAt int64) (Outcome, error) {
	if id == "" {
		return "", fmt.Errorf("%w: no user id", ErrInvalidUser)
	}
	defer s.lockUser(id)()
	if s.byID {
		return s.deleteByID(ctx, id, deletedAt)
	}
	filter := bson.D{
		{Key: "_id", Value: id},
		{Key: "deleted", Value: bson.D{{Key: "$ne", Value: true}}},
	}
	update := bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "deleted", Value: true},
			{Key: "deleted_at", Value: deletedAt},
		}},
		{Key: "$unset", Value: bson.D{
			{Key: "email", Value: ""},
			{Key: "full_name", Value: ""},
			{Key: "profile_picture", Value: ""},
			{Key: "username", Value: ""},
		}},
	}
	for range 2 {
		_, err := s.users.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
		if err == nil {
			return Deleted, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return "", dbErr("delete user", id, err)
		}
		// The _id exists but did not match: either it is already deleted, or a concurrent
		// insert won the race between our filter and our insert; then the retry matches it.
		cur, gerr := s.Get(ctx, id)
		if gerr != nil && !errors.Is(gerr, ErrNotFound) {
			return "", gerr
		}
		if gerr == nil && cur.Deleted {
			return AlreadyDeleted, nil
		}
	}
	return "", fmt.Errorf("%w: delete user %s: the document kept changing; retry", ErrDatabase, id)
}

// userFields are the $set fields of a live user, without the username.
func userFields(u User) bson.D {
	return bson.D{
		{Key: "email", Value: u.Email},
		{Key: "full_name", Value: u.FullName},
		{Key: "profile_picture", Value: u.ProfilePicture},
		{Key: "created_at", Value: u.CreatedAt},
		{Key: "updated_at", Value: u.UpdatedAt},
	}
}

// upsertByID is UpsertUser in WritesByID mode: read by _id, decide, then insert (atomic
// against another insert through the _id index) or update by _id alone. The caller holds the
// user's lock, so no other write of this process changes the user in between.
func (s *Store) upsertByID(ctx context.Context, u User, base string) (Outcome, error) {
	byID := bson.D{{Key: "_id", Value: u.ID}}
	for attempt, races := 0, 0; attempt < maxUsernameAttempts && races < maxUsernameAttempts; {
		cur, err := s.Get(ctx, u.ID)
		found := err == nil
		switch {
		case err != nil && !errors.Is(err, ErrNotFound):
			return "", err
		case found && (cur.Deleted || cur.UpdatedAt >= u.UpdatedAt):
			return Skipped, nil
		}
		username := usernameCandidate(base, u.ID, attempt)
		if !found {
			doc := append(bson.D{{Key: "_id", Value: u.ID}}, userFields(u)...)
			doc = append(doc, bson.E{Key: "username", Value: username})
			_, err = s.users.InsertOne(ctx, doc)
			if err == nil {
				return Inserted, nil
			}
		} else {
			if !u.UsernameFromClerk {
				_, err = s.users.UpdateOne(ctx, byID, bson.D{{Key: "$set", Value: userFields(u)}})
				if err == nil {
					return Updated, nil
				}
			} else {
				set := append(userFields(u), bson.E{Key: "username", Value: username})
				_, err = s.users.UpdateOne(ctx, byID, bson.D{{Key: "$set", Value: set}})
				if err == nil {
					return Updated, nil
				}
			}
		}
		if !mongo.IsDuplicateKeyError(err) {
			return "", dbErr("write user", u.ID, err)
		}
		// A duplicate key: the _id (another process inserted it: decide again) or the username.
		if _, gerr := s.Get(ctx, u.ID); !found && gerr == nil {
			races++
			continue
		}
		attempt++
	}
	return "", fmt.Errorf("%w: user %s, username %q and %d suffixes are taken", ErrUsernameExhausted, u.ID, base, maxUsernameAttempts-1)
}

// deleteByID is DeleteUser in WritesByID mode.
func (s *Store) deleteByID(ctx context.Context, id string, deletedAt int64) (Outcome, error) {
	for range 3 {
		cur, err := s.Get(ctx, id)
		switch {
		case err == nil && cur.Deleted:
			return AlreadyDeleted, nil
		case errors.Is(err, ErrNotFound):
			_, err = s.users.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "deleted", Value: true}, {Key: "deleted_at", Value: deletedAt}})
			if err == nil {
				return Deleted, nil
			}
			if mongo.IsDuplicateKeyError(err) {
				continue // inserted meanwhile by another process: decide again
			}
			return "", dbErr("delete user", id, err)
		case err != nil:
			return "", err
		}
		_, err = s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{
			{Key: "$set", Value: bson.D{{Key: "deleted", Value: true}, {Key: "deleted_at", Value: deletedAt}}},
			{Key: "$unset", Value: bson.D{{Key: "email", Value: ""}, {Key: "full_name", Value: ""}, {Key: "profile_picture", Value: ""}, {Key: "username", Value: ""}}},
		})
		if err != nil {
			return "", dbErr("delete user", id, err)
		}
		return Deleted, nil
	}
	return "", fmt.Errorf("%w: delete user %s: the document kept changing; retry", ErrDatabase, id)
}

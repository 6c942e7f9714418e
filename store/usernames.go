package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The username rule of UpsertUser: which usernames a write tries, which holder yields its
// username, and how a holder gives it up. See UpsertUser, and docs/users-collection.md.

// maxUsernameAttempts bounds how many suffixed username candidates a write tries.
const maxUsernameAttempts = 12

// maxDerivedBase is the longest derived username kept before a suffix is added. A Clerk
// username is kept whole.
const maxDerivedBase = 48

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

// yields reports whether holder, the document holding u's Clerk username, must give it up to
// u: when holder is a live user holding it as a derived username, or as a Clerk claim older
// than u's record. A document whose _id is not a string (never a Clerk user) and a document
// marked deleted (the service's own tombstones hold no username, so this is an application's
// soft delete or an earlier version's tombstone) never yield: the service does not change
// them, and u gets its claim with a suffix.
func yields(holder userDoc, u User) bool {
	if holder.NotClerk || holder.Deleted {
		return false
	}
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

// holderOf returns the document whose username is name, live or marked deleted, or
// ErrNotFound; a document whose _id is not a string comes back with NotClerk set and no ID.
// It returns an error wrapping ErrDatabase when the read fails. On FerretDB this scans the
// collection; it runs only after a write collided on the username.
func (s *Store) holderOf(ctx context.Context, name string) (userDoc, error) {
	raw, err := findRaw(ctx, s.users, bson.D{{Key: fieldUsername, Value: name}}, "user holding username "+name)
	if err != nil {
		return userDoc{}, err
	}
	if _, ok := raw.Lookup(fieldID).StringValueOK(); !ok {
		return userDoc{User: User{Username: name}, NotClerk: true}, nil
	}
	return decodeUser(raw)
}

// displace gives the user holderID, who holds name but must yield it to u, a derived username
// instead: name with a suffix, or none when every candidate is taken. The caller holds both
// users' locks. It returns errStale when the holder changed since it was found, and an error
// wrapping ErrDatabase when the database fails.
func (s *Store) displace(ctx context.Context, u User, holderID, name string) error {
	h, found, err := s.current(ctx, holderID)
	switch {
	case err != nil:
		return err
	case !found || h.Deleted || h.Username != name || !yields(h, u):
		return errStale
	}
	for a := 1; a <= maxUsernameAttempts; a++ {
		next := ""
		if a < maxUsernameAttempts {
			next = usernameCandidate(name, h.ID, a)
		}
		err := s.writes.rename(ctx, h, next)
		if err == nil || !isDuplicate(err) {
			return err
		}
	}
	return errStale
}

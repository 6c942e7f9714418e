package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// MembershipsCollection is the name of the collection that holds the organization
// memberships, in the users collection's database.
const MembershipsCollection = "memberships"

// Membership is one Clerk organization membership as the collection keeps it: ids only, no
// copy of the member's or the organization's data.
type Membership struct {
	// ID is the Clerk membership id (orgmem_...), the document's _id.
	ID string
	// OrgID and UserID are the ids of the organization and the user. At most one live
	// membership has a given pair (see UpsertMembership).
	OrgID  string
	UserID string
	// Role is Clerk's role key, such as org:admin.
	Role string
	// CreatedAt and UpdatedAt are Clerk's, in Unix milliseconds. UpdatedAt orders the writes:
	// an older one never replaces a newer one. UpsertMembership leaves the stored created_at
	// as it is when CreatedAt is zero.
	CreatedAt int64
	UpdatedAt int64
	// Deleted is true for a membership that ended: Clerk deleted it, or its organization or
	// its user. It keeps no other data.
	Deleted bool
	// DeletedAt is when it ended, in Unix milliseconds (zero while live).
	DeletedAt int64
}

// The field names of a memberships document, besides those every collection shares: the one
// place they are spelled.
const (
	fieldOrgID  = "org_id"
	fieldUserID = "user_id"
	fieldRole   = "role"
	// fieldLiveKey is "<org_id>/<user_id>", present only on live memberships (a tombstone
	// has none): its sparse unique index keeps one live membership per pair, since FerretDB
	// has no partial indexes.
	fieldLiveKey = "live_key"
)

// liveKey returns the live_key of a live membership of the user userID in the organization
// orgID. Clerk ids hold no "/".
func liveKey(orgID, userID string) string { return orgID + "/" + userID }

// membershipFields returns what a write of m sets, in document order. created_at is left out
// when m.CreatedAt is zero: its stored value stays.
func membershipFields(m Membership) bson.D {
	set := bson.D{
		{Key: fieldOrgID, Value: m.OrgID},
		{Key: fieldUserID, Value: m.UserID},
		{Key: fieldRole, Value: m.Role},
	}
	if m.CreatedAt != 0 {
		set = append(set, bson.E{Key: fieldCreatedAt, Value: m.CreatedAt})
	}
	return append(set,
		bson.E{Key: fieldUpdatedAt, Value: m.UpdatedAt},
		bson.E{Key: fieldLiveKey, Value: liveKey(m.OrgID, m.UserID)})
}

// createMembershipIndexes makes sure the memberships collection has its indexes: live_key is
// unique (sparse: tombstones have none), and org_id and user_id are indexed for the cascades
// of DeleteOrganization and DeleteUser (sparse too). One command per index: FerretDB v1.24
// drops the connection when one createIndexes command names several indexes that all exist
// already (every Open after the first). It returns an error wrapping ErrDatabase when the
// server refuses one.
func (s *Store) createMembershipIndexes(ctx context.Context) error {
	for _, idx := range []struct {
		field  string
		unique bool
		name   string
	}{{fieldLiveKey, true, "live_key_unique"}, {fieldOrgID, false, "org_id"}, {fieldUserID, false, "user_id"}} {
		_, err := s.members.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: idx.field, Value: 1}},
			Options: options.Index().SetName(idx.name).SetUnique(idx.unique).SetSparse(true),
		})
		if err != nil {
			return fmt.Errorf("%w: create index on %s.%s: %v", ErrDatabase, MembershipsCollection, idx.field, err)
		}
	}
	return nil
}

// memberDoc is a memberships document as read back, decoded leniently (a value of another
// type reads as missing).
type memberDoc struct {
	Membership
	// LiveKey is live_key as stored ("" for none).
	LiveKey string
	// RawUpdatedAt is updated_at as stored (Type 0 when missing), to match it exactly in a
	// conditional write.
	RawUpdatedAt bson.RawValue
	// raw is the document as read by readMembership (nil otherwise), to tell what a write
	// changes (recordChange) and what the stored version's write changed (alreadyStored).
	raw bson.Raw
}

// decodeMembership reads a memberships document. It fails only when the document has no
// string _id.
func decodeMembership(raw bson.Raw) (memberDoc, error) {
	id, ok := raw.Lookup(fieldID).StringValueOK()
	if !ok {
		return memberDoc{}, fmt.Errorf("%w: a %s document whose _id is not a string", ErrDatabase, MembershipsCollection)
	}
	st := stateOf(raw)
	return memberDoc{Membership: Membership{
		ID:        id,
		OrgID:     str(raw, fieldOrgID),
		UserID:    str(raw, fieldUserID),
		Role:      str(raw, fieldRole),
		CreatedAt: millis(raw, fieldCreatedAt),
		UpdatedAt: st.UpdatedAt,
		Deleted:   st.Deleted,
		DeletedAt: st.DeletedAt,
	}, LiveKey: str(raw, fieldLiveKey), RawUpdatedAt: rawUpdatedAt(raw)}, nil
}

// readMembership returns the one membership filter matches (what names it in errors),
// ErrNotFound, or an error wrapping ErrDatabase.
func (s *Store) readMembership(ctx context.Context, filter bson.D, what string) (memberDoc, error) {
	raw, err := findRaw(ctx, s.members, filter, what)
	if err != nil {
		return memberDoc{}, err
	}
	d, err := decodeMembership(raw)
	d.raw = raw
	return d, err
}

// currentMembership returns the stored membership id and whether there is one, or an error
// wrapping ErrDatabase.
func (s *Store) currentMembership(ctx context.Context, id string) (memberDoc, bool, error) {
	d, err := s.readMembership(ctx, idIs(id), "membership "+id)
	if errors.Is(err, ErrNotFound) {
		return memberDoc{}, false, nil
	}
	return d, err == nil, err
}

// GetMembership returns the stored membership with the given id, live or deleted. It returns
// ErrNotFound when there is none, and an error wrapping ErrDatabase when the read fails.
func (s *Store) GetMembership(ctx context.Context, id string) (Membership, error) {
	d, err := s.readMembership(ctx, idIs(id), "membership "+id)
	if err != nil {
		return Membership{}, err
	}
	return d.Membership, nil
}

// LiveMemberships returns the live memberships of the organization orgID and the user userID,
// in ascending id order; "" for either matches any (both "": every live membership). It is for
// tests and reconciliation: on FerretDB it scans the collection. It returns an error wrapping
// ErrDatabase when the read fails.
func (s *Store) LiveMemberships(ctx context.Context, orgID, userID string) ([]Membership, error) {
	filter := bson.D{notDeleted()}
	if orgID != "" {
		filter = append(filter, bson.E{Key: fieldOrgID, Value: orgID})
	}
	if userID != "" {
		filter = append(filter, bson.E{Key: fieldUserID, Value: userID})
	}
	docs, err := s.findMemberships(ctx, filter)
	if err != nil {
		return nil, err
	}
	out := make([]Membership, len(docs))
	for i, d := range docs {
		out[i] = d.Membership
	}
	return out, nil
}

// findMemberships returns the memberships filter matches, in ascending id order, leaving out
// documents whose _id is not a string.
func (s *Store) findMemberships(ctx context.Context, filter bson.D) ([]memberDoc, error) {
	cur, err := s.members.Find(ctx, filter)
	if err != nil {
		return nil, dbErr("list", "memberships", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	out := []memberDoc{}
	for cur.Next(ctx) {
		if d, err := decodeMembership(cur.Current); err == nil {
			out = append(out, d)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, dbErr("list", "memberships", err)
	}
	slices.SortFunc(out, func(a, b memberDoc) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// UpsertMembership writes m if it is newer than the stored membership, with the users' guard
// (an older event never overwrites a newer one, an update that arrives before its create
// lands, a replay changes nothing, a deleted membership stays deleted), and two more rules:
//
//   - A membership of a deleted organization or a deleted user is stored as a tombstone
//     (deleted at the earlier of their deletions): whatever its order, an event never leaves a
//     live membership of a tombstone. An organization or user not stored yet is no reason to
//     wait: the membership is written live.
//   - One live membership per (organization, user). Clerk has at most one at a time, so when
//     another live membership has m's pair, one of the two has been deleted in Clerk (its
//     delete event is on its way): the newer record (by updated_at; on a tie the later
//     created_at, then the lower id) stays live, and the other is stored as a tombstone,
//     deleted at the newer one's updated_at.
//
// Why no concurrent delete leaves a live membership of a tombstone: see docs/design.md.
//
// It returns Inserted or Updated when m is stored live, and Skipped when it is not: as new or
// newer stored, a tombstone stored, or m stored as a tombstone by the rules above. It returns
// ErrInvalidMembership when m has no ID, OrgID or UserID or is marked Deleted, and an error
// wrapping ErrDatabase when the database fails or the memberships involved kept changing
// during the write; both are worth retrying except the first.
func (s *Store) UpsertMembership(ctx context.Context, m Membership) (Outcome, error) {
	c, err := s.UpsertMembershipChange(ctx, m)
	return c.legacy(), err
}

// UpsertMembershipChange is UpsertMembership, telling what the write changed (see Change):
// Inserted or Updated with the names of the stored fields it changed (also recorded in the
// document, _sync_change); AlreadyStored when the stored membership is live with m's
// updated_at (and stays live), with the fields its write recorded; Skipped when m is not
// stored live. Its errors are UpsertMembership's.
func (s *Store) UpsertMembershipChange(ctx context.Context, m Membership) (Change, error) {
	switch {
	case m.ID == "":
		return Change{}, fmt.Errorf("%w: no membership id", ErrInvalidMembership)
	case m.OrgID == "" || m.UserID == "":
		return Change{}, fmt.Errorf("%w: membership %s has no organization id or no user id", ErrInvalidMembership, m.ID)
	case m.Deleted:
		return Change{}, fmt.Errorf("%w: membership %s is marked deleted: use DeleteMembership", ErrInvalidMembership, m.ID)
	}
	return s.guardedWrite(ctx, "membership", m.ID, func(locked []string) (Change, error) {
		return s.upsertMembership(ctx, m, locked)
	})
}

// upsertMembership is one attempt of UpsertMembership, holding the locks of the memberships in
// locked (m.ID among them). It returns errStale or needLock when the attempt must start over.
func (s *Store) upsertMembership(ctx context.Context, m Membership, locked []string) (Change, error) {
	cur, found, err := s.currentMembership(ctx, m.ID)
	switch {
	case err != nil:
		return Change{}, err
	case found && cur.Deleted:
		return Change{Outcome: Skipped}, nil
	}
	// R1: after reading the membership (see docs/design.md).
	if at, gone, err := s.partyDeleted(ctx, m); err != nil {
		return Change{}, err
	} else if gone {
		return skippedAfter(s.endMembership(ctx, m.ID, found, at, max(m.UpdatedAt, cur.UpdatedAt)))
	}
	if found && cmpMillis(cur.RawUpdatedAt, m.UpdatedAt) == 0 {
		return alreadyStored(cur.raw, m.UpdatedAt), nil
	}
	if found && cmpMillis(cur.RawUpdatedAt, m.UpdatedAt) > 0 {
		return Change{Outcome: Skipped}, nil
	}
	if s.beforeMemberWrite != nil {
		s.beforeMemberWrite(m)
	}
	key := liveKey(m.OrgID, m.UserID)
	set, change := recordChange(membershipFields(m), nil, cur.raw, found, m.UpdatedAt)
	for retired := 0; ; {
		out, err := s.docs.upsert(ctx, s.members, "membership", m.ID, m.UpdatedAt, set, nil, found)
		if err == nil {
			// R2: after writing it live.
			at, gone, err := s.partyDeleted(ctx, m)
			switch {
			case err != nil:
				return Change{}, err
			case gone:
				return skippedAfter(s.endMembership(ctx, m.ID, true, at, m.UpdatedAt))
			}
			change.Outcome = out
			return change, nil
		}
		if !isDuplicate(err) {
			return Change{}, err
		}
		// A unique index refused the write: m.ID (another process inserted the membership,
		// or wrote a newer version) or the pair. Tell them apart.
		if now, nowFound, err := s.currentMembership(ctx, m.ID); err != nil {
			return Change{}, err
		} else if nowFound != found || (found && (now.Deleted || now.UpdatedAt != cur.UpdatedAt)) {
			return Change{}, errStale
		}
		holder, err := s.readMembership(ctx, bson.D{{Key: fieldLiveKey, Value: key}}, "live membership "+key)
		switch {
		case errors.Is(err, ErrNotFound) || (err == nil && holder.ID == m.ID):
			return Change{}, errStale // ended, or ours, since the write: try again
		case err != nil:
			return Change{}, err
		}
		if supersedes(holder.UpdatedAt, holder.CreatedAt, holder.ID, m.UpdatedAt, m.CreatedAt, m.ID) {
			// m is the membership that Clerk deleted before creating the holder.
			return skippedAfter(s.endMembership(ctx, m.ID, found, holder.UpdatedAt, max(m.UpdatedAt, cur.UpdatedAt)))
		}
		if !slices.Contains(locked, holder.ID) {
			return Change{}, needLock{holder.ID}
		}
		if retired++; retired > 3 {
			return Change{}, errStale
		}
		if err := s.retireMembership(ctx, m, holder.ID, key); err != nil {
			return Change{}, err
		}
	}
}

// skippedAfter returns Skipped after a tombstone write of the membership that succeeded, and
// err otherwise.
func skippedAfter(err error) (Change, error) {
	if err != nil {
		return Change{}, err
	}
	return Change{Outcome: Skipped}, nil
}

// partyDeleted reads m's organization and user, and reports whether either is a tombstone,
// with the earlier of their deletion times (m.UpdatedAt when the tombstone has none).
func (s *Store) partyDeleted(ctx context.Context, m Membership) (deletedAt int64, gone bool, err error) {
	org, _, err := stateByID(ctx, s.orgs, "organization", m.OrgID)
	if err != nil {
		return 0, false, err
	}
	user, _, err := stateByID(ctx, s.users, "user", m.UserID)
	if err != nil {
		return 0, false, err
	}
	for _, st := range []docState{org, user} {
		if st.Deleted {
			gone = true
			if st.DeletedAt != 0 && (deletedAt == 0 || st.DeletedAt < deletedAt) {
				deletedAt = st.DeletedAt
			}
		}
	}
	if gone && deletedAt == 0 {
		deletedAt = m.UpdatedAt
	}
	return deletedAt, gone, nil
}

// endMembership stores the membership id, live (found) or never seen, as a tombstone deleted
// at deletedAt with updated_at the later of deletedAt and atLeast. The caller holds its lock.
// It returns errStale when another process wrote it meanwhile (the next attempt decides
// again).
func (s *Store) endMembership(ctx context.Context, id string, found bool, deletedAt, atLeast int64) error {
	err := s.docs.delete(ctx, s.members, "membership", id, found, tombstone(id, deletedAt, max(deletedAt, atLeast)))
	if isDuplicate(err) {
		return errStale
	}
	return err
}

// retireMembership stores the membership holderID, live with m's pair key but older than m, as
// a tombstone deleted at m's updated_at. The caller holds both memberships' locks. It returns
// errStale when the holder changed since it was found.
func (s *Store) retireMembership(ctx context.Context, m Membership, holderID, key string) error {
	h, found, err := s.currentMembership(ctx, holderID)
	switch {
	case err != nil:
		return err
	case !found || h.Deleted || h.LiveKey != key || !supersedes(m.UpdatedAt, m.CreatedAt, m.ID, h.UpdatedAt, h.CreatedAt, h.ID):
		return errStale
	}
	tomb := tombstone(h.ID, m.UpdatedAt, max(m.UpdatedAt, h.UpdatedAt))
	return s.docs.replaceHeld(ctx, s.members, "membership", held{id: h.ID, key: fieldLiveKey, value: key, rawUpdatedAt: h.RawUpdatedAt}, tomb)
}

// DeleteMembership replaces the membership with the given id by a tombstone deleted at
// deletedAt (Unix milliseconds): _id, deleted, deleted_at and updated_at (the later of the
// deletion time and the stored updated_at) alone, so the pair is free for a new membership.
// No later UpsertMembership can bring it back. A membership the collection never saw gets a
// tombstone too, so that a create arriving after its delete is ignored.
//
// It returns Deleted, or AlreadyDeleted for a replay (the first deletion time is kept, also
// when the membership ended with its organization or user). It returns ErrInvalidMembership
// when id is empty and an error wrapping ErrDatabase when the database fails.
func (s *Store) DeleteMembership(ctx context.Context, id string, deletedAt int64) (Outcome, error) {
	c, err := s.DeleteMembershipChange(ctx, id, deletedAt)
	return c.Outcome, err
}

// DeleteMembershipChange is DeleteMembership, telling the tombstone's deleted_at too
// (Change.At: the first deletion's, for AlreadyDeleted). Its errors are DeleteMembership's.
func (s *Store) DeleteMembershipChange(ctx context.Context, id string, deletedAt int64) (Change, error) {
	if id == "" {
		return Change{}, fmt.Errorf("%w: no membership id", ErrInvalidMembership)
	}
	out, at, err := s.deleteDoc(ctx, s.members, "membership", id, deletedAt)
	if err != nil {
		return Change{}, err
	}
	return Change{Outcome: out, At: at, Fields: []string{}}, nil
}

// endMemberships tombstones every live membership whose field (org_id or user_id) is id,
// deleted at deletedAt: the cascade of DeleteOrganization and DeleteUser, which call it after
// writing their own tombstone. One pass is enough: a membership written live after the list is
// taken sees the tombstone in its own check after writing (docs/design.md). On FerretDB
// the list scans the collection (it pushes down only _id). It returns an error wrapping
// ErrDatabase when the database fails; the memberships ended so far stay ended, and a retry
// ends the rest.
func (s *Store) endMemberships(ctx context.Context, field, id string, deletedAt int64) error {
	live, err := s.findMemberships(ctx, bson.D{{Key: field, Value: id}, notDeleted()})
	if err != nil {
		return err
	}
	for _, d := range live {
		if _, _, err := s.deleteDoc(ctx, s.members, "membership", d.ID, deletedAt); err != nil {
			return err
		}
	}
	return nil
}

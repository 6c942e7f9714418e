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

// OrganizationsCollection is the name of the collection that holds the organizations, in the
// users collection's database.
const OrganizationsCollection = "organizations"

// Organization is one Clerk organization as the collection keeps it.
type Organization struct {
	// ID is the Clerk organization id (org_...), the document's _id.
	ID string
	// Name and Slug are Clerk's; the slug is unique among live organizations (see
	// UpsertOrganization), and "" for none. As Get returns it, Slug is "" also while a newer
	// organization holds the slug this one's last applied event claimed.
	Name string
	Slug string
	// ImageURL is Clerk's image_url.
	ImageURL string
	// CreatedBy is the id of the user who created the organization (an id, not their data).
	CreatedBy string
	// CreatedAt and UpdatedAt are Clerk's, in Unix milliseconds. UpdatedAt orders the writes:
	// an older one never replaces a newer one. UpsertOrganization leaves the stored created_at
	// as it is when CreatedAt is zero.
	CreatedAt int64
	UpdatedAt int64
	// Deleted is true for an organization that Clerk deleted; it keeps no other data.
	Deleted bool
	// DeletedAt is when the organization was deleted, in Unix milliseconds (zero while live).
	DeletedAt int64
}

// The field names of an organizations document, besides those every collection shares
// (fieldID, fieldCreatedAt, fieldUpdatedAt, fieldDeleted, fieldDeletedAt): the one place
// they are spelled.
const (
	fieldName      = "name"
	fieldSlug      = "slug"
	fieldImageURL  = "image_url"
	fieldCreatedBy = "created_by"
)

// organizationFields returns what a write of o with the slug slug ("" for none) sets, in
// document order, and the fields it removes (slug when empty). created_at is left out when
// o.CreatedAt is zero: its stored value stays.
func organizationFields(o Organization, slug string) (set, unset bson.D) {
	set = bson.D{{Key: fieldName, Value: o.Name}}
	if slug != "" {
		set = append(set, bson.E{Key: fieldSlug, Value: slug})
	} else {
		unset = bson.D{{Key: fieldSlug, Value: ""}}
	}
	set = append(set, bson.E{Key: fieldImageURL, Value: o.ImageURL}, bson.E{Key: fieldCreatedBy, Value: o.CreatedBy})
	if o.CreatedAt != 0 {
		set = append(set, bson.E{Key: fieldCreatedAt, Value: o.CreatedAt})
	}
	return append(set, bson.E{Key: fieldUpdatedAt, Value: o.UpdatedAt}), unset
}

// createOrganizationIndexes makes sure the organizations collection has its index: slug is
// unique among live organizations. Sparse, as the users' username index, because tombstones
// (and organizations waiting for their slug) have no slug field. It returns an error wrapping
// ErrDatabase when the server refuses it.
func (s *Store) createOrganizationIndexes(ctx context.Context) error {
	_, err := s.orgs.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: fieldSlug, Value: 1}},
		Options: options.Index().SetName("slug_unique").SetUnique(true).SetSparse(true),
	})
	if err != nil {
		return fmt.Errorf("%w: create index on %s.%s: %v", ErrDatabase, OrganizationsCollection, fieldSlug, err)
	}
	return nil
}

// orgDoc is an organizations document as read back, decoded leniently (a value of another
// type reads as missing).
type orgDoc struct {
	Organization
	// RawUpdatedAt is updated_at as stored (Type 0 when missing), to match it exactly in a
	// conditional write.
	RawUpdatedAt bson.RawValue
	// raw is the document as read, to tell what a write changes (recordChange) and what the
	// stored version's write changed (alreadyStored).
	raw bson.Raw
}

// decodeOrganization reads an organizations document. It fails only when the document has no
// string _id.
func decodeOrganization(raw bson.Raw) (orgDoc, error) {
	id, ok := raw.Lookup(fieldID).StringValueOK()
	if !ok {
		return orgDoc{}, fmt.Errorf("%w: an %s document whose _id is not a string", ErrDatabase, OrganizationsCollection)
	}
	st := stateOf(raw)
	return orgDoc{Organization: Organization{
		ID:        id,
		Name:      str(raw, fieldName),
		Slug:      str(raw, fieldSlug),
		ImageURL:  str(raw, fieldImageURL),
		CreatedBy: str(raw, fieldCreatedBy),
		CreatedAt: millis(raw, fieldCreatedAt),
		UpdatedAt: st.UpdatedAt,
		Deleted:   st.Deleted,
		DeletedAt: st.DeletedAt,
	}, RawUpdatedAt: rawUpdatedAt(raw)}, nil
}

// readOrganization returns the one organization filter matches (what names it in errors),
// ErrNotFound, or an error wrapping ErrDatabase.
func (s *Store) readOrganization(ctx context.Context, filter bson.D, what string) (orgDoc, error) {
	raw, err := findRaw(ctx, s.orgs, filter, what)
	if err != nil {
		return orgDoc{}, err
	}
	d, err := decodeOrganization(raw)
	d.raw = raw
	return d, err
}

// currentOrganization returns the stored organization id and whether there is one, or an error
// wrapping ErrDatabase.
func (s *Store) currentOrganization(ctx context.Context, id string) (orgDoc, bool, error) {
	d, err := s.readOrganization(ctx, idIs(id), "organization "+id)
	if errors.Is(err, ErrNotFound) {
		return orgDoc{}, false, nil
	}
	return d, err == nil, err
}

// GetOrganization returns the stored organization with the given id, live or deleted. It
// returns ErrNotFound when there is none, and an error wrapping ErrDatabase when the read
// fails.
func (s *Store) GetOrganization(ctx context.Context, id string) (Organization, error) {
	d, err := s.readOrganization(ctx, idIs(id), "organization "+id)
	if err != nil {
		return Organization{}, err
	}
	return d.Organization, nil
}

// LiveOrganizationIDs returns the ids of every live (not deleted) organization, in ascending
// order, for reconciliation. It returns an error wrapping ErrDatabase when the read fails.
func (s *Store) LiveOrganizationIDs(ctx context.Context) ([]string, error) {
	opts := options.Find().SetProjection(bson.D{{Key: fieldID, Value: 1}})
	cur, err := s.orgs.Find(ctx, bson.D{notDeleted()}, opts)
	if err != nil {
		return nil, dbErr("list", "live organizations", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	ids := []string{}
	for cur.Next(ctx) {
		if id, ok := cur.Current.Lookup(fieldID).StringValueOK(); ok {
			ids = append(ids, id)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, dbErr("list", "live organizations", err)
	}
	slices.Sort(ids)
	return ids, nil
}

// UpsertOrganization writes o if it is newer than the stored organization, with the users'
// guard: the write applies only when no document has o.ID, or the stored one is not deleted
// and has an older updated_at. So an older event never overwrites a newer one, an update that
// arrives before its create still lands, a replay changes nothing, and a deleted organization
// stays deleted.
//
// The slug is unique among live organizations, and never blocks the rest of the write. Clerk
// keeps slugs unique at every instant, so when o's slug is held by another organization, one
// of the two records is stale (its organization changed slug since, and that event is on its
// way): the newer record holds the slug (by updated_at; on a tie the later created_at, then
// the lower id). When o is the newer, the holder's slug is removed (its other fields stay)
// and o takes it; otherwise o is written without a slug. Either organization gets its slug
// back with its own newer event.
//
// It returns Inserted, Updated or Skipped (UpsertOrganizationChange's AlreadyStored too). It
// returns ErrInvalidOrganization when o has no ID, and an error wrapping ErrDatabase when the
// database fails or the organizations involved kept changing during the write; both are worth
// retrying except the first.
func (s *Store) UpsertOrganization(ctx context.Context, o Organization) (Outcome, error) {
	c, err := s.UpsertOrganizationChange(ctx, o)
	return c.legacy(), err
}

// UpsertOrganizationChange is UpsertOrganization, telling what the write changed (see Change):
// Inserted or Updated with the names of the stored fields it changed (also recorded in the
// document, _sync_change); AlreadyStored when the stored organization is live with o's
// updated_at, with the fields its write recorded; Skipped when it is newer or deleted. Its
// errors are UpsertOrganization's.
func (s *Store) UpsertOrganizationChange(ctx context.Context, o Organization) (Change, error) {
	if o.ID == "" {
		return Change{}, fmt.Errorf("%w: no organization id", ErrInvalidOrganization)
	}
	return s.guardedWrite(ctx, "organization", o.ID, func(locked []string) (Change, error) {
		return s.upsertOrganization(ctx, o, locked)
	})
}

// upsertOrganization is one attempt of UpsertOrganization, holding the locks of the
// organizations in locked (o.ID among them). It returns errStale or needLock when the attempt
// must start over.
func (s *Store) upsertOrganization(ctx context.Context, o Organization, locked []string) (Change, error) {
	cur, found, err := s.currentOrganization(ctx, o.ID)
	switch {
	case err != nil:
		return Change{}, err
	case found && !cur.Deleted && cmpMillis(cur.RawUpdatedAt, o.UpdatedAt) == 0:
		return alreadyStored(cur.raw, o.UpdatedAt), nil
	case found && (cur.Deleted || cmpMillis(cur.RawUpdatedAt, o.UpdatedAt) >= 0):
		return Change{Outcome: Skipped}, nil
	}
	slugs := []string{o.Slug}
	if o.Slug != "" {
		slugs = append(slugs, "") // the stale claim: without a slug
	}
	cleared := 0
	for i := 0; i < len(slugs); i++ {
		slug := slugs[i]
		set, unset := organizationFields(o, slug)
		set, change := recordChange(set, unset, cur.raw, found, o.UpdatedAt)
		out, err := s.docs.upsert(ctx, s.orgs, "organization", o.ID, o.UpdatedAt, set, unset, found)
		if err == nil {
			change.Outcome = out
			return change, nil
		}
		if !isDuplicate(err) {
			return Change{}, err
		}
		// A unique index refused the write: o.ID (another process inserted the organization,
		// or wrote a newer version) or the slug. Tell them apart.
		if now, nowFound, err := s.currentOrganization(ctx, o.ID); err != nil {
			return Change{}, err
		} else if nowFound != found || (found && (now.Deleted || now.UpdatedAt != cur.UpdatedAt || now.Slug != cur.Slug)) {
			return Change{}, errStale
		}
		if slug == "" {
			return Change{}, errStale
		}
		holder, err := s.readOrganization(ctx, bson.D{{Key: fieldSlug, Value: slug}}, "slug "+slug)
		switch {
		case errors.Is(err, ErrNotFound) || (err == nil && holder.ID == o.ID):
			return Change{}, errStale // freed, or ours, since the write: try again
		case err != nil:
			return Change{}, err
		}
		if !supersedes(o.UpdatedAt, o.CreatedAt, o.ID, holder.UpdatedAt, holder.CreatedAt, holder.ID) {
			continue // o's claim is the stale one: without a slug
		}
		if !slices.Contains(locked, holder.ID) {
			return Change{}, needLock{holder.ID}
		}
		if cleared++; cleared > 3 {
			return Change{}, errStale
		}
		if err := s.clearSlug(ctx, o, holder.ID, slug); err != nil {
			return Change{}, err
		}
		i-- // the slug again, now free
	}
	return Change{}, errStale // unreachable: the last candidate ("") cannot collide on a slug
}

// clearSlug removes the slug from the organization holderID, which holds slug with a record
// older than o. The caller holds both organizations' locks. It returns errStale when the holder
// changed since it was found.
func (s *Store) clearSlug(ctx context.Context, o Organization, holderID, slug string) error {
	h, found, err := s.currentOrganization(ctx, holderID)
	switch {
	case err != nil:
		return err
	case !found || h.Deleted || h.Slug != slug || !supersedes(o.UpdatedAt, o.CreatedAt, o.ID, h.UpdatedAt, h.CreatedAt, h.ID):
		return errStale
	}
	return s.docs.unsetHeld(ctx, s.orgs, "organization", held{id: h.ID, key: fieldSlug, value: slug, rawUpdatedAt: h.RawUpdatedAt})
}

// DeleteOrganization replaces the organization with the given id by a tombstone deleted at
// deletedAt (Unix milliseconds): _id, deleted, deleted_at and updated_at (the later of the
// deletion time and the stored updated_at) alone, so the slug is free for others. No later
// UpsertOrganization can bring it back. An organization the collection never saw gets a
// tombstone too, so that a create arriving after its delete is ignored.
//
// Then it tombstones every live membership of the organization (deleted at the organization's
// deletion time), after the organization's tombstone is written: docs/design.md says why that
// order leaves no live membership of a deleted organization, whatever runs at the same time. A
// replay does it again, so a delete whose cascade failed half-way completes when
// retried.
//
// It returns Deleted, or AlreadyDeleted for a replay (the first deletion time is kept). It
// returns ErrInvalidOrganization when id is empty and an error wrapping ErrDatabase when the
// database fails.
func (s *Store) DeleteOrganization(ctx context.Context, id string, deletedAt int64) (Outcome, error) {
	c, err := s.DeleteOrganizationChange(ctx, id, deletedAt)
	return c.Outcome, err
}

// DeleteOrganizationChange is DeleteOrganization, telling the tombstone's deleted_at too
// (Change.At: the first deletion's, for AlreadyDeleted). Its errors are DeleteOrganization's.
func (s *Store) DeleteOrganizationChange(ctx context.Context, id string, deletedAt int64) (Change, error) {
	if id == "" {
		return Change{}, fmt.Errorf("%w: no organization id", ErrInvalidOrganization)
	}
	out, at, err := s.deleteDoc(ctx, s.orgs, "organization", id, deletedAt)
	if err != nil {
		return Change{}, err
	}
	if err := s.endMemberships(ctx, fieldOrgID, id, at); err != nil {
		return Change{}, err
	}
	return Change{Outcome: out, At: at, Fields: []string{}}, nil
}

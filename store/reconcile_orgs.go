package store

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The organizations' reconciliation pass's reads (reconcile.RunOrganizations): counts and
// pages bounded in memory, so that its steps keep counts and cursors (as the users' pass
// does).

// CountLiveOrganizations returns how many live organizations (with a string _id) the
// collection holds. On FerretDB v1 it scans the collection. It returns an error wrapping
// ErrDatabase when the read fails.
func (s *Store) CountLiveOrganizations(ctx context.Context) (int, error) {
	n := 0
	if err := eachID(ctx, s.orgs, bson.D{notDeleted()}, func(string) { n++ }); err != nil {
		return 0, dbErr("count", "live organizations", err)
	}
	return n, nil
}

// CountLiveOrganizationsAmong returns how many of ids are live organizations, reading each by
// _id (a lookup FerretDB v1 pushes down). It returns an error wrapping ErrDatabase when a read
// fails.
func (s *Store) CountLiveOrganizationsAmong(ctx context.Context, ids []string) (int, error) {
	n := 0
	opts := options.FindOne().SetProjection(bson.D{{Key: fieldDeleted, Value: 1}})
	for _, id := range ids {
		raw, err := s.orgs.FindOne(ctx, idIs(id), opts).Raw()
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			continue
		case err != nil:
			return 0, dbErr("read", id, err)
		}
		if d, _ := raw.Lookup(fieldDeleted).BooleanOK(); !d {
			n++
		}
	}
	return n, nil
}

// LiveOrganizationIDsAfter returns the ids of the first limit live organizations (ascending)
// whose id comes after after ("" for the first ones), holding no more than limit ids at a
// time; on FerretDB v1 each call scans the collection once. It returns an error wrapping
// ErrDatabase when the read fails.
func (s *Store) LiveOrganizationIDsAfter(ctx context.Context, after string, limit int) ([]string, error) {
	filter := bson.D{{Key: fieldID, Value: bson.D{{Key: "$gt", Value: after}}}, notDeleted()}
	ids, err := smallestIDs(ctx, s.orgs, filter, limit)
	if err != nil {
		return nil, dbErr("list", "live organizations", err)
	}
	return ids, nil
}

// CountLiveMemberships returns how many live memberships (with a string _id) the collection
// holds, reading ids only. On FerretDB v1 it scans the collection. It returns an error
// wrapping ErrDatabase when the read fails.
func (s *Store) CountLiveMemberships(ctx context.Context) (int, error) {
	n := 0
	if err := eachID(ctx, s.members, bson.D{notDeleted()}, func(string) { n++ }); err != nil {
		return 0, dbErr("count", "live memberships", err)
	}
	return n, nil
}

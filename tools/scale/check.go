package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"clerksync/store"
)

// derived returns the username the service derives for u when it has no Clerk username: the
// email's local part, or "user_" and the end of the id for a user without an email.
func (u *modelUser) derived() string {
	if u.base != "" {
		return u.base
	}
	tail := strings.TrimPrefix(u.id, "user_")
	if len(tail) > 12 {
		tail = tail[len(tail)-12:]
	}
	return "user_" + strings.ToLower(tail)
}

// compare returns what differs between the model and the users read (by id), given the
// number of documents in the collection: one line per problem, empty when they are equal.
// A live user must have its newest version (updated_at, name, email, picture, created_at),
// hold its Clerk username, or a username derived from its email (the local part, then digits
// when taken); a deleted user must be a tombstone (deleted, deleted_at, no personal data);
// no username may be held by two live users; nothing may be missing or extra.
func compare(model []*modelUser, got map[string]store.User, count int64) []string {
	var problems []string
	owner := map[string]string{}
	want := map[string]bool{}
	for _, m := range model {
		want[m.id] = true
		u, ok := got[m.id]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: missing (want %s)", m.id, m.describe()))
			continue
		}
		if m.deleted {
			if !u.Deleted || u.DeletedAt != m.deletedAt || u.Email != nil || u.FullName != "" || u.Username != "" || u.ProfilePicture != "" || u.ClerkUsername != "" {
				problems = append(problems, fmt.Sprintf("%s: got %s; want a tombstone deleted at %d", m.id, describe(u), m.deletedAt))
			}
			continue
		}
		var wrong []string
		if u.Deleted {
			wrong = append(wrong, "deleted")
		}
		if u.UpdatedAt != m.updatedAt {
			wrong = append(wrong, fmt.Sprintf("updated_at %d, want %d", u.UpdatedAt, m.updatedAt))
		}
		if u.FullName != m.fullName {
			wrong = append(wrong, fmt.Sprintf("full_name %q, want %q", u.FullName, m.fullName))
		}
		if str(u.Email) != str(m.email) {
			wrong = append(wrong, fmt.Sprintf("email %s, want %s", str(u.Email), str(m.email)))
		}
		if u.ProfilePicture != m.picture {
			wrong = append(wrong, fmt.Sprintf("profile_picture %q, want %q", u.ProfilePicture, m.picture))
		}
		if u.CreatedAt != m.createdAt {
			wrong = append(wrong, fmt.Sprintf("created_at %d, want %d", u.CreatedAt, m.createdAt))
		}
		if m.handle != "" {
			if u.Username != m.handle || u.ClerkUsername != m.handle {
				wrong = append(wrong, fmt.Sprintf("username %q (Clerk username %q), want Clerk's %q", u.Username, u.ClerkUsername, m.handle))
			}
		} else {
			rest, ok := strings.CutPrefix(u.Username, m.derived())
			if !ok || strings.Trim(rest, "0123456789") != "" || u.ClerkUsername != "" {
				wrong = append(wrong, fmt.Sprintf("username %q (Clerk username %q), want %q or it with digits, no Clerk username", u.Username, u.ClerkUsername, m.derived()))
			}
		}
		if len(wrong) > 0 {
			problems = append(problems, fmt.Sprintf("%s: %s", m.id, strings.Join(wrong, "; ")))
		}
		if !u.Deleted && u.Username != "" {
			if other, dup := owner[u.Username]; dup {
				problems = append(problems, fmt.Sprintf("username %q held by two live users: %s and %s", u.Username, other, m.id))
			}
			owner[u.Username] = m.id
		}
	}
	var extra []string
	for id := range got {
		if !want[id] {
			extra = append(extra, id)
		}
	}
	sort.Strings(extra)
	for _, id := range extra {
		problems = append(problems, fmt.Sprintf("%s: extra document %s", id, describe(got[id])))
	}
	if count != int64(len(model)) {
		problems = append(problems, fmt.Sprintf("the collection holds %d documents; want %d (one per user, tombstones included)", count, len(model)))
	}
	return problems
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func (m *modelUser) describe() string {
	if m.deleted {
		return fmt.Sprintf("tombstone deleted at %d", m.deletedAt)
	}
	return fmt.Sprintf("live, updated_at %d, %q, %s, Clerk username %q", m.updatedAt, m.fullName, str(m.email), m.handle)
}

func describe(u store.User) string {
	if u.Deleted {
		return fmt.Sprintf("{deleted, deleted_at %d, updated_at %d, email %s, name %q, username %q}", u.DeletedAt, u.UpdatedAt, str(u.Email), u.FullName, u.Username)
	}
	return fmt.Sprintf("{live, updated_at %d, name %q, email %s, username %q, Clerk username %q}", u.UpdatedAt, u.FullName, str(u.Email), u.Username, u.ClerkUsername)
}

// snapshotReader reads the whole users collection in one query, for polling while the
// functions run (reading user by user through the store would load the database being
// measured). The fields are the documented ones (README, The users collection).
type snapshotReader struct {
	client *mongo.Client
	coll   *mongo.Collection
}

func newSnapshotReader(uri, database string) (*snapshotReader, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetAppName("scale-test"))
	if err != nil {
		return nil, err
	}
	return &snapshotReader{client: client, coll: client.Database(database).Collection(store.Collection)}, nil
}

func (r *snapshotReader) close() { _ = r.client.Disconnect(context.Background()) }

type userDoc struct {
	ID             string  `bson:"_id"`
	Email          *string `bson:"email"`
	FullName       string  `bson:"full_name"`
	ProfilePicture string  `bson:"profile_picture"`
	Username       string  `bson:"username"`
	ClerkUsername  string  `bson:"clerk_username"`
	CreatedAt      int64   `bson:"created_at"`
	UpdatedAt      int64   `bson:"updated_at"`
	Deleted        bool    `bson:"deleted"`
	DeletedAt      int64   `bson:"deleted_at"`
}

// read returns every document as a store.User, the number of documents, and a hash of the
// whole (to tell whether the collection changed since the last read).
func (r *snapshotReader) read(ctx context.Context) (map[string]store.User, int64, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cur, err := r.coll.Find(ctx, bson.D{})
	if err != nil {
		return nil, 0, 0, err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	got := map[string]store.User{}
	h := fnv.New64a()
	var n int64
	for cur.Next(ctx) {
		n++
		_, _ = h.Write(cur.Current)
		var d userDoc
		if err := cur.Decode(&d); err != nil {
			return nil, 0, 0, fmt.Errorf("decode %s: %w", cur.Current, err)
		}
		got[d.ID] = store.User{ID: d.ID, Email: d.Email, FullName: d.FullName, ProfilePicture: d.ProfilePicture, Username: d.Username,
			ClerkUsername: d.ClerkUsername, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, Deleted: d.Deleted, DeletedAt: d.DeletedAt}
	}
	if err := cur.Err(); err != nil {
		return nil, 0, 0, err
	}
	return got, n, h.Sum64(), nil
}

// readThroughStore reads every model user with store.Get, and the collection's size with
// store.Count: the final check, through the service's own reader.
func readThroughStore(ctx context.Context, uri, database string, model []*modelUser) (map[string]store.User, int64, error) {
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	st, err := store.Open(openCtx, uri, database)
	cancel()
	if err != nil {
		return nil, 0, err
	}
	defer st.Close(context.Background())
	got := map[string]store.User{}
	for _, m := range model {
		u, err := st.Get(ctx, m.id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			return nil, 0, fmt.Errorf("get %s: %w", m.id, err)
		}
		got[m.id] = u
	}
	n, err := st.Count(ctx)
	if err != nil {
		return nil, 0, err
	}
	return got, n, nil
}

// Package storetest gives a test package one embedded FerretDB server, and each test a fresh
// database on it, so that tests run against the real wire protocol without a MongoDB; and
// documents an application sharing the users collection might hold (InsertForeignUser).
package storetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"clerksync/store"
	"clerksync/store/embedded"
)

// Server is the embedded FerretDB of one test package.
type Server struct {
	emb *embedded.Server
	n   atomic.Int64
	// names holds the database name of each store Open returned.
	names sync.Map // *store.Store -> string
}

// Main starts the server into *srv, runs the package's tests, stops the server and returns
// the tests' exit code (1, with the reason on stderr, when the server cannot start). Use it
// as: func TestMain(m *testing.M) { os.Exit(storetest.Main(m, &srv)) }.
func Main(m *testing.M, srv **Server) int {
	dir, err := os.MkdirTemp("", "storetest-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	e, err := embedded.Start(context.Background(), dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer e.Stop()
	*srv = &Server{emb: e}
	return m.Run()
}

// URI returns the server's connection string (without a database).
func (s *Server) URI() string { return s.emb.URI() }

// Open opens a new database on the server for one test, in the given write mode, as the
// service opens its embedded database (embedded.Server.Open, with the _id lookup index), and
// closes it when the test ends. It fails the test when the database cannot be opened or
// indexed.
func (s *Server) Open(t testing.TB, mode store.WriteMode) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := fmt.Sprintf("t%d", s.n.Add(1))
	st, err := s.emb.Open(ctx, name, mode)
	if err != nil {
		t.Fatalf("embedded.Server.Open(%s) = %v", name, err)
	}
	s.names.Store(st, name)
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

// Reopen opens another store, with connections of its own, on the database of st (a store
// Open returned), in the given write mode: another replica of the service sharing the
// database. It closes it when the test ends, and fails the test when it cannot be opened.
func (s *Server) Reopen(t testing.TB, st *store.Store, mode store.WriteMode) *store.Store {
	t.Helper()
	name, ok := s.names.Load(st)
	if !ok {
		t.Fatal("Reopen: the store was not opened by this Server's Open")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	other, err := s.emb.Open(ctx, name.(string), mode)
	if err != nil {
		t.Fatalf("embedded.Server.Open(%s) again = %v", name, err)
	}
	s.names.Store(other, name)
	t.Cleanup(func() { _ = other.Close(context.Background()) })
	return other
}

// InsertForeignUser inserts into the users collection of st (a store Open returned) a document
// whose _id is an ObjectId, holding username and nothing else: an application's own document
// in a collection it shares with the service. It lets a test outside package store make one
// without the driver. It fails the test when the document cannot be inserted.
func (s *Server) InsertForeignUser(t testing.TB, st *store.Store, username string) {
	t.Helper()
	name, ok := s.names.Load(st)
	if !ok {
		t.Fatal("InsertForeignUser: the store was not opened by this Server's Open")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(s.URI()))
	if err != nil {
		t.Fatalf("connect to %s: %v", s.URI(), err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	doc := bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "username", Value: username}}
	if _, err := client.Database(name.(string)).Collection(store.Collection).InsertOne(ctx, doc); err != nil {
		t.Fatalf("insert %v into %s.%s: %v", doc, name, store.Collection, err)
	}
}

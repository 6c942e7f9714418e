// Package storetest gives a test package one embedded FerretDB server, and each test a fresh
// database on it, so that tests run against the real wire protocol without a MongoDB.
package storetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"clerksync/store"
)

// Server is the embedded FerretDB of one test package.
type Server struct {
	emb *store.Embedded
	n   atomic.Int64
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
	e, err := store.StartEmbedded(context.Background(), dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
// service opens its embedded database (Embedded.Open, with the _id lookup index), and closes it
// when the test ends. It fails the test when the database cannot be opened or indexed.
func (s *Server) Open(t testing.TB, mode store.WriteMode) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := fmt.Sprintf("t%d", s.n.Add(1))
	st, err := s.emb.Open(ctx, name, mode)
	if err != nil {
		t.Fatalf("Embedded.Open(%s) = %v", name, err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

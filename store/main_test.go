package store_test

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

// embeddedURI is the connection string of the FerretDB server that TestMain starts for the
// package's tests. Every test opens its own database on it.
var embeddedURI string

var dbCounter atomic.Int64

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "store-test-*")
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
	embeddedURI = e.URI()
	return m.Run()
}

// modes are the store's two write modes; the tests run against both. (On FerretDB, Auto picks
// ByID; Conditional is what MongoDB gets.)
var modes = []struct {
	name string
	mode store.WriteMode
}{{"conditional", store.WritesConditional}, {"by-id", store.WritesByID}}

// openStore opens a fresh database on the embedded server for one test.
func openStore(t testing.TB) *store.Store {
	return openStoreMode(t, store.WritesAuto)
}

// openStoreMode is openStore with an explicit write mode.
func openStoreMode(t testing.TB, mode store.WriteMode) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := fmt.Sprintf("t%d", dbCounter.Add(1))
	s, err := store.OpenWith(ctx, embeddedURI, name, mode)
	if err != nil {
		t.Fatalf("store.Open(%s) = %v", name, err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

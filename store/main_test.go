package store_test

import (
	"os"
	"testing"

	"clerksync/store"
	"clerksync/store/storetest"
)

// srv is the embedded FerretDB of this package's tests. Each test opens databases of its own
// on it (openStore), so the tests run in parallel (t.Parallel).
var srv *storetest.Server

func TestMain(m *testing.M) { os.Exit(storetest.Main(m, &srv)) }

// modes are the store's two write modes; the tests run against both. (On FerretDB, Auto picks
// ByID; Conditional is what MongoDB gets.)
var modes = []struct {
	name string
	mode store.WriteMode
}{{"conditional", store.WritesConditional}, {"by-id", store.WritesByID}}

// openStore opens a fresh database for one test.
func openStore(t testing.TB) *store.Store { return srv.Open(t, store.WritesAuto) }

// openStoreMode is openStore with an explicit write mode.
func openStoreMode(t testing.TB, mode store.WriteMode) *store.Store { return srv.Open(t, mode) }

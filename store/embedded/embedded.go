// Package embedded runs FerretDB (v1, with its SQLite backend) inside the process, as the
// service's database when no MONGODB_URI is set, and opens a store on it with what FerretDB
// needs besides (the _id lookup index). It is apart from package store so that what imports
// store alone (webhook, clerk, functions) links neither FerretDB nor SQLite.
package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite" // the SQLite driver FerretDB itself uses, for IndexIDs

	"clerksync/store"
)

// LockFile is the file in the data directory whose lock Start holds while the server
// runs, so that a second process cannot open the same SQLite files.
const LockFile = "clerk-user-sync.lock"

// ErrDataDirInUse means another process (or another Server of this one) runs the embedded
// database on the same data directory: two servers on the same SQLite files would each cache
// and write them on their own, so the second is refused.
var ErrDataDirInUse = errors.New("embedded database: the data directory is in use by another process")

// inUse returns the error of a data directory that another process holds: wrapping
// ErrDataDirInUse, naming dir and, when known, the process id of its holder.
func inUse(dir, holder string) error {
	who := "another process"
	if holder != "" {
		who = "process " + holder
	}
	return fmt.Errorf("%w: %s holds %s (its lock file %s); only one process at a time may run the embedded database on it: stop that one first",
		ErrDataDirInUse, who, dir, LockFile)
}

// Server is a FerretDB server running inside this process, storing its data in SQLite files
// under a directory. It speaks the MongoDB wire protocol on a loopback port; its Open opens the
// store on it with what FerretDB needs besides (the _id lookup index).
type Server struct {
	dir    string
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
}

// Start starts FerretDB with its SQLite backend on 127.0.0.1 at a free port, keeping
// its data under dir (created if missing). The server runs until Stop is called or ctx ends;
// for that long it holds an exclusive lock on dir (LockFile), released when the server has
// stopped or the process ends. logger receives FerretDB's own messages. It returns an error
// wrapping ErrDataDirInUse, at once, when another process holds dir; and an error when dir
// cannot be created or the server cannot start.
func Start(ctx context.Context, dir string, logger *slog.Logger) (*Server, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded database: data directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("embedded database: create data directory %q: %w (set DATA_DIR to a writable directory)", abs, err)
	}
	unlock, err := lockDir(abs)
	if err != nil {
		return nil, err
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + filepath.ToSlash(abs) + "/",
		Logger:    logger,
	})
	if err != nil {
		unlock()
		return nil, fmt.Errorf("embedded database: start FerretDB in %q: %w", abs, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	e := &Server{dir: abs, uri: f.MongoDBURI(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		defer unlock() // once FerretDB has closed its SQLite files
		_ = f.Run(ctx)
	}()
	return e, nil
}

// URI returns the mongodb:// connection string of the embedded server (without a database).
func (e *Server) URI() string { return e.uri }

// Stop shuts the server down and waits until it has closed its listener and its SQLite files
// and released its lock on the data directory.
func (e *Server) Stop() {
	e.cancel()
	<-e.done
}

// Open opens the store on the database named database of this server, in the given write
// mode (store.WritesAuto picks store.WritesByID here), and gives its collections the _id lookup index
// (IndexIDs), as it does to each collection of marks the store creates later
// (store.Store.SetOnNewCollection): everything the embedded database needs, in one call. It returns an error
// wrapping store.ErrDatabase when the server does not answer within ctx or refuses the
// collections' indexes, and an error naming the SQLite file (not wrapping it) when the
// _id lookup index cannot be made; the store is closed then.
func (e *Server) Open(ctx context.Context, database string, mode store.WriteMode) (*store.Store, error) {
	s, err := store.OpenWith(ctx, e.uri, database, mode)
	if err != nil {
		return nil, err
	}
	// store.OpenWith has created the users, organizations and memberships collections (with their
	// indexes): IndexIDs indexes every collection the database has, these three among them.
	if err := e.IndexIDs(ctx, database); err != nil {
		_ = s.Close(context.Background())
		return nil, err
	}
	// The marks of a reconciliation pass are collections the store creates as it goes: each
	// gets the index too, or every read of a mark by _id would scan the set.
	s.SetOnNewCollection(func(ctx context.Context) error { return e.IndexIDs(ctx, database) })
	return s, nil
}

// IndexIDs gives every collection of the embedded database named database the SQLite index
// that its lookups by _id can use. Open does it by itself; call IndexIDs only for a database
// that another process creates on this server through URI (the benchmarks' service and no-op
// app), once it has made its collections. It returns an error naming the database file when
// the index cannot be made; a database with no collections yet is left as it is.
//
// FerretDB v1.24 finds a document by _id with `WHERE _ferretdb_sjson->'$._id' = ?`, but it
// indexes _id on `_ferretdb_sjson->"_id"`, an expression SQLite does not treat as the same: so
// each find, update or delete by _id scans the whole table and parses every document, and a
// write costs O(users). The extra index (named <table>__id_lookup, unseen by FerretDB, dropped
// with its table) makes those lookups O(log users). It is idempotent and cheap when the
// indexes exist.
func (e *Server) IndexIDs(ctx context.Context, database string) error {
	file := filepath.Join(e.dir, database+".sqlite")
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := indexIDs(ctx, file); err != nil {
		return fmt.Errorf("embedded database: index _id in %s: %w", file, err)
	}
	return nil
}

// indexIDs adds the _id lookup index to each collection table of one FerretDB SQLite file.
func indexIDs(ctx context.Context, file string) error {
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(file)+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM _ferretdb_collections`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil // a database without collections yet
		}
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+"__id_lookup", t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

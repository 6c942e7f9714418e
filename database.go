package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"clerksync/store"
	"clerksync/store/embedded"
)

// dbConfig is the database every command writes to.
type dbConfig struct {
	// mongoURI is MongoDB's connection string; empty when embedded is set.
	mongoURI string
	// mongoHosts are the host(s) of mongoURI, without its credentials or options: what the
	// start-up log names.
	mongoHosts string
	// embedded runs FerretDB in-process under dataDir instead of connecting to MongoDB.
	embedded  bool
	database  string
	dataDir   string
	writeMode store.WriteMode
}

// databaseSettings are the database settings, for --help.
var databaseSettings = []setting{
	{name: "MONGODB_URI", def: "required unless INNGEST_DEV", help: "MongoDB connection string (mongodb:// or mongodb+srv://), or `embedded` for a FerretDB (SQLite) run in-process under DATA_DIR: one replica only, its data lives in DATA_DIR. Unset: embedded in dev mode; refused otherwise."},
	{name: "MONGODB_DATABASE", value: "app", help: "Database to use when MONGODB_URI names none in its path (a different name in both is refused)."},
	{name: "DATA_DIR", value: "./data", help: "Where the embedded database keeps its files (MONGODB_URI=embedded, or unset in dev mode); put it on a persistent volume. One process at a time (the service, backfill or forget-clerk-instance) holds it; a second is refused."},
	{name: "STORE_WRITE_MODE", value: "auto", help: "auto: atomic conditional writes on MongoDB, writes by _id under a per-process lock on FerretDB (whose conditional updates are neither atomic nor indexed). conditional: MongoDB's mode on any server (the tests use it to run MongoDB's write path on FerretDB)."},
}

// database reads MONGODB_URI, MONGODB_DATABASE, DATA_DIR and STORE_WRITE_MODE. MONGODB_URI
// `embedded` (or unset in dev mode) runs the embedded database; unset outside dev mode is
// refused, since an embedded database inside a container loses its data at the next restart
// and differs per replica. A database named in MONGODB_URI's path is the one used; a
// different MONGODB_DATABASE besides is refused, since one of the two would be ignored.
func (s *settings) database(devMode bool) dbConfig {
	d := dbConfig{
		mongoURI: s.get("MONGODB_URI"),
		dataDir:  s.get("DATA_DIR"),
		database: s.get("MONGODB_DATABASE"),
	}
	switch {
	case strings.EqualFold(d.mongoURI, "embedded"):
		d.mongoURI, d.embedded = "", true
	case d.mongoURI == "" && devMode:
		d.embedded = true
	case d.mongoURI == "":
		s.fail(errors.New("MONGODB_URI is not set: set it to your MongoDB connection string (mongodb://... or mongodb+srv://...), " +
			"or to `embedded` to run the embedded FerretDB under DATA_DIR on purpose (one replica only; keep DATA_DIR on a persistent volume)"))
	default:
		u, err := url.Parse(d.mongoURI)
		if err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") {
			s.fail(errors.New("MONGODB_URI must be a mongodb:// or mongodb+srv:// connection string, or `embedded` for the embedded database"))
		} else {
			d.mongoHosts = u.Host
			if name := strings.Trim(u.Path, "/"); name != "" {
				if set := s.value("MONGODB_DATABASE"); set != "" && set != name {
					s.fail(fmt.Errorf("MONGODB_URI names the database %q in its path and MONGODB_DATABASE=%q another: one of them would be ignored. "+
						"Drop one: unset MONGODB_DATABASE to use %q, or take /%s out of MONGODB_URI to use %q", name, set, name, name, set))
				}
				d.database = name
			}
		}
	}
	switch mode := strings.ToLower(s.get("STORE_WRITE_MODE")); mode {
	case "auto":
		d.writeMode = store.WritesAuto
	case "conditional":
		d.writeMode = store.WritesConditional
	default:
		s.fail(fmt.Errorf("STORE_WRITE_MODE=%q must be auto or conditional (or unset)", mode))
	}
	return d
}

// openDatabase opens the database of c: MongoDB at MONGODB_URI, or the embedded FerretDB
// under DATA_DIR when c chose it, logging which one it uses: DATA_DIR, or MongoDB's host(s)
// (never the credentials or options of MONGODB_URI), and the database's name. It returns the
// store with the function that closes it, or an error saying what to check when the database
// cannot be started or reached, or (at once) when another process runs the embedded database
// on DATA_DIR. The embedded database outlives ctx: it stops only when the returned function is
// called, so that a shutdown signal lets in-flight requests finish their writes.
func openDatabase(ctx context.Context, c dbConfig, logc logConfig, logger *slog.Logger, stderr io.Writer) (*store.Store, func(), error) {
	stopEmbedded := func() {}
	var db *store.Store
	var err error
	if c.embedded {
		var emb *embedded.Server
		emb, err = embedded.Start(context.WithoutCancel(ctx), c.dataDir, quietLogger(stderr, logc))
		if errors.Is(err, embedded.ErrDataDirInUse) {
			return nil, nil, fmt.Errorf("DATA_DIR=%s: %w. To run backfill or forget-clerk-instance on the embedded database of a running service, "+
				"stop the service, run the command with the service's settings and volume (docker compose run --rm <service> forget-clerk-instance), "+
				"then start the service again", c.dataDir, err)
		}
		if err != nil {
			return nil, nil, err
		}
		stopEmbedded = emb.Stop
		logger.Info("using the embedded FerretDB database (SQLite) in DATA_DIR; only one process may use it at a time",
			"data_dir", c.dataDir, "database", c.database)
		// Bounded by ctx alone, as the _id lookup index always was: the first start on an
		// existing collection builds it, however long that takes. (A local server that does not
		// answer still fails the open within the driver's 30 s server selection.)
		db, err = emb.Open(ctx, c.database, c.writeMode)
	} else {
		logger.Info("using MongoDB", "hosts", c.mongoHosts, "database", c.database)
		openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		db, err = store.OpenWith(openCtx, c.mongoURI, c.database, c.writeMode)
		cancel()
	}
	if err != nil {
		stopEmbedded()
		hint := "check that MongoDB is running and MONGODB_URI is right"
		if !errors.Is(err, store.ErrDatabase) { // not the server: the embedded _id lookup index
			hint = "check that DATA_DIR is writable"
		}
		return nil, nil, fmt.Errorf("%w; %s", err, hint)
	}
	return db, func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = db.Close(closeCtx)
		stopEmbedded()
	}, nil
}

package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Embedded is a FerretDB server running inside this process, storing its data in SQLite files
// under a directory. It speaks the MongoDB wire protocol on a loopback port, so Open connects
// to it exactly as it would to MongoDB.
type Embedded struct {
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
}

// StartEmbedded starts FerretDB with its SQLite backend on 127.0.0.1 at a free port, keeping
// its data under dir (created if missing). The server runs until Stop is called or ctx ends.
// logger receives FerretDB's own messages. It returns an error when dir cannot be created or
// the server cannot start.
func StartEmbedded(ctx context.Context, dir string, logger *slog.Logger) (*Embedded, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded database: data directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("embedded database: create data directory %q: %w (set DATA_DIR to a writable directory)", abs, err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + filepath.ToSlash(abs) + "/",
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded database: start FerretDB in %q: %w", abs, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	e := &Embedded{uri: f.MongoDBURI(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		_ = f.Run(ctx)
	}()
	return e, nil
}

// URI returns the mongodb:// connection string of the embedded server (without a database).
func (e *Embedded) URI() string { return e.uri }

// Stop shuts the server down and waits until it has closed its listener and its SQLite files.
func (e *Embedded) Stop() {
	e.cancel()
	<-e.done
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"clerksync/store"
)

// openDatabase opens the database of cfg: MongoDB at MONGODB_URI, or the embedded FerretDB
// under DATA_DIR when cfg chose it (logging embeddedNote). It returns the store with the
// function that closes it, or an error saying what to check when the database cannot be
// started or reached. The embedded database outlives ctx: it stops only when the returned
// function is called, so that a shutdown signal lets in-flight requests finish their writes.
func openDatabase(ctx context.Context, cfg config, logger *slog.Logger, stderr io.Writer, embeddedNote string) (*store.Store, func(), error) {
	stopEmbedded := func() {}
	var users *store.Store
	var err error
	if cfg.embedded {
		var emb *store.Embedded
		emb, err = store.StartEmbedded(context.WithoutCancel(ctx), cfg.dataDir, quietLogger(stderr, cfg))
		if err != nil {
			return nil, nil, err
		}
		stopEmbedded = emb.Stop
		logger.Info(embeddedNote, "data_dir", cfg.dataDir, "database", cfg.database)
		// Bounded by ctx alone, as the _id lookup index always was: the first start on an
		// existing collection builds it, however long that takes. (A local server that does not
		// answer still fails the open within the driver's 30 s server selection.)
		users, err = emb.Open(ctx, cfg.database, cfg.writeMode)
	} else {
		openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		users, err = store.OpenWith(openCtx, cfg.mongoURI, cfg.database, cfg.writeMode)
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
	return users, func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = users.Close(closeCtx)
		stopEmbedded()
	}, nil
}

package main

import (
	"context"
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
	uri := cfg.mongoURI
	stopEmbedded := func() {}
	var emb *store.Embedded
	if cfg.embedded {
		var err error
		emb, err = store.StartEmbedded(context.WithoutCancel(ctx), cfg.dataDir, quietLogger(stderr, cfg))
		if err != nil {
			return nil, nil, err
		}
		stopEmbedded = emb.Stop
		uri = emb.URI()
		logger.Info(embeddedNote, "data_dir", cfg.dataDir, "database", cfg.database)
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	users, err := store.OpenWith(openCtx, uri, cfg.database, cfg.writeMode)
	cancel()
	if err != nil {
		stopEmbedded()
		return nil, nil, fmt.Errorf("%w; check that MongoDB is running and MONGODB_URI is right", err)
	}
	if emb != nil {
		if err := emb.IndexIDs(ctx, cfg.database); err != nil {
			_ = users.Close(context.Background())
			stopEmbedded()
			return nil, nil, fmt.Errorf("%w; check that DATA_DIR is writable", err)
		}
	}
	return users, func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = users.Close(closeCtx)
		stopEmbedded()
	}, nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// runForgetInstance is `clerk-user-sync forget-clerk-instance`: it deletes the record of the
// Clerk instance the users collection follows (the sync_metadata collection), so that the
// next reconciliation or backfill records the instance of its key once its overlap check
// passes. It works on MONGODB_URI, or on the embedded database under DATA_DIR (which only this
// program can reach). It returns an error when given arguments, when the settings are wrong,
// or when the database cannot be opened or fails.
func runForgetInstance(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("forget-clerk-instance takes no arguments, got %q", strings.Join(args, " "))
	}
	cfg, err := readDatabaseConfig(getenv)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.log).With("command", "forget-clerk-instance")
	db, closeStore, err := openDatabase(ctx, cfg.db, cfg.log, logger, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	was, err := db.ForgetClerkInstance(ctx)
	if err != nil {
		return fmt.Errorf("forget the Clerk instance: %w", err)
	}
	if was == "" {
		fmt.Fprintf(stdout, "no Clerk instance was recorded for database %q; nothing to forget\n", cfg.db.database)
		return nil
	}
	fmt.Fprintf(stdout, "forgot Clerk instance %s for database %q: the next reconciliation or backfill records the instance of its CLERK_SECRET_KEY\n", was, cfg.db.database)
	return nil
}

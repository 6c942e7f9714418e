package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"clerksync/backfill"
	"clerksync/clerk"
	"clerksync/reconcile"
)

// runBackfill is `clerk-user-sync backfill`: it imports every Clerk user once, from the
// Backend API (CLERK_SECRET_KEY; then every organization and its memberships too) or from a
// user export CSV (--from-export FILE), through the same guarded upsert as the webhooks, into
// MONGODB_URI or the embedded database. It shows its progress on stdout (a bar on a terminal,
// plain lines otherwise) and ends with a summary. Running it twice, or rerunning it after an
// interruption, is safe: nothing is ever written over newer data or a tombstone. From the API
// it first refuses a key for another Clerk instance than the database follows, or one whose
// users or organizations are not the database's (reconcile.CheckImport), unless
// --allow-mass-delete lets this one run through that last check. args are the
// arguments after "backfill". It returns an error when the settings or arguments are wrong,
// the key is refused, the source cannot be read, or the database fails; the summary so far is
// printed first. With -h or --help it prints its usage and returns nil.
func runBackfill(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fromExport := fs.String("from-export", "", "import this Clerk user export CSV (Clerk Dashboard -> Settings -> User exports) instead of reading the Backend API")
	pageSize := fs.Int("page-size", clerk.MaxPageSize, "users (organizations, memberships) per Backend API request (1-500)")
	allowMassDelete := fs.Bool("allow-mass-delete", false, "for this backfill only: write although no Clerk instance is recorded yet and Clerk's list has fewer than half the database's live users (organizations); check CLERK_SECRET_KEY and MONGODB_URI first")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: clerk-user-sync backfill [-page-size N] [--allow-mass-delete] [--from-export FILE.csv]")
		fmt.Fprintln(stderr, "\nImports every Clerk user into the database once, through the same guarded upsert as the webhooks:")
		fmt.Fprintln(stderr, "safe to run twice, or to interrupt and run again. Reads the Backend API with CLERK_SECRET_KEY")
		fmt.Fprintln(stderr, "(then the organizations and their memberships too), or a user export CSV with --from-export.")
		fmt.Fprintln(stderr, "Never deletes anything (the scheduled reconciliation does).")
		fmt.Fprintln(stderr, "From the API, refuses a key for another Clerk instance than the database follows, and (until an")
		fmt.Fprintln(stderr, "instance is recorded) a list that shares too few users with the database unless --allow-mass-delete.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // the usage is printed: asked for, not a failure
		}
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("backfill takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	if *allowMassDelete && *fromExport != "" {
		return errors.New("--allow-mass-delete is for an import from the API: an import from an export checks nothing it could lift")
	}
	if *pageSize < 1 || *pageSize > clerk.MaxPageSize {
		return fmt.Errorf("-page-size %d: must be 1 to %d", *pageSize, clerk.MaxPageSize)
	}
	cfg, err := readDatabaseConfig(getenv)
	if err != nil {
		return err
	}
	if *fromExport == "" && cfg.clerk.secretKey == "" {
		return errors.New("CLERK_SECRET_KEY is not set: backfill reads the users from Clerk's Backend API with it (Clerk Dashboard -> API keys -> Secret keys), or pass --from-export FILE.csv")
	}
	logger := newLogger(stderr, cfg.log).With("command", "backfill")

	// Read the export before touching the database: a wrong file changes nothing.
	var rows []clerk.ExportRow
	source := "the Clerk Backend API (" + cfg.clerk.apiURL + ")"
	if *fromExport != "" {
		f, err := os.Open(*fromExport)
		if err != nil {
			return fmt.Errorf("--from-export: %w", err)
		}
		rows, err = clerk.ReadExport(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("--from-export %s: %w", *fromExport, err)
		}
		source = "the export " + filepath.Base(*fromExport)
	}

	db, closeStore, err := openDatabase(ctx, cfg.db, cfg.log, logger, stderr)
	if err != nil {
		return err
	}
	defer closeStore()

	var tally backfill.Tally
	prog := backfill.NewProgress(stdout, *pageSize)
	if *fromExport != "" {
		tally, err = backfill.FromExport(ctx, db, rows, prog, logger)
	} else {
		api := newClerkAPI(cfg.clerk, cfg.clerk.usersShare, logger) // the users' function's share
		// Before writing: refuse a key for another Clerk instance than the database follows.
		guard := reconcile.New(db, api, logger, reconcile.Config{PageSize: *pageSize, AllowMassDelete: *allowMassDelete})
		if _, err = guard.CheckImport(ctx); err == nil {
			tally, err = backfill.FromAPI(ctx, db, api, *pageSize, prog)
		}
	}
	prog.Finish(&tally)
	tally.WriteSummary(stdout, source, err == nil)
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("backfill interrupted after %s; run it again to finish (it is safe to rerun)", howFar(tally))
	case err != nil:
		return fmt.Errorf("backfill stopped after %s: %w; run it again once fixed (it is safe to rerun)", howFar(tally), err)
	}
	attrs := []any{"source", source, "created", tally.Created, "updated", tally.Updated, "unchanged", tally.Unchanged, "skipped", tally.SkippedTotal()}
	if tally.Organizations != nil && tally.Memberships != nil {
		attrs = append(attrs, "organizations", tally.Organizations.Total(), "memberships", tally.Memberships.Total())
	}
	logger.Info("backfill done", attrs...)
	return nil
}

// howFar says how far an import that stopped got: "5 users", or "5 users and 2 organizations"
// once it was importing the organizations.
func howFar(t backfill.Tally) string {
	if t.Organizations == nil {
		return fmt.Sprintf("%d users", t.Total())
	}
	return fmt.Sprintf("%d users and %d organizations", t.Total(), t.Organizations.Total())
}

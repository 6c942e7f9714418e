package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"clerksync/clerk"
	"clerksync/reconcile"
)

// runBackfill is `clerk-user-sync backfill`: it imports every Clerk user once, from the
// Backend API (CLERK_SECRET_KEY) or from a user export CSV (--from-export FILE), through the
// same guarded upsert as the webhooks, into MONGODB_URI or the embedded database. It shows its
// progress on stdout (a bar on a terminal, plain lines otherwise) and ends with a summary.
// Running it twice, or rerunning it after an interruption, is safe: a user is never written
// over newer data or a tombstone. From the API it first refuses a key for another Clerk
// instance than the database follows, or one whose users are not the database's
// (reconcile.CheckImport). args are the arguments after "backfill". It returns an error when
// the settings or arguments are wrong, the key is refused, the source cannot be read, or the
// database fails; the summary so far is printed first.
func runBackfill(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fromExport := fs.String("from-export", "", "import this Clerk user export CSV (Clerk Dashboard -> Settings -> User exports) instead of reading the Backend API")
	pageSize := fs.Int("page-size", clerk.MaxPageSize, "users per Backend API request (1-500)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: clerk-user-sync backfill [-page-size N] [--from-export FILE.csv]")
		fmt.Fprintln(stderr, "\nImports every Clerk user into the database once, through the same guarded upsert as the webhooks:")
		fmt.Fprintln(stderr, "safe to run twice, or to interrupt and run again. Reads the Backend API with CLERK_SECRET_KEY,")
		fmt.Fprintln(stderr, "or a user export CSV with --from-export. Never deletes users (the scheduled reconciliation does).")
		fmt.Fprintln(stderr, "From the API, refuses a key for another Clerk instance than the database follows.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("backfill takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	if *pageSize < 1 || *pageSize > clerk.MaxPageSize {
		return fmt.Errorf("-page-size %d: must be 1 to %d", *pageSize, clerk.MaxPageSize)
	}
	cfg, err := loadBackfillConfig(getenv, *fromExport == "")
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg).With("command", "backfill")

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

	users, closeStore, err := openDatabase(ctx, cfg, logger, stderr, "backfilling the embedded FerretDB database; stop the service first, so that only one process uses DATA_DIR")
	if err != nil {
		return err
	}
	defer closeStore()

	var tally reconcile.Tally
	prog := newProgress(stdout, *pageSize)
	if *fromExport != "" {
		err = backfillExport(ctx, users, rows, &tally, prog, logger)
	} else {
		api := newClerkAPI(cfg.clerk, logger)
		// Before writing: refuse a key for another Clerk instance than the database follows.
		guard := reconcile.New(users, api, logger, reconcile.Config{PageSize: *pageSize, AllowMassDelete: cfg.clerk.allowMassDelete})
		if _, err = guard.CheckImport(ctx); err == nil {
			err = backfillAPI(ctx, users, api, *pageSize, &tally, prog)
		}
	}
	prog.finish(&tally)
	printSummary(stdout, source, &tally, err == nil)
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("backfill interrupted after %d users; run it again to finish (it is safe to rerun)", tally.Total())
	case err != nil:
		return fmt.Errorf("backfill stopped after %d users: %w; run it again once fixed (it is safe to rerun)", tally.Total(), err)
	}
	logger.Info("backfill done", "source", source, "created", tally.Created, "updated", tally.Updated,
		"unchanged", tally.Unchanged, "skipped", tally.SkippedTotal())
	return nil
}

// backfillAPI pages through Clerk's users, pageSize at a time, importing each. It returns the
// first error of Clerk, the network or the database.
func backfillAPI(ctx context.Context, users reconcile.ImportStore, api *clerk.API, pageSize int, tally *reconcile.Tally, prog *progress) error {
	for offset := 0; ; offset += pageSize {
		page, err := api.ListUsers(ctx, pageSize, offset)
		if err != nil {
			return err
		}
		prog.total = max(int(page.Total), tally.Total()+len(page.Users))
		for _, u := range page.Users {
			if err := reconcile.Import(ctx, users, u, tally); err != nil {
				return err
			}
			prog.update(tally)
		}
		if len(page.Users) < pageSize {
			return nil
		}
	}
}

// backfillExport imports the rows of an export, keeping the stored values of what the export
// lacks (the picture; created_at when a row has none); a row that cannot be imported is logged
// with its line and counted as skipped. It returns the first database error.
func backfillExport(ctx context.Context, users reconcile.ImportStore, rows []clerk.ExportRow, tally *reconcile.Tally, prog *progress, logger *slog.Logger) error {
	prog.total = len(rows)
	for _, row := range rows {
		if row.Err != nil {
			logger.Warn("export row skipped", "line", row.Line, "user_id", row.User.ID, "reason", row.Err)
			tally.Skip(reconcile.SkipInvalid)
		} else if err := reconcile.ImportRow(ctx, users, row, tally); err != nil {
			return err
		}
		prog.update(tally)
	}
	return nil
}

// loadBackfillConfig reads the settings backfill uses: the database's, the logs' and Clerk's
// (CLERK_SECRET_KEY required when needKey). It returns one error listing every missing or
// malformed setting.
func loadBackfillConfig(getenv func(string) string, needKey bool) (config, error) {
	get := envGetter(getenv)
	cfg := config{
		mongoURI:  get("MONGODB_URI", ""),
		dataDir:   get("DATA_DIR", "./data"),
		logFormat: get("LOG_FORMAT", "text"),
	}
	var errs []error
	errs = append(errs, loadStoreAndClerkSettings(getenv, &cfg)...)
	errs = append(errs, checkDatabaseChoice(&cfg, devModeSet(get))...)
	if needKey && cfg.clerk.secretKey == "" {
		errs = append(errs, errors.New("CLERK_SECRET_KEY is not set: backfill reads the users from Clerk's Backend API with it (Clerk Dashboard -> API keys -> Secret keys), or pass --from-export FILE.csv"))
	}
	errs = append(errs, loadLogSettings(get, &cfg)...)
	if len(errs) > 0 {
		return config{}, fmt.Errorf("configuration: %w", errors.Join(errs...))
	}
	return cfg, nil
}

// progress shows how far a backfill is: a bar redrawn in place when stdout is a terminal,
// otherwise a plain line every `every` users.
type progress struct {
	w     io.Writer
	tty   bool
	every int
	// total is how many users there are, when known (0: unknown).
	total   int
	drawn   time.Time
	printed int
}

func newProgress(w io.Writer, every int) *progress {
	return &progress{w: w, tty: isTerminal(w), every: max(every, 1)}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// update shows the counts after one more user.
func (p *progress) update(t *reconcile.Tally) {
	n := t.Total()
	if p.tty {
		if time.Since(p.drawn) >= 100*time.Millisecond || n == p.total {
			p.drawn = time.Now()
			fmt.Fprintf(p.w, "\r%s\x1b[K", p.line(t))
		}
		return
	}
	if n-p.printed >= p.every {
		p.printed = n
		fmt.Fprintln(p.w, "backfill: "+p.line(t))
	}
}

// finish shows the final counts and ends the bar's line.
func (p *progress) finish(t *reconcile.Tally) {
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K\n", p.line(t))
		return
	}
	if t.Total() != p.printed {
		p.printed = t.Total()
		fmt.Fprintln(p.w, "backfill: "+p.line(t))
	}
}

// line is the progress as one line: a bar on a terminal when the total is known, then the
// counts.
func (p *progress) line(t *reconcile.Tally) string {
	n := t.Total()
	counts := fmt.Sprintf("created %d, updated %d, unchanged %d, skipped %d", t.Created, t.Updated, t.Unchanged, t.SkippedTotal())
	if p.total <= 0 {
		return fmt.Sprintf("%d users: %s", n, counts)
	}
	s := fmt.Sprintf("%d/%d users: %s", n, p.total, counts)
	if !p.tty {
		return s
	}
	const width = 30
	done := min(width, n*width/p.total)
	return "[" + strings.Repeat("#", done) + strings.Repeat("-", width-done) + "] " + s
}

// printSummary writes what the backfill did, with the reasons users were skipped.
func printSummary(w io.Writer, source string, t *reconcile.Tally, complete bool) {
	status := "backfill done"
	if !complete {
		status = "backfill stopped early"
	}
	fmt.Fprintf(w, "%s: %d users from %s\n", status, t.Total(), source)
	fmt.Fprintf(w, "  created    %7d\n", t.Created)
	fmt.Fprintf(w, "  updated    %7d\n", t.Updated)
	fmt.Fprintf(w, "  unchanged  %7d  (the database had this version or a newer one)\n", t.Unchanged)
	fmt.Fprintf(w, "  skipped    %7d\n", t.SkippedTotal())
	for _, r := range t.Reasons() {
		fmt.Fprintf(w, "    %7d  %s\n", t.Skipped[r], r)
	}
}

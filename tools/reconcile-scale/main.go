// Command reconcile-scale measures reconciliation and backfill against a large Clerk instance
// (issue 23; docs/reconciliation.md, "At scale: measured"). For each size it serves that many
// generated users from clerk/clerkfake (computed, not stored), with Clerk's rate limit and page
// size enforced, optionally pre-loads a share of them into the database (embedded FerretDB, or
// -mongodb-uri), starts the service's binary and the real Inngest dev server (serve mode, with
// ports of its own, its Connect gRPC ports too: stack.go, inngest.go), requests one
// reconciliation (`clerk-user-sync reconcile`) and follows the pass of
// reconcile-users-with-clerk across its runs to its end; then it runs `clerk-user-sync
// backfill` into a fresh database. With -changed K, it also measures an incremental run with
// K users changed among all of them pre-loaded, through the service and the dev server too
// (`clerk-user-sync reconcile --incremental`; incremental.go; -reconcile=false -backfill=false
// for that alone). With -org-members M, it measures once the organizations' pass over one
// organization of M members, computed by the stand-in (organization.go; -preload is then the
// share of its memberships stored before). It prints, per measurement: wall time (from the
// request to the pass's last run's end), Clerk requests and 429s, the pass's runs and steps,
// its largest step output and largest memoized state, the service's peak RSS, what the
// database holds after, and the outcome.
//
// Build the binaries first (make reconcile-scale does):
//
//	go build -o .bin/clerk-user-sync . && go build -o .bin/reconcile-scale ./tools/reconcile-scale
//	.bin/reconcile-scale -inngest "$(tools/inngest/build.sh)" -users 10000,100000
//	.bin/reconcile-scale -inngest .bin/inngest -users 1000000 -changed 1000 -reconcile=false -backfill=false
//	.bin/reconcile-scale -inngest .bin/inngest -users 1 -reconcile=false -backfill=false -org-members 50000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/store"
	"clerksync/store/embedded"
	"clerksync/tools/internal/proc"
)

// options are the command's flags.
type options struct {
	sizes      []int
	preload    float64
	stale      int
	rate       int
	window     time.Duration
	inngestBin string
	serviceBin string
	mongoURI   string
	timeout    time.Duration
	stall      time.Duration
	reconcile  bool
	backfill   bool
	changed    int
	orgMembers int
	dir        string
}

// secretKey is the Clerk secret key the fake accepts and the service is given.
const secretKey = "sk_test_reconcile_scale"

// appID is the service's Inngest app id.
const appID = "clerk-user-sync"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "reconcile-scale:", err)
		os.Exit(1)
	}
}

func run() error {
	var o options
	sizes := flag.String("users", "10000,100000", "comma-separated sizes: generated Clerk users per measurement")
	flag.Float64Var(&o.preload, "preload", 0, "share (0 to 1) of the users written to the database before the reconciliation (0: a first import); for -org-members, of the organization's memberships")
	flag.IntVar(&o.stale, "stale", 0, "users stored in the database besides the pre-loaded ones that Clerk no longer has (deletion candidates: past RECONCILE_MAX_DELETE_SHARE of the live users, the run deletes none)")
	flag.IntVar(&o.rate, "rate", clerkfake.ProductionRate, "Clerk rate limit: requests per -rate-window (1000: a production instance, 100: a development one; 0: none)")
	flag.DurationVar(&o.window, "rate-window", clerkfake.RateWindow, "the rate limit's window")
	flag.StringVar(&o.inngestBin, "inngest", ".bin/inngest", "the Inngest dev server binary (tools/inngest/build.sh prints its path)")
	flag.StringVar(&o.serviceBin, "service", ".bin/clerk-user-sync", "the service binary (go build -o .bin/clerk-user-sync .)")
	flag.StringVar(&o.mongoURI, "mongodb-uri", os.Getenv("MONGODB_URI"), "MongoDB server (without a database) to measure on; empty: an embedded FerretDB")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "longest one reconciliation run or backfill may take before it is stopped")
	flag.DurationVar(&o.stall, "stall", 3*time.Minute, "stop a run that has made no Clerk request for this long (a stuck run)")
	flag.BoolVar(&o.reconcile, "reconcile", true, "measure a reconciliation run")
	flag.BoolVar(&o.backfill, "backfill", true, "measure a backfill")
	flag.IntVar(&o.changed, "changed", 0, "measure an incremental reconciliation run (clerk-user-sync reconcile --incremental) with this many users changed in Clerk since the watermark, all users pre-loaded (0: none)")
	flag.IntVar(&o.orgMembers, "org-members", 0, "measure the organizations' pass over one organization with this many members (once, after the sizes of -users; -preload: the share of its memberships stored before; 0: none)")
	flag.StringVar(&o.dir, "dir", "", "working directory for logs and the embedded database (default: a new temporary one, removed after)")
	flag.Parse()
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(s, "_", "")))
		if err != nil || n < 1 {
			return fmt.Errorf("-users %q: want positive integers", *sizes)
		}
		o.sizes = append(o.sizes, n)
	}
	if o.changed < 0 {
		return fmt.Errorf("-changed %d: want 0 or more", o.changed)
	}
	if o.orgMembers < 0 {
		return fmt.Errorf("-org-members %d: want 0 or more", o.orgMembers)
	}
	if o.preload < 0 || o.preload > 1 {
		return fmt.Errorf("-preload %v: want 0 to 1", o.preload)
	}
	if o.stale < 0 {
		return fmt.Errorf("-stale %d: want 0 or more", o.stale)
	}
	bins := []*string{&o.serviceBin}
	if o.reconcile || o.changed > 0 || o.orgMembers > 0 {
		bins = append(bins, &o.inngestBin)
	}
	for _, bin := range bins {
		abs, err := filepath.Abs(*bin)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("%s: %w (make reconcile-scale builds it)", *bin, err)
		}
		*bin = abs
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "reconcile-scale-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fake := clerkfake.Start(ln, secretKey)
	defer fake.Close()
	fake.LimitRate(o.rate, o.window)

	db, err := openDatabases(ctx, o)
	if err != nil {
		return err
	}
	defer db.close()

	logf("working directory %s; Clerk stand-in at %s, rate limit %d per %v; database %s", o.dir, fake.URL, o.rate, o.window, db.where())
	var rows []result
	for _, n := range o.sizes {
		fake.Generate(n)
		if o.reconcile {
			r := measureReconcile(ctx, o, fake, db, n)
			rows = append(rows, r)
			logf("%s", r.line())
		}
		if o.backfill {
			r := measureBackfill(ctx, o, fake, db, n)
			rows = append(rows, r)
			logf("%s", r.line())
		}
		if o.changed > 0 && ctx.Err() == nil {
			r := measureIncremental(ctx, o, fake, db, n, min(o.changed, n))
			rows = append(rows, r)
			logf("%s", r.line())
		}
		if ctx.Err() != nil {
			break
		}
	}
	if o.orgMembers > 0 && ctx.Err() == nil {
		r := measureOrganization(ctx, o, fake, db, o.orgMembers)
		rows = append(rows, r)
		logf("%s", r.line())
	}
	printTable(os.Stdout, o, rows)
	return ctx.Err()
}

// databases is where the measurements write: an embedded FerretDB, or a MongoDB server.
type databases struct {
	emb *embedded.Server
	uri string // without a database
}

// openDatabases starts the embedded FerretDB under o.dir, unless o.mongoURI names a server.
func openDatabases(ctx context.Context, o options) (*databases, error) {
	if o.mongoURI != "" {
		return &databases{uri: strings.TrimSuffix(o.mongoURI, "/")}, nil
	}
	emb, err := embedded.Start(ctx, filepath.Join(o.dir, "ferretdb"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, err
	}
	return &databases{emb: emb, uri: strings.TrimSuffix(emb.URI(), "/")}, nil
}

func (d *databases) where() string {
	if d.emb != nil {
		return "embedded FerretDB at " + d.uri
	}
	return d.uri
}

// open opens the store on a new database named name.
func (d *databases) open(ctx context.Context, name string) (*store.Store, error) {
	if d.emb != nil {
		return d.emb.Open(ctx, name, store.WritesAuto)
	}
	return store.Open(ctx, d.uri+"/"+name, name)
}

// openAt opens the store on the database name: on an embedded FerretDB of its own under
// dataDir (MONGODB_URI=embedded with DATA_DIR=dataDir opens the same), or, with a MongoDB
// server, there. The function it returns closes the store (and stops that FerretDB).
func (d *databases) openAt(ctx context.Context, dataDir, name string) (*store.Store, func(), error) {
	if d.emb == nil {
		st, err := d.open(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		return st, func() { _ = st.Close(context.Background()) }, nil
	}
	emb, err := embedded.Start(ctx, dataDir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, nil, err
	}
	st, err := emb.Open(ctx, name, store.WritesAuto)
	if err != nil {
		emb.Stop()
		return nil, nil, err
	}
	return st, func() { _ = st.Close(context.Background()); emb.Stop() }, nil
}

func (d *databases) close() {
	if d.emb != nil {
		d.emb.Stop()
	}
}

// result is one measurement: a reconciliation run or a backfill at one size.
type result struct {
	what        string // "reconcile", "backfill", "incremental" or "organization"
	users       int
	preloaded   int
	preloadTime time.Duration
	wall        time.Duration
	requests    int64 // Clerk requests for the users (organizations' not counted; for "organization", those for organizations only)
	tooMany     int64 // of which 429s
	allRequests int64 // every Clerk request, the organizations run's too
	runs        int   // the runs of the pass
	steps       int   // the pass's steps (trace), all runs
	maxRunSteps int   // the most steps one run took
	attempts    int
	largest     int // bytes of the largest step output
	largestStep string
	stepKinds   map[string]int // the pass's steps by name less its number
	state       int            // bytes of the largest memoized state seen while the run ran
	stateSteps  int            // step outputs in it
	traceTotal  int            // bytes of every step output, from the trace
	rss         int64          // the service's (or backfill's) peak RSS
	stored      int            // live users in the database afterwards (for "organization": the organization's live memberships)
	outcome     string
}

// line is r in one log line.
func (r result) line() string {
	return fmt.Sprintf("%s %d users: %s, %d Clerk requests (%d 429), %d runs, %d steps (%d executions; at most %d in a run), largest step output %s (%s), state %s in %d outputs (trace total %s), peak RSS %s, %d live after; %s",
		r.what, r.users, r.wall.Round(100*time.Millisecond), r.requests, r.tooMany, r.runs, r.steps, r.attempts, r.maxRunSteps, size(r.largest), r.largestStep,
		size(r.state), r.stateSteps, size(r.traceTotal), size(int(r.rss)), r.stored, r.outcome)
}

// measureReconcile measures one pass of reconcile-users-with-clerk over n users, of which the
// share o.preload is in the database before (and o.stale users Clerk does not have), started
// by `clerk-user-sync reconcile` through the dev server (startStack).
func measureReconcile(ctx context.Context, o options, fake *clerkfake.Server, dbs *databases, n int) result {
	res := result{what: "reconcile", users: n}
	fill := func(st *store.Store) error {
		res.preloaded = int(o.preload * float64(n))
		if res.preloaded > 0 {
			t0 := time.Now()
			if err := preload(ctx, st, res.preloaded); err != nil {
				return fmt.Errorf("preload: %w", err)
			}
			res.preloadTime = time.Since(t0)
			logf("reconcile %d: %d users pre-loaded in %v", n, res.preloaded, res.preloadTime.Round(time.Second))
		}
		if o.stale > 0 {
			// The generated users after the n Clerk serves: stored, and gone from Clerk.
			t0 := time.Now()
			if err := preloadRange(ctx, st, n, n+o.stale); err != nil {
				return fmt.Errorf("stale users: %w", err)
			}
			logf("reconcile %d: %d users Clerk does not have stored in %v", n, o.stale, time.Since(t0).Round(time.Second))
		}
		return nil
	}
	s, m, eventID, err := launch(ctx, o, fake, dbs, fmt.Sprintf("rscale_r%d_%d", n, time.Now().Unix()), fill)
	if err != nil {
		res.outcome = "ERROR: " + err.Error()
		return res
	}
	defer s.stop()
	s.follow(ctx, &res, m, eventID, reconcile.FunctionID, usersContinuation, false)
	countLiveUsers(ctx, s, &res)
	return res
}

// countLiveUsers counts the live users in the stack's database once its runs are over, in
// res.stored (or says in res.outcome why it could not).
func countLiveUsers(ctx context.Context, s *stack, res *result) {
	st, err := s.storeAfter(ctx)
	if err == nil {
		var live []string
		if live, err = st.LiveUserIDs(ctx); err == nil {
			res.stored = len(live)
			return
		}
	}
	res.outcome += " [counting the live users: " + err.Error() + "]"
}

// clerkRateLimit is the service's CLERK_RATE_LIMIT setting for a stand-in limited to rate
// requests per window: rate itself, so that the functions and backfill keep within their
// shares of it (of the default 10 s window; another -rate-window is not told the service), or,
// for rate 0 (no limit), a limit so high that the shares limit nothing either. Without it the
// service would take the development instance's 100 for the stand-in's sk_test_ key.
func clerkRateLimit(rate int) string {
	if rate <= 0 {
		rate = 1_000_000_000
	}
	return "CLERK_RATE_LIMIT=" + strconv.Itoa(rate)
}

// preload writes the generated users 0 to k-1 to the database, as the webhooks would have
// stored them: 1,000 at a time through store.InsertNewUsers (a million in minutes, where one
// guarded write per user would take most of an hour on the embedded FerretDB), and any it did
// not insert through the guarded write.
func preload(ctx context.Context, st *store.Store, k int) error { return preloadRange(ctx, st, 0, k) }

// preloadRange is preload of the generated users first to end-1.
func preloadRange(ctx context.Context, st *store.Store, first, end int) error {
	const batch = 1000
	users := make([]store.User, 0, batch)
	byID := map[string]clerkfake.User{}
	for from := first; from < end; from += batch {
		users = users[:0]
		clear(byID)
		for i := from; i < min(from+batch, end); i++ {
			g := clerkfake.GeneratedUser(i)
			u, err := g.Clerk().StoreUser(0)
			if err != nil {
				return fmt.Errorf("user %d: %w", i, err)
			}
			users = append(users, u)
			byID[u.ID] = g
		}
		rest, err := st.InsertNewUsers(ctx, users)
		if err != nil {
			return err
		}
		for _, id := range rest {
			if err := clerkfake.Seed(ctx, st, byID[id]); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// measureBackfill measures `clerk-user-sync backfill` of n users into a fresh database.
func measureBackfill(ctx context.Context, o options, fake *clerkfake.Server, dbs *databases, n int) result {
	res := result{what: "backfill", users: n}
	name := fmt.Sprintf("rscale_b%d_%d", n, time.Now().Unix())
	st, err := dbs.open(ctx, name) // creates the collections and, embedded, their _id index
	if err != nil {
		res.outcome = "ERROR: " + err.Error()
		return res
	}
	defer st.Close(context.Background())
	dir := filepath.Join(o.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.outcome = "ERROR: " + err.Error()
		return res
	}
	env := cleanEnv("MONGODB_URI="+dbs.uri+"/"+name, "CLERK_SECRET_KEY="+secretKey, "CLERK_API_URL="+fake.URL, clerkRateLimit(o.rate), "LOG_LEVEL=info")
	before := fake.Stats()
	reqsBefore := len(fake.Requests())
	start := time.Now()
	p, err := proc.Start(proc.Spec{Name: "clerk-user-sync backfill", Args: []string{o.serviceBin, "backfill"}, Env: env, Dir: dir, Log: filepath.Join(dir, "backfill.log")})
	if err != nil {
		res.outcome = "ERROR: " + err.Error()
		return res
	}
	timer := time.NewTimer(o.timeout)
	defer timer.Stop()
	select {
	case <-p.Done():
	case <-timer.C:
		res.outcome = fmt.Sprintf("TIMEOUT: stopped after %v", o.timeout)
		p.Stop(syscall.SIGTERM, 10*time.Second)
	case <-ctx.Done():
		res.outcome = "interrupted"
		p.Stop(syscall.SIGTERM, 10*time.Second)
	}
	res.wall = time.Since(start)
	res.rss = p.MaxRSS()
	after := fake.Stats()
	res.allRequests = after.Requests - before.Requests
	res.requests, res.tooMany = countRequests(fake.Requests()[reqsBefore:], filepath.Join(dir, "clerk-requests.log"), false)
	if res.outcome == "" {
		status := "exit 0"
		if !p.Cmd.ProcessState.Success() {
			status = "FAILED (" + p.Cmd.ProcessState.String() + ")"
		}
		res.outcome = status + ": " + clip(summaryLine(p.LogTail(4000)), 300)
	}
	if live, err := st.LiveUserIDs(ctx); err == nil {
		res.stored = len(live)
	}
	return res
}

// countRequests counts the requests for users among reqs (those for organizations left out),
// or, when orgs, those for organizations and their memberships, and the 429s among them, and
// writes every one of reqs to the file logPath, one a line.
func countRequests(reqs []string, logPath string, orgs bool) (counted, tooMany int64) {
	_ = os.WriteFile(logPath, []byte(strings.Join(reqs, "\n")+"\n"), 0o644)
	for _, r := range reqs {
		if strings.Contains(r, "/v1/organizations") != orgs {
			continue
		}
		counted++
		if strings.HasPrefix(r, "429 ") {
			tooMany++
		}
	}
	return counted, tooMany
}

// summaryLine picks the backfill's summary ("backfill done: ...") or its error from its output.
func summaryLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "backfill done") || strings.Contains(lines[i], "backfill stopped") || strings.Contains(lines[i], "Error") {
			return strings.TrimSpace(lines[i])
		}
	}
	return lastLine(out)
}

// printTable writes the results as the Markdown table of docs/reconciliation.md.
func printTable(w io.Writer, o options, rows []result) {
	fmt.Fprintf(w, "\nClerk rate limit %d per %v; pre-loaded share %.2f; %d stored users gone from Clerk; run timeout %v.\n\n", o.rate, o.window, o.preload, o.stale, o.timeout)
	fmt.Fprintln(w, "| what | users | wall time | Clerk requests (429s) | steps (executions) | largest step output | largest state | peak RSS | live after | outcome |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rows {
		steps, largest, state := "-", "-", "-"
		if r.what != "backfill" {
			steps = fmt.Sprintf("%d (%d) in %d runs, at most %d per run", r.steps, r.attempts, r.runs, r.maxRunSteps)
			largest = size(r.largest)
			state = fmt.Sprintf("%s (%d outputs)", size(r.state), r.stateSteps)
		}
		fmt.Fprintf(w, "| %s | %d | %v | %d (%d) | %s | %s | %s | %s | %d | %s |\n",
			r.what, r.users, r.wall.Round(100*time.Millisecond), r.requests, r.tooMany, steps, largest, state, size(int(r.rss)), r.stored,
			strings.ReplaceAll(clip(r.outcome, 160), "|", "/"))
	}
}

// size renders n bytes as KiB or MiB.
func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// clip shortens s to n bytes.
func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// logf prints a progress line on stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Command reconcile-scale measures reconciliation and backfill against a large Clerk instance
// (issue 23; docs/reconciliation.md, "At scale: measured"). For each size it serves that many
// generated users from clerk/clerkfake (computed, not stored), with Clerk's rate limit and page
// size enforced, optionally pre-loads a share of them into the database (embedded FerretDB, or
// -mongodb-uri), starts the service's binary and the real Inngest dev server (serve mode),
// requests one reconciliation (`clerk-user-sync reconcile`) and waits for the run of
// reconcile-users-with-clerk to end; then it runs `clerk-user-sync backfill` into a fresh
// database. With -changed K, it also measures an incremental run with K users changed among
// all of them pre-loaded (incremental.go; -reconcile=false -backfill=false for that alone). It prints, per size: wall time, Clerk requests and 429s, the run's steps, its
// largest step output and largest memoized state, the service's peak RSS, and the outcome.
//
// Build the binaries first (make reconcile-scale does):
//
//	go build -o .bin/clerk-user-sync . && go build -o .bin/reconcile-scale ./tools/reconcile-scale
//	.bin/reconcile-scale -inngest "$(tools/inngest/build.sh)" -users 10000,100000
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
	"regexp"
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
	flag.Float64Var(&o.preload, "preload", 0, "share (0 to 1) of the users written to the database before the reconciliation (0: a first import)")
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
	flag.IntVar(&o.changed, "changed", 0, "measure an incremental reconciliation run with this many users changed in Clerk since the watermark, all users pre-loaded (in this process, its steps inline; 0: none)")
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
	if o.preload < 0 || o.preload > 1 {
		return fmt.Errorf("-preload %v: want 0 to 1", o.preload)
	}
	if o.stale < 0 {
		return fmt.Errorf("-stale %d: want 0 or more", o.stale)
	}
	bins := []*string{&o.serviceBin}
	if o.reconcile {
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
	what        string // "reconcile" or "backfill"
	users       int
	preloaded   int
	preloadTime time.Duration
	wall        time.Duration
	requests    int64 // Clerk requests for the users (organizations' not counted)
	tooMany     int64 // of which 429s
	allRequests int64 // every Clerk request, the organizations run's too
	runs        int   // the runs of the pass
	steps       int   // the pass's steps (trace), all runs
	maxRunSteps int   // the most steps one run took
	attempts    int
	largest     int // bytes of the largest step output
	largestStep string
	state       int   // bytes of the largest memoized state seen while the run ran
	stateSteps  int   // step outputs in it
	traceTotal  int   // bytes of every step output, from the trace
	rss         int64 // the service's (or backfill's) peak RSS
	stored      int   // live users in the database afterwards
	outcome     string
}

// line is r in one log line.
func (r result) line() string {
	return fmt.Sprintf("%s %d users: %s, %d Clerk requests (%d 429), %d runs, %d steps (%d executions; at most %d in a run), largest step output %s (%s), state %s in %d outputs (trace total %s), peak RSS %s, %d live users stored; %s",
		r.what, r.users, r.wall.Round(100*time.Millisecond), r.requests, r.tooMany, r.runs, r.steps, r.attempts, r.maxRunSteps, size(r.largest), r.largestStep,
		size(r.state), r.stateSteps, size(r.traceTotal), size(int(r.rss)), r.stored, r.outcome)
}

// measureReconcile measures one run of reconcile-users-with-clerk over n users, of which the
// share o.preload is in the database before.
func measureReconcile(ctx context.Context, o options, fake *clerkfake.Server, dbs *databases, n int) result {
	res := result{what: "reconcile", users: n}
	fail := func(err error) result {
		res.outcome = "ERROR: " + err.Error()
		return res
	}
	name := fmt.Sprintf("rscale_r%d_%d", n, time.Now().Unix())
	dir := filepath.Join(o.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	// On the embedded FerretDB, the service runs its own (MONGODB_URI=embedded), as it does by
	// default: its peak RSS is then the database's too, and the marks get the _id lookup index
	// that only an embedded FerretDB gives them. The tool fills that database before, in a
	// FerretDB of its own on the same DATA_DIR, and counts what it holds after.
	dbEnv := []string{"MONGODB_URI=" + dbs.uri + "/" + name}
	st, closeDB, err := dbs.openAt(ctx, filepath.Join(dir, "data"), name)
	if err != nil {
		return fail(err)
	}
	if dbs.emb != nil {
		dbEnv = []string{"MONGODB_URI=embedded", "DATA_DIR=" + filepath.Join(dir, "data"), "MONGODB_DATABASE=" + name}
	}
	res.preloaded = int(o.preload * float64(n))
	if res.preloaded > 0 {
		t0 := time.Now()
		if err := preload(ctx, st, res.preloaded); err != nil {
			return fail(fmt.Errorf("preload: %w", err))
		}
		res.preloadTime = time.Since(t0)
		logf("reconcile %d: %d users pre-loaded in %v", n, res.preloaded, res.preloadTime.Round(time.Second))
	}
	if o.stale > 0 {
		// The generated users after the n Clerk serves: stored, and gone from Clerk.
		t0 := time.Now()
		if err := preloadRange(ctx, st, n, n+o.stale); err != nil {
			return fail(fmt.Errorf("stale users: %w", err))
		}
		logf("reconcile %d: %d users Clerk does not have stored in %v", n, o.stale, time.Since(t0).Round(time.Second))
	}

	if dbs.emb != nil {
		closeDB() // the service opens DATA_DIR next: one process at a time
	} else {
		defer closeDB()
	}
	svcPort, err := proc.FreePort()
	if err != nil {
		return fail(err)
	}
	devPort, err := proc.FreePort()
	if err != nil {
		return fail(err)
	}
	devURL := fmt.Sprintf("http://127.0.0.1:%d", devPort)
	env := cleanEnv(
		"PORT="+strconv.Itoa(svcPort), "HOST=127.0.0.1",
		"INNGEST_DEV="+devURL,
		dbEnv[0],
		"CLERK_SECRET_KEY="+secretKey, "CLERK_API_URL="+fake.URL, clerkRateLimit(o.rate),
		"CLERK_WEBHOOK_SIGNING_SECRET=whsec_cmVjb25jaWxlLXNjYWxlLW9ubHktc2VjcmV0",
		"LOG_LEVEL=info",
	)
	env = append(env, dbEnv[1:]...)
	svc, err := proc.Start(proc.Spec{Name: "clerk-user-sync", Args: []string{o.serviceBin}, Env: env, Dir: dir, Log: filepath.Join(dir, "service.log")})
	if err != nil {
		return fail(err)
	}
	defer svc.Stop(syscall.SIGTERM, 10*time.Second)
	svcURL := fmt.Sprintf("http://127.0.0.1:%d", svcPort)
	if err := proc.WaitFor(ctx, "the service", svc, 60*time.Second, 200*time.Millisecond, func() bool { return proc.HTTPOK(svcURL + "/readyz") }); err != nil {
		return fail(err)
	}
	// The dev server's own port is fixed before it starts: the service sends to it.
	dev, err := startDevServerAt(ctx, o.inngestBin, dir, svcURL+"/api/inngest", devPort)
	if err != nil {
		return fail(err)
	}
	defer dev.p.Stop(syscall.SIGTERM, 10*time.Second)
	var usersFn string
	err = proc.WaitFor(ctx, "the dev server's sync of the service", dev.p, 90*time.Second, 200*time.Millisecond, func() bool {
		fns, err := dev.functions(appID)
		for _, f := range fns {
			if strings.HasSuffix(f.Slug, reconcile.FunctionID) {
				usersFn = f.UUID
			}
		}
		return err == nil && usersFn != ""
	})
	if err != nil {
		return fail(err)
	}

	before := fake.Stats()
	reqsBefore := len(fake.Requests())
	start := time.Now()
	eventID, err := requestReconciliation(ctx, o.serviceBin, devURL, dir)
	if err != nil {
		return fail(err)
	}
	var runID string
	err = proc.WaitFor(ctx, "the run of "+reconcile.FunctionID, dev.p, 60*time.Second, 200*time.Millisecond, func() bool {
		runs, _ := dev.eventRuns(eventID)
		for _, r := range runs {
			if r.FunctionID == usersFn {
				runID = r.RunID
			}
		}
		return runID != ""
	})
	if err != nil {
		return fail(err)
	}
	logf("reconcile %d: run %s started (event %s); logs in %s", n, runID, eventID, dir)
	// A pass too long for one run goes on in the next (reconcile.ContinueEvent, with the id
	// <first run's id>-run-<k>): follow each run to its end, and the next one it sent.
	pass := runID
	deadline := start.Add(o.timeout)
	lastLog := time.Now()
	lastReqs, lastProgress, lastSteps := before.Requests, time.Now(), 0
	for k := 0; ; k++ {
		if k > 0 {
			next := fmt.Sprintf("%s-run-%d", pass, k)
			runID = ""
			err = proc.WaitFor(ctx, "the run of "+next, dev.p, 2*time.Minute, 200*time.Millisecond, func() bool {
				runID, _ = dev.runOfEventID(next, start, usersFn)
				return runID != ""
			})
			if err != nil {
				res.outcome = fmt.Sprintf("the pass's run %d never started: %v", k+1, err)
				break
			}
		}
		res.runs++
		watch := dev.watchState(runID, 500*time.Millisecond)
		var run devRun
		stopped := true // unless the run ends
		for {
			run, err = dev.run(runID)
			if err == nil && run.ended() {
				stopped = false
				break
			}
			if svc.Exited() {
				res.outcome = "the service exited: " + lastLine(svc.LogTail(2000))
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				res.outcome = fmt.Sprintf("TIMEOUT: run %d of the pass still %s after %v; cancelled", k+1, run.Status, o.timeout)
				_ = dev.cancel(runID)
				break
			}
			// Progress: a Clerk request, or a step memoized (scan and delete steps may make no
			// Clerk request for minutes).
			now, steps := fake.Stats().Requests, watch.steps()
			if now != lastReqs || steps != lastSteps {
				lastReqs, lastSteps, lastProgress = now, steps, time.Now()
			} else if time.Since(lastProgress) > o.stall {
				res.outcome = fmt.Sprintf("STALLED: run %d of the pass still %s, no Clerk request or step for %v; cancelled", k+1, run.Status, o.stall)
				_ = dev.cancel(runID)
				break
			}
			if time.Since(lastLog) > time.Minute {
				logf("reconcile %d: run %d %s after %v, %d Clerk requests so far, %d steps in this run", n, k+1, run.Status, time.Since(start).Round(time.Second), now-before.Requests, steps)
				lastLog = time.Now()
			}
			time.Sleep(250 * time.Millisecond)
		}
		st8 := watch.end()
		lastSteps = 0
		if st8.Total > res.state {
			res.state, res.stateSteps = st8.Total, st8.Steps
		}
		if dup := strings.Count(dev.p.LogTail(1<<30), "duplicate response"); dup > 0 && !strings.Contains(res.outcome, "duplicate response") {
			res.outcome += fmt.Sprintf(" [dev server: %d× \"error handling generator response: duplicate response\"]", dup)
		}
		if tr, err := dev.trace(runID); err == nil {
			res.steps += tr.Steps
			res.attempts += tr.Attempts
			res.traceTotal += tr.Total
			res.maxRunSteps = max(res.maxRunSteps, tr.Steps)
			if tr.Largest > res.largest {
				res.largest, res.largestStep = tr.Largest, tr.LargestStep
			}
			if len(tr.Failed) > 0 {
				res.outcome += fmt.Sprintf(" [run %d failed steps: %s]", k+1, clip(strings.Join(tr.Failed, ", "), 200))
			}
		} else {
			res.outcome += " [trace: " + err.Error() + "]"
		}
		if res.largest == 0 || st8.Largest > res.largest+100 { // the state wraps each output in {"data":...}
			res.largest, res.largestStep = st8.Largest, "hashed id "+st8.Step
		}
		if stopped {
			break
		}
		if run.Status != "Completed" || !strings.Contains(string(run.Output), `"continued":true`) {
			res.outcome = run.Status + ": " + clip(string(run.Output), 400) + res.outcome
			break
		}
	}
	res.wall = time.Since(start)
	if rss, err := proc.VmHWM(svc.Cmd.Process.Pid); err == nil {
		res.rss = rss
	}
	after := fake.Stats()
	res.allRequests = after.Requests - before.Requests
	res.requests, res.tooMany = countRequests(fake.Requests()[reqsBefore:], filepath.Join(dir, "clerk-requests.log"))
	if dbs.emb != nil {
		svc.Stop(syscall.SIGTERM, 30*time.Second)
		if st, closeDB, err = dbs.openAt(ctx, filepath.Join(dir, "data"), name); err != nil {
			res.outcome += " [counting the live users: " + err.Error() + "]"
			return res
		}
		defer closeDB()
	}
	if live, err := st.LiveUserIDs(ctx); err == nil {
		res.stored = len(live)
	}
	return res
}

var eventIDRE = regexp.MustCompile(`event id (\S+)`)

// requestReconciliation runs `clerk-user-sync reconcile` against the dev server and returns
// the id of the event it sent.
func requestReconciliation(ctx context.Context, bin, devURL, dir string) (string, error) {
	env := cleanEnv("INNGEST_DEV="+devURL, "CLERK_SECRET_KEY="+secretKey, "LOG_LEVEL=warn")
	out := filepath.Join(dir, "reconcile-command.log")
	p, err := proc.Start(proc.Spec{Name: "clerk-user-sync reconcile", Args: []string{bin, "reconcile"}, Env: env, Dir: dir, Log: out})
	if err != nil {
		return "", err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		p.Stop(syscall.SIGTERM, time.Second)
		return "", ctx.Err()
	}
	b, _ := os.ReadFile(out)
	m := eventIDRE.FindStringSubmatch(string(b))
	if !p.Cmd.ProcessState.Success() || m == nil {
		return "", fmt.Errorf("clerk-user-sync reconcile: %s", clip(string(b), 600))
	}
	return m[1], nil
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
	res.requests, res.tooMany = countRequests(fake.Requests()[reqsBefore:], filepath.Join(dir, "clerk-requests.log"))
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

// countRequests counts the requests for users among reqs (those for organizations left out)
// and the 429s among them, and writes every one of reqs to the file logPath, one a line.
func countRequests(reqs []string, logPath string) (users, tooMany int64) {
	_ = os.WriteFile(logPath, []byte(strings.Join(reqs, "\n")+"\n"), 0o644)
	for _, r := range reqs {
		if strings.Contains(r, "/v1/organizations") {
			continue
		}
		users++
		if strings.HasPrefix(r, "429 ") {
			tooMany++
		}
	}
	return users, tooMany
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
	fmt.Fprintln(w, "| what | users | wall time | Clerk requests (429s) | steps (executions) | largest step output | largest state | peak RSS | live users after | outcome |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rows {
		steps, largest, state := "-", "-", "-"
		if r.what == "reconcile" {
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

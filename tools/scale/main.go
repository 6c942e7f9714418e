// Command scale-test is `make scale-test` (not part of `make test`): the service as production
// runs it, several replicas on a self-hosted Inngest, under a burst of sign-ups, updates and
// deletes, with a replica killed mid-burst; it checks that the database ends equal to the
// model of what Clerk sent, and records the throughput with one and with three replicas, in
// serve mode and in Connect mode.
//
// It starts, in a temporary directory it removes at the end (also on failure or Ctrl-C):
// PostgreSQL and Redis (Debian's postgresql and redis-server, installed with apt-get when
// missing) for `inngest start`, the pinned Inngest server (tools/inngest/build.sh, with Connect
// gRPC ports of its own: INNGEST_CONNECT_GATEWAY_GRPC_PORT and
// INNGEST_CONNECT_EXECUTOR_GRPC_PORT, so that other Inngest servers on the machine do not
// matter), one FerretDB server (embedded.Start, in this program run again as a helper process)
// shared by the replicas, the service's replicas (.bin/clerk-user-sync, production settings:
// Inngest keys, INNGEST_BASE_URL, MONGODB_URI), and a round-robin load balancer in this process
// in front of them.
//
// Two modes (-modes serve,connect). In serve mode each replica serves /api/inngest at the
// balancer's URL (INNGEST_SERVE_URL), which `inngest start -u` syncs, and the balancer carries
// the webhooks and Inngest's calls alike. In Connect mode each replica runs with
// INNGEST_CONNECT=1 and an INNGEST_INSTANCE_ID of its own (kept across its restart) and dials
// the server's Connect gateway (the server hands out ws://<INNGEST_BASE_URL's host>:
// <--connect-gateway-port>/v0/connect); nothing syncs by URL, and the balancer carries only
// the webhooks.
//
// For each replica count (-replicas 1,3) and each mode it starts everything afresh, posts the
// load through the balancer like Svix (each delivery signed with the real Svix library, re-sent
// with the same svix id until it gets 2xx), kills one replica with SIGKILL a third into the
// burst and restarts it 2 s later (in runs with several replicas; -kill), waits until the
// database equals the model (or stops changing), checks it, and prints PASS or FAIL with the
// differences, then one markdown table of the figures, the modes of one replica count side by
// side. Exit status 1 on any FAIL.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"clerksync/tools/internal/proc"
)

const appID = "clerk-user-sync"

// database is the MongoDB database the replicas share on the FerretDB server.
const database = "scale"

type config struct {
	users         int
	concurrency   int
	replicas      []int
	load          loadConfig
	kill          string
	restartAfter  time.Duration
	deadline      time.Duration
	quiet         time.Duration
	serviceBin    string
	inngestBin    string
	retryInterval int
	serviceEnv    []string
	keep          bool
	lbHold        time.Duration
	modes         []string
}

// The modes a run can take (-modes).
const (
	modeServe   = "serve"   // the replicas serve /api/inngest behind the balancer
	modeConnect = "connect" // the replicas dial the Connect gateway (INNGEST_CONNECT=1)
)

type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }
func (e *envList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

func main() {
	var (
		helper      = flag.String("ferretdb-helper", "", "internal: run the FerretDB server with its data in this directory")
		users       = flag.Int("users", 5000, "sign-ups (users) per run")
		concurrency = flag.Int("concurrency", 32, "webhook deliveries in flight at once")
		replicas    = flag.String("replicas", "1,3", "replica counts to run, one run each, comma-separated")
		updates     = flag.Float64("updates", 1, "user.updated events per user, on average")
		deletes     = flag.Float64("deletes", 0.1, "share of users deleted")
		dups        = flag.Float64("duplicates", 0.15, "duplicate deliveries (same svix id), as a share of the distinct events")
		seed        = flag.Int64("seed", 20261129, "seed of the generated history")
		kill        = flag.String("kill", "multi", "SIGKILL one replica a third into the burst and restart it: multi (runs with several replicas), all, none")
		restart     = flag.Duration("restart-after", 2*time.Second, "how long the killed replica stays down")
		deadline    = flag.Duration("deadline", 40*time.Minute, "how long the database may take to equal the model after the last webhook was accepted")
		quiet       = flag.Duration("quiet", 5*time.Minute, "give up earlier when the database has not changed for this long")
		serviceBin  = flag.String("service", ".bin/clerk-user-sync", "the service binary (go build -o .bin/clerk-user-sync .)")
		inngestBin  = flag.String("inngest", "", "the Inngest server binary (default: what tools/inngest/build.sh prints)")
		retry       = flag.Int("retry-interval", 0, "inngest start --retry-interval in seconds (0: Inngest's own backoff)")
		keep        = flag.Bool("keep", false, "keep the temporary directory (every process's log) and print its path")
		modes       = flag.String("modes", "serve,connect", "modes to run each replica count in, comma-separated: serve (/api/inngest behind the balancer), connect (INNGEST_CONNECT=1, the replicas dial the gateway)")
		lbHold      = flag.Duration("lb-hold", 0, "how long the balancer holds a request while every replica is down (0: 502 at once, as nginx)")
		serviceEnv  envList
	)
	flag.Var(&serviceEnv, "service-env", "extra KEY=VALUE setting for the replicas (repeatable), e.g. STORE_WRITE_MODE=conditional")
	flag.Parse()
	if *helper != "" {
		os.Exit(runFerretHelper(*helper))
	}
	cfg := config{users: *users, concurrency: *concurrency, kill: *kill, restartAfter: *restart, deadline: *deadline, quiet: *quiet,
		serviceBin: *serviceBin, inngestBin: *inngestBin, retryInterval: *retry, serviceEnv: serviceEnv, keep: *keep, lbHold: *lbHold,
		load: loadConfig{users: *users, updates: *updates, deletes: *deletes, duplicates: *dups, seed: *seed}}
	for _, s := range strings.Split(*replicas, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "-replicas %q: want counts such as 1,3\n", *replicas)
			os.Exit(2)
		}
		cfg.replicas = append(cfg.replicas, n)
	}
	for _, m := range strings.Split(*modes, ",") {
		switch m = strings.TrimSpace(m); m {
		case modeServe, modeConnect:
			cfg.modes = append(cfg.modes, m)
		default:
			fmt.Fprintf(os.Stderr, "-modes %q: want serve, connect or both (serve,connect)\n", *modes)
			os.Exit(2)
		}
	}
	switch cfg.kill {
	case "multi", "all", "none":
	default:
		fmt.Fprintf(os.Stderr, "-kill %q: want multi, all or none\n", cfg.kill)
		os.Exit(2)
	}
	if cfg.users < 1 || cfg.concurrency < 1 {
		fmt.Fprintln(os.Stderr, "-users and -concurrency must be at least 1")
		os.Exit(2)
	}
	os.Exit(run(cfg))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s scale-test: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// run runs every replica count and prints the report; it returns the exit status.
func run(cfg config) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := &cleanups{}
	defer root.close()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		logf("interrupted: stopping (again to stop at once)")
		cancel()
		<-sigs
		root.close()
		os.Exit(130)
	}()

	fail := func(err error) int {
		logf("ERROR: %v", err)
		return 1
	}
	var err error
	if cfg.serviceBin, err = filepath.Abs(cfg.serviceBin); err != nil {
		return fail(err)
	}
	if _, err := os.Stat(cfg.serviceBin); err != nil {
		return fail(fmt.Errorf("the service binary: %w (build it: go build -o .bin/clerk-user-sync .)", err))
	}
	if cfg.inngestBin == "" {
		out, err := exec.CommandContext(ctx, "tools/inngest/build.sh").Output()
		if err != nil {
			return fail(fmt.Errorf("tools/inngest/build.sh (run from the repository's root): %w", err))
		}
		cfg.inngestBin = strings.TrimSpace(string(out))
	}
	if cfg.inngestBin, err = filepath.Abs(cfg.inngestBin); err != nil {
		return fail(err)
	}
	if err := ensurePackages(ctx); err != nil {
		return fail(err)
	}

	tmp, err := os.MkdirTemp("", "clerk-scale-*")
	if err != nil {
		return fail(err)
	}
	if cfg.keep {
		logf("logs in %s (kept: -keep)", tmp)
	} else {
		root.add(func() { _ = os.RemoveAll(tmp) })
	}
	// PostgreSQL runs as another user: it must reach its data directory inside.
	if err := os.Chmod(tmp, 0o711); err != nil {
		return fail(err)
	}
	logf("starting PostgreSQL")
	pg, err := startPostgres(ctx, tmp, root)
	if err != nil {
		return fail(err)
	}
	logf("PostgreSQL on 127.0.0.1:%d (user %s)", pg.port, pg.user)

	var results []*result
	idx := 0
runs:
	for _, n := range cfg.replicas {
		for _, mode := range cfg.modes {
			idx++
			r, err := runOnce(ctx, cfg, pg, tmp, idx, mode, n, root)
			if err != nil {
				if r != nil {
					r.problems = append(r.problems, err.Error())
					results = append(results, r)
				}
				logf("run %d (%s, %d replicas): ERROR: %v", idx, mode, n, err)
				if ctx.Err() != nil {
					break runs
				}
				if r == nil {
					results = append(results, &result{mode: mode, replicas: n, users: cfg.users, problems: []string{err.Error()}})
				}
				continue
			}
			results = append(results, r)
		}
	}
	report(os.Stdout, cfg, results)
	for _, r := range results {
		if !r.pass() {
			return 1
		}
	}
	if len(results) < len(cfg.replicas)*len(cfg.modes) {
		return 1
	}
	return 0
}

// result is what one run measured and found.
type result struct {
	mode       string // modeServe or modeConnect
	replicas   int
	killed     bool
	users      int
	distinct   int
	deliveries int
	counts     map[string]int
	accepted   time.Duration // from the first post until the last delivery got 2xx
	endToEnd   time.Duration // from the first post until the database equalled the model
	converged  bool
	stats      *postStats
	lbRetries  int64
	lbFailed   int64
	lbErrors   string
	lbSamples  []string
	perReplica []string
	problems   []string
	killNote   string
	cpu        string
}

func (r *result) pass() bool { return len(r.problems) == 0 && r.converged }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// replica is one service process, on a fixed port across restarts.
type replica struct {
	index int
	port  int
	env   []string
	dir   string
	// connect: the replica runs in Connect mode, and is up once GET /readyz answers 200 (its
	// worker connected), not only /healthz.
	connect bool
	// runsBefore counts the function attempts it made before it was killed (its counter
	// starts again at 0 with the process).
	runsBefore int
	p          *proc.Proc
}

func (r *replica) url() string { return fmt.Sprintf("http://127.0.0.1:%d", r.port) }

// start starts the replica and waits until it answers /healthz (in Connect mode /readyz: it
// is connected to the gateway).
func (r *replica) start(ctx context.Context, bin string) error {
	p, err := proc.Start(proc.Spec{Name: fmt.Sprintf("replica %d", r.index), Args: []string{bin}, Env: r.env, Dir: r.dir,
		Log: filepath.Join(r.dir, fmt.Sprintf("replica-%d.log", r.index))})
	if err != nil {
		return err
	}
	r.p = p
	path := "/healthz"
	if r.connect {
		path = "/readyz"
	}
	return proc.WaitFor(ctx, fmt.Sprintf("replica %d (GET %s = 200)", r.index, path), p, 90*time.Second, 50*time.Millisecond, func() bool { return proc.HTTPOK(r.url() + path) })
}

func (r *replica) stop() {
	if r.p != nil {
		r.p.Stop(syscall.SIGTERM, 20*time.Second)
	}
}

// functionRuns returns the function attempts the replica has made since it started: the sum
// of its clerksync_function_runs_total, read from its /metrics.
func (r *replica) functionRuns() (int, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(r.url() + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics = %d", resp.StatusCode)
	}
	total := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "clerksync_function_runs_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("GET /metrics: %q: %w", line, err)
		}
		total += v
	}
	return int(total), nil
}

// runOnce starts a fresh stack with n replicas in mode, posts the load, and checks the database.
func runOnce(ctx context.Context, cfg config, pg *postgres, tmp string, idx int, mode string, n int, root *cleanups) (*result, error) {
	tag := fmt.Sprintf("r%d", idx)
	dir := filepath.Join(tmp, fmt.Sprintf("run%d-%s-%dreplicas", idx, mode, n))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	cl := &cleanups{}
	defer cl.close()
	root.add(cl.close) // for a second Ctrl-C, which closes root at once
	logf("run %d: %s mode, %d replica(s); logs under %s", idx, mode, n, dir)
	connect := mode == modeConnect

	eventKey, signingKey := randomHex(16), randomHex(32)
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(raw)
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		return nil, err
	}

	redis, redisURI, err := startRedis(ctx, dir, cl)
	if err != nil {
		return nil, err
	}
	pgURI, err := pg.createDB("inngest_" + tag)
	if err != nil {
		return nil, err
	}
	ferret, err := startFerret(ctx, dir, cl)
	if err != nil {
		return nil, err
	}
	dbURI := ferret.uri + database

	reps := make([]*replica, n)
	hosts := make([]string, n)
	for i := range reps {
		port, err := proc.FreePort()
		if err != nil {
			return nil, err
		}
		reps[i] = &replica{index: i + 1, port: port, dir: dir, connect: connect}
		hosts[i] = fmt.Sprintf("127.0.0.1:%d", port)
	}
	lb, err := startBalancer(hosts, cfg.lbHold)
	if err != nil {
		return nil, err
	}
	cl.add(lb.close)
	// The replicas need the Inngest server's URL. In serve mode the server needs the
	// balancer's: it starts first, and syncs through the balancer, retrying until a replica
	// answers. In Connect mode it syncs no URL: each replica registers the functions when it
	// connects.
	appURL := lb.url + "/api/inngest"
	if connect {
		appURL = ""
	}
	logf("run %d: starting inngest start (PostgreSQL, Redis)", idx)
	inn, err := startInngest(ctx, cfg.inngestBin, dir, pgURI, redisURI, eventKey, signingKey, appURL, cfg.retryInterval, cl)
	if err != nil {
		return nil, err
	}
	logf("run %d: Inngest server at %s (Connect gateway on port %d, gRPC ports %d and %d)", idx, inn.url, inn.gatewayPort, inn.grpcPorts[0], inn.grpcPorts[1])

	for _, r := range reps {
		env := []string{
			"PORT=" + strconv.Itoa(r.port),
			"HOST=127.0.0.1",
			"CLERK_WEBHOOK_SIGNING_SECRET=" + secret,
			"INNGEST_EVENT_KEY=" + eventKey,
			"INNGEST_SIGNING_KEY=signkey-test-" + signingKey,
			"INNGEST_BASE_URL=" + inn.url,
			"MONGODB_URI=" + dbURI,
			"LOG_LEVEL=warn",
		}
		if connect {
			// The worker's id stays with the replica across its restart, as a pod name would.
			env = append(env, "INNGEST_CONNECT=1", fmt.Sprintf("INNGEST_INSTANCE_ID=scale-%s-replica-%d", tag, r.index))
		} else {
			env = append(env, "INNGEST_SERVE_URL="+lb.url+"/api/inngest")
		}
		r.env = cleanEnv(append(env, cfg.serviceEnv...)...)
		cl.add(r.stop)
		if err := r.start(ctx, cfg.serviceBin); err != nil {
			return nil, err
		}
	}
	// The first replica made the users collection: give it the _id lookup index FerretDB
	// lacks, as the service does for its embedded database.
	if err := ferret.indexIDs(database); err != nil {
		return nil, err
	}
	if connect {
		logf("run %d: %d replica(s) connected to the gateway, behind the balancer at %s for the webhooks", idx, n, lb.url)
		if err := waitRegistered(ctx, inn); err != nil {
			return nil, err
		}
	} else {
		logf("run %d: %d replica(s) up behind the balancer at %s", idx, n, lb.url)
		if err := syncApp(ctx, inn, lb.url); err != nil {
			return nil, err
		}
	}

	h := generate(cfg.load, tag)
	res := &result{mode: mode, replicas: n, users: cfg.users, distinct: len(h.messages), deliveries: len(h.deliveries), counts: h.counts}
	res.killed = cfg.kill == "all" || (cfg.kill == "multi" && n > 1)
	logf("run %d (%s): posting %d deliveries (%d user.created, %d user.updated, %d user.deleted, %d duplicates), %d at a time",
		idx, mode, len(h.deliveries), h.counts["user.created"], h.counts["user.updated"], h.counts["user.deleted"], len(h.deliveries)-len(h.messages), cfg.concurrency)

	parts := []string{"inngest", "PostgreSQL", "Redis", "FerretDB"}
	for _, r := range reps {
		parts = append(parts, fmt.Sprintf("replica %d", r.index))
	}
	parts = append(parts, "scale-test")
	meter := newCPUMeter(parts, func(part string) float64 {
		switch part {
		case "inngest":
			return inn.p.CPU()
		case "PostgreSQL":
			return pg.p.CPU()
		case "Redis":
			return redis.CPU()
		case "FerretDB":
			return ferret.p.CPU()
		case "scale-test":
			return selfCPU()
		}
		for _, r := range reps {
			if part == fmt.Sprintf("replica %d", r.index) {
				return r.p.CPU()
			}
		}
		return 0
	})
	lb.resetStats()
	p := newPoster(wh, lb.url+"/api/webhooks/clerk", cfg.concurrency)
	var killWG sync.WaitGroup
	var killErr error
	killAt := len(h.deliveries) / 3
	start := time.Now()
	p.postAll(ctx, h.deliveries, cfg.concurrency, func(i int) {
		if !res.killed || i != killAt {
			return
		}
		victim := reps[min(1, n-1)]
		killWG.Add(1)
		go func() {
			defer killWG.Done()
			if runs, err := victim.functionRuns(); err == nil {
				victim.runsBefore = runs
			}
			meter.ending(fmt.Sprintf("replica %d", victim.index))
			victim.p.Kill()
			killedAt := time.Since(start)
			logf("run %d: SIGKILL replica %d at delivery %d of %d (%.1f s into the burst)", idx, victim.index, i, len(h.deliveries), killedAt.Seconds())
			select {
			case <-ctx.Done():
				return
			case <-time.After(cfg.restartAfter):
			}
			if err := victim.start(ctx, cfg.serviceBin); err != nil {
				killErr = fmt.Errorf("restart replica %d: %w", victim.index, err)
				return
			}
			res.killNote = fmt.Sprintf("replica %d killed (SIGKILL) at delivery %d of %d, %.1f s into the burst; restarted %v later, answering again %.1f s into the burst",
				victim.index, i, len(h.deliveries), killedAt.Seconds(), cfg.restartAfter, time.Since(start).Seconds())
			logf("run %d: replica %d restarted", idx, victim.index)
		}()
	})
	killWG.Wait()
	postEnd := time.Now()
	res.stats = p.stats
	p.stats.mu.Lock()
	res.accepted = p.stats.lastAccepted.Sub(start)
	failed := append([]string(nil), p.stats.failed...)
	p.stats.mu.Unlock()
	if ctx.Err() != nil {
		return res, errors.New("interrupted")
	}
	if killErr != nil {
		return res, killErr
	}
	logf("run %d: %d of %d deliveries accepted (%d at the first attempt) in %.1f s; other answers: %s",
		idx, p.stats.accepted.Load(), len(h.deliveries), p.stats.firstTry.Load(), res.accepted.Seconds(), p.stats.statusSummary())
	for _, f := range failed {
		res.problems = append(res.problems, "delivery never accepted: "+f)
	}

	// Wait until the database equals the model, or stops changing, or the deadline passes.
	snap, err := newSnapshotReader(dbURI, database)
	if err != nil {
		return res, err
	}
	defer snap.close()
	var lastHash uint64
	lastChange, lastLog := time.Now(), time.Now()
	var problems []string
	for {
		got, count, hash, err := snap.read(ctx)
		if err == nil {
			problems = compare(h.users, got, count)
			if len(problems) == 0 {
				res.endToEnd, res.converged = time.Since(start), true
				break
			}
			if hash != lastHash {
				lastHash, lastChange = hash, time.Now()
			}
		} else {
			problems = []string{"read the collection: " + err.Error()}
		}
		if time.Since(lastLog) > 20*time.Second {
			logf("run %d: %.0f s in: %d documents, %d differences from the model", idx, time.Since(start).Seconds(), count, len(problems))
			lastLog = time.Now()
		}
		if time.Since(postEnd) > cfg.deadline {
			logf("run %d: the database does not equal the model %v after the last delivery", idx, cfg.deadline)
			break
		}
		if time.Since(lastChange) > cfg.quiet {
			logf("run %d: the database has not changed for %v and does not equal the model", idx, cfg.quiet)
			break
		}
		select {
		case <-ctx.Done():
			return res, errors.New("interrupted")
		case <-time.After(min(5*time.Second, max(time.Second, time.Since(start)/100))):
		}
	}
	res.cpu = meter.summary(runtime.NumCPU())
	if res.converged {
		logf("run %d: the database equals the model %.1f s after the first delivery; final check through the store", idx, res.endToEnd.Seconds())
		// The final verdict, read through the store (Get for each user, Count).
		got, count, err := readThroughStore(ctx, dbURI, database, h.users)
		if err != nil {
			return res, err
		}
		problems = compare(h.users, got, count)
	}
	res.problems = append(res.problems, problems...)
	res.lbRetries, res.lbFailed, res.lbErrors = lb.retries.Load(), lb.failed.Load(), lb.errorSummary()
	lb.errMu.Lock()
	res.lbSamples = append(res.lbSamples, lb.samples...)
	lb.errMu.Unlock()
	for i, b := range lb.backends {
		line := fmt.Sprintf("%d webhooks", b.webhooks.Load())
		if !connect {
			line += fmt.Sprintf(" + %d /api/inngest", b.inngest.Load())
		}
		runs, err := reps[i].functionRuns()
		switch {
		case err != nil:
			line += fmt.Sprintf(", function attempts unknown (%v)", err)
		case reps[i].runsBefore > 0:
			line += fmt.Sprintf(", %d function attempts (%d before the kill)", reps[i].runsBefore+runs, reps[i].runsBefore)
		default:
			line += fmt.Sprintf(", %d function attempts", runs)
		}
		res.perReplica = append(res.perReplica, line)
	}
	if !res.pass() {
		res.problems = append(res.problems, logErrors(dir)...)
	}
	return res, nil
}

// syncApp waits until the Inngest server has registered the app's functions (as many as the
// replicas serve), asking the app to sync through the balancer (PUT /api/inngest) every 5 s.
// Both requests are signed with the signing key, as Inngest signs them: the service answers an
// unsigned one 401.
func syncApp(ctx context.Context, inn *inngestServer, lbURL string) error {
	req, err := inn.signedRequest(http.MethodGet, lbURL+"/api/inngest")
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET /api/inngest through the balancer: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var info struct {
		FunctionCount int `json:"function_count"`
	}
	if err := json.Unmarshal(body, &info); err != nil || info.FunctionCount == 0 {
		return fmt.Errorf("GET /api/inngest through the balancer = %d %s: want the SDK's introspection with function_count", resp.StatusCode, tail(body, 300))
	}
	want := info.FunctionCount
	lastPut := time.Time{}
	var last []string
	var lastErr error
	err = proc.WaitFor(ctx, "the app's sync", inn.p, 90*time.Second, 250*time.Millisecond, func() bool {
		last, lastErr = inn.functions(appID)
		if lastErr == nil && len(last) >= want {
			return true
		}
		if time.Since(lastPut) > 5*time.Second {
			lastPut = time.Now()
			req, err := inn.signedRequest(http.MethodPut, lbURL+"/api/inngest")
			if err != nil {
				return false
			}
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("%w (registered: %v, %v; want %d functions)", err, last, lastErr, want)
	}
	logf("Inngest registered %d functions (concurrency limits in brackets):\n  %s", len(last), strings.Join(last, "\n  "))
	return nil
}

// waitRegistered waits, in Connect mode, until the Inngest server lists the app's functions:
// every replica is connected by then (each waited for its /readyz), and a worker registers all
// its functions when it connects.
func waitRegistered(ctx context.Context, inn *inngestServer) error {
	var last []string
	var lastErr error
	err := proc.WaitFor(ctx, "the app's registration over Connect", inn.p, 90*time.Second, 250*time.Millisecond, func() bool {
		last, lastErr = inn.functions(appID)
		return lastErr == nil && len(last) > 0
	})
	if err != nil {
		return fmt.Errorf("%w (registered: %v, %v)", err, last, lastErr)
	}
	logf("Inngest registered %d functions over Connect (concurrency limits in brackets):\n  %s", len(last), strings.Join(last, "\n  "))
	return nil
}

// selfCPU returns the user+system CPU seconds this program has used (the balancer, the
// poster, the checks).
func selfCPU() float64 {
	raw, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

// logErrors returns the first error lines of the run's logs, for a failed run.
func logErrors(dir string) []string {
	var out []string
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			l := strings.ToLower(line)
			if strings.Contains(l, "level=error") || strings.Contains(l, `"level":"error"`) || strings.Contains(l, "panic") {
				if n < 5 {
					out = append(out, fmt.Sprintf("log %s: %s", filepath.Base(f), tail([]byte(line), 400)))
				}
				n++
			}
		}
		if n > 5 {
			out = append(out, fmt.Sprintf("log %s: ... %d error lines in all", filepath.Base(f), n))
		}
	}
	return out
}

// report prints each run's details, its PASS/FAIL, and the markdown table.
func report(w io.Writer, cfg config, results []*result) {
	fmt.Fprintln(w)
	for _, r := range results {
		verdict := "PASS"
		if !r.pass() {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "== %s mode, %d replica(s): %s\n", r.mode, r.replicas, verdict)
		if r.stats != nil {
			fmt.Fprintf(w, "   deliveries: %d (%d distinct: %d user.created, %d user.updated, %d user.deleted; %d duplicates)\n",
				r.deliveries, r.distinct, r.counts["user.created"], r.counts["user.updated"], r.counts["user.deleted"], r.deliveries-r.distinct)
			fmt.Fprintf(w, "   accepted: %d of %d (%d at the first attempt; %d attempts) in %.1f s, %.0f deliveries/s; non-2xx answers: %s\n",
				r.stats.accepted.Load(), r.deliveries, r.stats.firstTry.Load(), r.stats.attempts.Load(), r.accepted.Seconds(),
				float64(r.stats.accepted.Load())/max(r.accepted.Seconds(), 0.001), r.stats.statusSummary())
			fmt.Fprintf(w, "   balancer: %d attempts failed (retried on the next replica: %s), %d requests answered 502 (no replica left); per replica: %s\n",
				r.lbRetries, r.lbErrors, r.lbFailed, strings.Join(r.perReplica, "; "))
		}
		for _, s := range r.lbSamples {
			fmt.Fprintf(w, "     502: %s\n", s)
		}
		if r.killNote != "" {
			fmt.Fprintf(w, "   fault: %s\n", r.killNote)
		}
		if r.cpu != "" {
			fmt.Fprintf(w, "   CPU seconds from the first delivery to the end: %s\n", r.cpu)
		}
		if r.converged {
			fmt.Fprintf(w, "   the database equalled the model %.1f s after the first delivery: %.1f events/s end to end\n",
				r.endToEnd.Seconds(), float64(r.distinct)/r.endToEnd.Seconds())
		}
		if len(r.problems) > 0 {
			fmt.Fprintf(w, "   %d problem(s):\n", len(r.problems))
			for i, p := range r.problems {
				if i == 40 {
					fmt.Fprintf(w, "     ... and %d more\n", len(r.problems)-i)
					break
				}
				fmt.Fprintf(w, "     - %s\n", p)
			}
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Command: `make scale-test`%s (%s)\n", makeArgs(), strings.Join(os.Args, " "))
	fmt.Fprintf(w, "Machine: %d cores, %s, %s; the pinned `inngest start` on PostgreSQL and Redis, FerretDB, round-robin balancer (serve mode: webhooks and /api/inngest; Connect mode: webhooks only).\n\n",
		runtime.NumCPU(), osName(), time.Now().Format("2006-01-02"))
	fmt.Fprintln(w, "| mode | replicas | replica killed mid-burst | sign-ups | deliveries (distinct + duplicates) | all accepted after | sign-ups/s at the webhook | database = model after | sign-ups/s end to end | end to end vs serve | result |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	// The serve-mode rate of each replica count, for the Connect rows' ratio.
	serveRate := map[int]float64{}
	for _, r := range results {
		if r.mode == modeServe && r.converged {
			serveRate[r.replicas] = float64(r.users) / r.endToEnd.Seconds()
		}
	}
	for _, r := range results {
		killed := "no"
		if r.killed {
			killed = fmt.Sprintf("yes (down %v)", cfg.restartAfter)
		}
		acc, accRate, e2e, e2eRate, ratio := "-", "-", "-", "-", "-"
		if r.stats != nil && r.accepted > 0 {
			acc = fmt.Sprintf("%.1f s", r.accepted.Seconds())
			accRate = fmt.Sprintf("%.0f", float64(r.users)/r.accepted.Seconds())
		}
		if r.converged {
			rate := float64(r.users) / r.endToEnd.Seconds()
			e2e = fmt.Sprintf("%.1f s", r.endToEnd.Seconds())
			e2eRate = fmt.Sprintf("%.1f", rate)
			if base, ok := serveRate[r.replicas]; ok && r.mode != modeServe {
				ratio = fmt.Sprintf("%.2fx", rate/base)
			}
		}
		verdict := "PASS"
		if !r.pass() {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "| %s | %d | %s | %d | %d + %d | %s | %s | %s | %s | %s | %s |\n", r.mode, r.replicas, killed, r.users, r.distinct, r.deliveries-r.distinct, acc, accRate, e2e, e2eRate, ratio, verdict)
	}
	fmt.Fprintln(w)
	all := len(results) == len(cfg.replicas)*len(cfg.modes)
	for _, r := range results {
		all = all && r.pass()
	}
	if all {
		fmt.Fprintln(w, "PASS")
	} else {
		fmt.Fprintln(w, "FAIL")
	}
}

// makeArgs renders the flags as SCALE_ARGS for the Makefile target.
func makeArgs() string {
	if len(os.Args) <= 1 {
		return ""
	}
	var args []string
	for i := 1; i < len(os.Args); i++ {
		switch a := os.Args[i]; {
		case a == "-inngest" || a == "--inngest":
			i++ // and its value: the target passes the binary's path itself
		case strings.HasPrefix(a, "-inngest=") || strings.HasPrefix(a, "--inngest="):
		default:
			args = append(args, a)
		}
	}
	if len(args) == 0 {
		return ""
	}
	return fmt.Sprintf(" with `SCALE_ARGS='%s'`", strings.Join(args, " "))
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}

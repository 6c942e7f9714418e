// Command bench measures the service against the least work any implementation must do, on
// this machine, and prints one table: each row gives the service's figure, the baseline's
// figure from the same run, and their ratio. `make bench` builds what it needs and runs it.
//
// Rows: 1 the webhook bridge under load (against a stub of Inngest's event API) versus a plain
// net/http bridge, for each payload size (-payload) and concurrency (-c); 2 end to end through
// the real dev server into FerretDB, one run per event, versus a no-op app, with the Inngest
// runs and steps per user; 3 the same with batched functions; 4 idle latency; 5
// microbenchmarks. Row 1 runs -bridge-runs rounds (5 by default) and row 2 -runs (3), and
// they report the medians.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inngest/inngestgo"
	svix "github.com/svix/svix-webhooks/go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"clerksync/store/embedded"
)

const benchSecret = "whsec_YmVuY2htYXJrLXNpZ25pbmctc2VjcmV0LTAxMjM0"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "serve-baseline":
			exitOn(serveBaseline())
			return
		case "serve-noop":
			exitOn(serveNoop())
			return
		}
	}
	var (
		serviceBin  = flag.String("service", ".bin/clerk-user-sync", "the service binary")
		inngestBin  = flag.String("inngest", ".bin/inngest", "the Inngest dev server binary")
		n           = flag.Int("n", 20000, "webhooks per load run (row 1; at these rates 5,000 last a third of a second, too short for a steady p99)")
		cs          = flag.String("c", "16,32", "row 1: concurrent clients, one row per value (and per payload size)")
		payloads    = flag.String("payload", "1200,2000", "row 1: webhook body sizes in bytes, one row per value (and per concurrency)")
		e2eC        = flag.Int("e2e-c", 16, "concurrent clients of rows 2 and 3")
		runs        = flag.Int("runs", 3, "row 2: runs of each size (service and baseline alternating); the table has the median")
		bridgeRuns  = flag.Int("bridge-runs", 5, "row 1: rounds of each combination (service, baseline, baseline, service); the table has the median")
		e2eSizes    = flag.String("e2e", "1000,10000", "sign-up counts for rows 2 and 3")
		rows        = flag.String("rows", "1,2,3,4,5", "rows to run")
		baseline    = flag.Float64("baseline", 0, "row 3 only: the one-run-per-event baseline in users/s, instead of measuring it with row 2")
		keep        = flag.Bool("keep", false, "keep the processes' logs (the folder is printed)")
		noopIDs     = flag.Bool("noop-ids", false, "give the no-op app's events idempotency ids, like the bridge's clerk-<svix-id> (to see what they cost the dev server)")
		connectMode = flag.Bool("connect", false, "run the service in Connect mode (rows 2 and 3): INNGEST_CONNECT=1, the dev server given no URL of the service's; the no-op baseline stays in serve mode")
		syncEvents  = flag.Bool("sync-events", false, "run the service with SYNC_EVENTS=1 (rows 2 and 3): each applied sign-up also sends clerk-sync/user.created, which nothing listens to")
	)
	flag.Parse()
	b := &bench{serviceBin: abs(*serviceBin), inngestBin: abs(*inngestBin), c: *e2eC, runs: max(1, *runs), bridgeRuns: max(1, *bridgeRuns), dir: mustTemp(), noopIDs: *noopIDs}
	if *connectMode {
		b.connect = true
		b.serviceEnv = append(b.serviceEnv, "INNGEST_CONNECT=1", "INNGEST_INSTANCE_ID=bench")
	}
	if *syncEvents {
		b.serviceEnv = append(b.serviceEnv, "SYNC_EVENTS=1")
	}
	if *keep {
		logf("logs in %s", b.dir)
	} else {
		defer os.RemoveAll(b.dir)
	}
	t := &table{}
	t.add("row", "measure", "service", "baseline", "ratio", "target")
	want := func(r string) bool { return strings.Contains(","+*rows+",", ","+r+",") }
	if want("1") {
		for _, size := range ints(*payloads) {
			for _, c := range ints(*cs) {
				b.rowBridge(t, *n, size, c)
			}
		}
	}
	sizes := ints(*e2eSizes)
	baselines := map[int]float64{}
	bills := map[int]billing{}
	if want("2") || (want("3") && *baseline == 0) {
		for _, size := range sizes {
			baselines[size], bills[size] = b.rowEndToEnd(t, size, want("2"))
		}
	}
	if want("3") && len(sizes) > 0 {
		size := sizes[len(sizes)-1]
		if *baseline > 0 {
			baselines[size] = *baseline
		}
		b.rowBatched(t, size, baselines[size], bills[size])
	}
	if want("4") {
		b.rowIdle(t)
	}
	if want("5") {
		rowMicro(t)
	}
	fmt.Println()
	t.print(os.Stdout)
}

type bench struct {
	serviceBin, inngestBin string
	c                      int // clients of rows 2 and 3
	runs                   int // runs of each size of row 2
	bridgeRuns             int // rounds of each combination of row 1
	dir                    string
	noopIDs                bool
	// serviceEnv adds to the service's settings in every end-to-end row (-sync-events,
	// -connect).
	serviceEnv []string
	// connect: the service runs in Connect mode (-connect), so the dev server gets no URL of it.
	connect bool
	seq     atomic.Int64
}

// ints parses a comma-separated list of whole numbers, leaving out what is not one.
func ints(list string) []int {
	var out []int
	for _, s := range strings.Split(list, ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && v > 0 {
			out = append(out, v)
		}
	}
	return out
}

// loadAvg returns the machine's 1-, 5- and 15-minute load averages, for the logs: figures
// measured while something else loaded the machine are not comparable.
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(raw))[:3], " ")
}

// median returns the median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func exitOn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	exitOn(err)
	if _, err := os.Stat(a); err != nil {
		exitOn(fmt.Errorf("%s: %w (make bench builds it)", a, err))
	}
	return a
}

// self is this program's path, to start it again as a baseline server.
func self() string {
	p, err := os.Executable()
	exitOn(err)
	return p
}

func mustTemp() string {
	d, err := os.MkdirTemp("", "clerk-bench-*")
	exitOn(err)
	return d
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	exitOn(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a child process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (b *bench) start(name string, env []string, args ...string) *proc {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	logFile, err := os.Create(filepath.Join(b.dir, fmt.Sprintf("%s-%d.log", name, b.seq.Add(1))))
	exitOn(err)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = b.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	exitOn(cmd.Start())
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(p.done) }()
	return p
}

func (p *proc) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// cpuSeconds returns the user+system CPU time the process has used so far.
func (p *proc) cpuSeconds() float64 { return cpuSecondsOf(p.cmd.Process.Pid) }

// cpuSecondsOf returns the user+system CPU time process pid has used so far (0 if unknown).
func cpuSecondsOf(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks, 100 a second on Linux
}

// peakRSS returns the process's peak resident set size (VmHWM) in MB.
func (p *proc) peakRSS() float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

// waitHTTP waits until url answers 200 (and check, if given, accepts the body).
func waitHTTP(url string, timeout time.Duration, check func([]byte) bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && (check == nil || check(body)) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	exitOn(fmt.Errorf("%s not ready after %v", url, timeout))
}

// startDB starts a FerretDB in this process for one measurement.
func (b *bench) startDB() (*embedded.Server, string) {
	dir := filepath.Join(b.dir, fmt.Sprintf("db-%d", b.seq.Add(1)))
	emb, err := embedded.Start(context.Background(), dir, slog.New(slog.DiscardHandler))
	exitOn(err)
	return emb, strings.TrimSuffix(emb.URI(), "/")
}

// stubEventAPI answers like Inngest's event API, at once.
func stubEventAPI() (string, func()) {
	var n atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ids":["01STUB%020d"],"status":200}`, n.Add(1))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	exitOn(err)
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }
}

// serveBaseline runs baselineHandler on PORT, forwarding to STUB_URL.
func serveBaseline() error {
	wh, err := svix.NewWebhook(os.Getenv("CLERK_WEBHOOK_SIGNING_SECRET"))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /api/webhooks/clerk", baselineHandler(wh, eventAPIPoster(os.Getenv("STUB_URL"))))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	return http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), mux)
}

// bridgeRun is one load run of row 1 against one server.
type bridgeRun struct {
	res loadResult
	rss float64 // peak RSS, MB
	cpu float64 // CPU seconds the server used over the measured requests
}

// merge returns two runs of one server as one: their requests and time added up, the mean of
// their latencies, the larger peak RSS.
func (r bridgeRun) merge(o bridgeRun) bridgeRun {
	return bridgeRun{
		res: loadResult{
			n: r.res.n + o.res.n, failed: r.res.failed + o.res.failed, elapsed: r.res.elapsed + o.res.elapsed,
			p50: (r.res.p50 + o.res.p50) / 2, p99: (r.res.p99 + o.res.p99) / 2,
		},
		rss: max(r.rss, o.rss),
		cpu: r.cpu + o.cpu,
	}
}

// rowBridge is row 1 for one payload size and one concurrency: the webhook bridge under load,
// against the stub event API, versus the plain net/http bridge. It runs b.bridgeRuns rounds, each
// four runs, service, baseline, baseline, service (each a fresh process: warm-up, then n
// webhooks), and reports the medians; each ratio is the median of the rounds' ratios (a
// round's runs share the machine's conditions).
func (b *bench) rowBridge(t *table, n, size, c int) {
	stub, stopStub := stubEventAPI()
	defer stopStub()
	emb, dbURI := b.startDB()
	defer emb.Stop()
	wh, _ := svix.NewWebhook(benchSecret)

	measure := func(name string, args []string, env []string) bridgeRun {
		port := freePort()
		p := b.start(name, append(env, "PORT="+strconv.Itoa(port), "CLERK_WEBHOOK_SIGNING_SECRET="+benchSecret), args...)
		defer p.stop()
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		waitHTTP(base+"/healthz", 30*time.Second, nil)
		run := fmt.Sprintf("%s%d", name[:1], b.seq.Add(1))
		_ = postLoad(base+"/api/webhooks/clerk", preSignSized(wh, run+"w", 500, size), c) // warm-up
		reqs := preSignSized(wh, run, n, size)
		cpu := p.cpuSeconds()
		res := postLoad(base+"/api/webhooks/clerk", reqs, c)
		cpu = p.cpuSeconds() - cpu
		if res.failed > 0 {
			logf("%s: %d of %d requests failed", name, res.failed, res.n)
		}
		return bridgeRun{res: res, rss: p.peakRSS(), cpu: cpu}
	}
	var svc, base []bridgeRun
	var rps, p50, p99, cpu [3][]float64 // service, baseline, ratio
	add := func(m *[3][]float64, s, bl float64) {
		m[0], m[1], m[2] = append(m[0], s), append(m[1], bl), append(m[2], s/bl)
	}
	for round := range b.bridgeRuns {
		// Service, baseline, baseline, service: the machine's speed drifts over seconds, and
		// this order gives both sides the same share of a steady drift.
		service := func() bridgeRun {
			return measure("service", []string{b.serviceBin}, []string{"INNGEST_DEV=" + stub, "MONGODB_URI=" + dbURI + "/bench"})
		}
		baseline := func() bridgeRun {
			return measure("baseline", []string{self(), "serve-baseline"}, []string{"STUB_URL=" + stub})
		}
		s1, bl1 := service(), baseline()
		bl2, s2 := baseline(), service()
		s, bl := s1.merge(s2), bl1.merge(bl2)
		svc, base = append(svc, s), append(base, bl)
		add(&rps, s.res.rps(), bl.res.rps())
		add(&p50, float64(s.res.p50), float64(bl.res.p50))
		add(&p99, float64(s.res.p99), float64(bl.res.p99))
		add(&cpu, s.cpu/float64(s.res.n)*1e6, bl.cpu/float64(bl.res.n)*1e6)
		logf("row 1 %d B c=%d round %d (load average %s): service %.0f req/s p99 %v %.0f us CPU/webhook %.1f MB; baseline %.0f req/s p99 %v %.0f us CPU/webhook %.1f MB; throughput %.2fx",
			size, c, round+1, loadAvg(), s.res.rps(), s.res.p99.Round(10*time.Microsecond), cpu[0][round], s.rss,
			bl.res.rps(), bl.res.p99.Round(10*time.Microsecond), cpu[1][round], bl.rss, rps[2][round])
	}
	peak := func(runs []bridgeRun) float64 {
		m := 0.0
		for _, r := range runs {
			m = max(m, r.rss)
		}
		return m
	}
	durMS := func(ns float64) string { return ms(time.Duration(ns)) }
	of := ""
	if b.bridgeRuns > 1 {
		of = fmt.Sprintf(", median of %d", b.bridgeRuns)
	}
	label := fmt.Sprintf("%d B, c=%d", size, c)
	t.add("1", fmt.Sprintf("bridge throughput (%s, n=%d%s)", label, n, of), fmt.Sprintf("%.0f req/s", median(rps[0])), fmt.Sprintf("%.0f req/s", median(rps[1])), fmt.Sprintf("%.2fx", median(rps[2])), ">= 0.85x")
	t.add("1", fmt.Sprintf("bridge p50 latency (%s)", label), durMS(median(p50[0])), durMS(median(p50[1])), fmt.Sprintf("%.2fx", median(p50[2])), "")
	t.add("1", fmt.Sprintf("bridge p99 latency (%s)", label), durMS(median(p99[0])), durMS(median(p99[1])), fmt.Sprintf("%.2fx", median(p99[2])), "<= 1.30x")
	t.add("1", fmt.Sprintf("bridge CPU per webhook (%s)", label), fmt.Sprintf("%.0f us", median(cpu[0])), fmt.Sprintf("%.0f us", median(cpu[1])), fmt.Sprintf("%.2fx", median(cpu[2])), "")
	t.add("1", fmt.Sprintf("bridge peak RSS (%s, max of runs)", label), fmt.Sprintf("%.1f MB", peak(svc)), fmt.Sprintf("%.1f MB", peak(base)), ratio(peak(svc), peak(base)), "service <= 40 MB")
}

// e2eStack is a dev server plus an app (the service or the no-op app) plus a FerretDB.
type e2eStack struct {
	dev, app *proc
	devURL   string
	appURL   string
	db       *mongo.Collection
	stopDB   func()
}

func (s *e2eStack) stop() {
	s.dev.stop()
	s.app.stop()
	s.stopDB()
}

// count returns how many documents the app has written.
func (s *e2eStack) count() int64 {
	n, err := s.db.CountDocuments(context.Background(), bson.D{})
	if err != nil {
		return -1
	}
	return n
}

func (b *bench) startE2E(noop bool, extraEnv ...string) *e2eStack {
	emb, dbURI := b.startDB()
	devPort, appPort := freePort(), freePort()
	s := &e2eStack{devURL: fmt.Sprintf("http://127.0.0.1:%d", devPort), appURL: fmt.Sprintf("http://127.0.0.1:%d", appPort), stopDB: emb.Stop}
	env := append([]string{"PORT=" + strconv.Itoa(appPort), "INNGEST_DEV=" + s.devURL, "CLERK_WEBHOOK_SIGNING_SECRET=" + benchSecret}, extraEnv...)
	appID, fns, dbName, coll := "clerk-user-sync", 3, "bench", "users"
	if noop {
		s.app = b.start("noop", append(env, "MONGODB_URI="+dbURI+"/noop"), self(), "serve-noop")
		appID, fns, dbName = "bench-noop", 1, "noop"
	} else {
		s.app = b.start("service", append(append(env, "MONGODB_URI="+dbURI+"/bench", "LOG_LEVEL=warn"), b.serviceEnv...), b.serviceBin)
	}
	waitHTTP(s.appURL+"/healthz", 30*time.Second, nil)
	// The app has made its collection: give it the _id lookup index the service adds to its
	// embedded database (embedded.Server.IndexIDs), the no-op app's as well as the service's.
	exitOn(emb.IndexIDs(context.Background(), dbName))
	devArgs := []string{"dev", "--no-discovery", "--port", strconv.Itoa(devPort), "--connect-gateway-port", strconv.Itoa(freePort())}
	if noop || !b.connect {
		devArgs = append(devArgs, "-u", s.appURL+"/api/inngest")
	}
	s.dev = b.start("inngest", nil, append([]string{b.inngestBin}, devArgs...)...)
	waitHTTP(s.devURL+"/v1/apps/"+appID+"/functions", 90*time.Second, func(body []byte) bool {
		var v []json.RawMessage
		return json.Unmarshal(body, &v) == nil && len(v) >= fns // the service may serve more (failure recorder)
	})
	client, err := mongo.Connect(options.Client().ApplyURI(dbURI))
	exitOn(err)
	s.db = client.Database(dbName).Collection(coll)
	return s
}

// waitID waits until the app has written the document with the given _id (a lookup by _id,
// cheap whatever the collection's size) and returns the time since start.
func (s *e2eStack) waitID(id string, start time.Time, timeout time.Duration) time.Duration {
	for {
		err := s.db.FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Err()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			logf("document %s not written after %v (%v)", id, timeout, err)
			return timeout
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitCount waits until the app has written n documents and returns the time since start.
func (s *e2eStack) waitCount(n int64, start time.Time, timeout time.Duration) time.Duration {
	for {
		got := s.count()
		if got >= n {
			return time.Since(start)
		}
		elapsed := time.Since(start)
		if elapsed > timeout {
			logf("only %d of %d documents after %v", got, n, timeout)
			return timeout
		}
		// A count reads every document, so poll at most about 100 times: the error stays
		// within 1% of the run and the counting does not load the machine being measured.
		time.Sleep(max(100*time.Millisecond, elapsed/100))
	}
}

// feedNoop sends n bench/noop events, with the service's sign-up data, to the dev server one
// per request, c at a time: the traffic the service's webhook bridge sends, so that row 2
// compares the functions.
func feedNoop(devURL string, n, c int, withIDs bool) {
	ic, err := inngestgo.NewClient(inngestgo.ClientOpts{AppID: "bench-feeder", Dev: inngestgo.BoolPtr(true), EventAPIBaseURL: &devURL, Logger: slog.New(slog.DiscardHandler)})
	exitOn(err)
	next := make(chan int)
	done := make(chan struct{})
	for range c {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range next {
				// The same ~2 KB user data the service gets, so the events cost the dev server the same.
				var env struct {
					Data map[string]any `json:"data"`
				}
				_ = json.Unmarshal(signUpPayload("noop", i, time.Now().UnixMilli()), &env)
				evt := inngestgo.Event{Name: "bench/noop", Data: env.Data}
				if withIDs {
					id := fmt.Sprintf("noop-msg_%06d", i)
					evt.ID = &id
				}
				_, err := ic.Send(context.Background(), evt)
				exitOn(err)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	for range c {
		<-done
	}
}

// e2eRun is one end-to-end run: its rate and what Inngest would bill for it.
type e2eRun struct {
	rate float64 // users/s
	bill billing
}

// runServiceE2E posts n sign-ups through the service's webhook (extraEnv configures it), waits
// until every user is stored, and counts the Inngest runs and steps.
func (b *bench) runServiceE2E(label string, n int, extraEnv ...string) e2eRun {
	timeout := time.Duration(n)*200*time.Millisecond + time.Minute
	wh, _ := svix.NewWebhook(benchSecret)
	svc := b.startE2E(false, extraEnv...)
	defer svc.stop()
	reqs := preSign(wh, fmt.Sprintf("e%d", b.seq.Add(1)), n)
	start, cpu := time.Now(), cpuSecondsOf(os.Getpid())
	deliver(wh, svc.appURL+"/api/webhooks/clerk", reqs, b.c)
	posted := time.Since(start)
	took := svc.waitCount(int64(n), start, timeout)
	logf("%s n=%d service: CPU seconds: dev server %.1f, service %.1f, bench (FerretDB, poster) %.1f; posted in %.1f s, wall %.1f s", label, n, svc.dev.cpuSeconds(), svc.app.cpuSeconds(), cpuSecondsOf(os.Getpid())-cpu, posted.Seconds(), took.Seconds())
	return e2eRun{rate: float64(n) / took.Seconds(), bill: b.countBilling(label+" service", svc, start, n)}
}

// runNoopE2E feeds n events to the no-op app and waits until every one is stored.
func (b *bench) runNoopE2E(label string, n int) e2eRun {
	timeout := time.Duration(n)*200*time.Millisecond + time.Minute
	noop := b.startE2E(true)
	defer noop.stop()
	start, cpu := time.Now(), cpuSecondsOf(os.Getpid())
	feedNoop(noop.devURL, n, b.c, b.noopIDs)
	posted := time.Since(start)
	took := noop.waitCount(int64(n), start, timeout)
	logf("%s n=%d no-op: CPU seconds: dev server %.1f, no-op app %.1f, bench (FerretDB, feeder) %.1f; fed in %.1f s, wall %.1f s", label, n, noop.dev.cpuSeconds(), noop.app.cpuSeconds(), cpuSecondsOf(os.Getpid())-cpu, posted.Seconds(), took.Seconds())
	return e2eRun{rate: float64(n) / took.Seconds(), bill: b.countBilling(label+" no-op", noop, start, n)}
}

// countBilling counts the runs and steps of a finished burst (billing.go), after the dev
// server has had a moment to record the last runs' traces.
func (b *bench) countBilling(label string, s *e2eStack, start time.Time, n int) billing {
	time.Sleep(2 * time.Second)
	bill, err := countBilling(s.devURL, start.Add(-time.Second))
	if err != nil {
		logf("%s: counting runs and steps: %v", label, err)
		return billing{}
	}
	r, st, _ := bill.perUser(n)
	logf("%s: %d runs (%.2f per user), %d step executions (%.2f per user; from %d traces)", label, bill.runs, r, bill.steps, st, bill.traced)
	return bill
}

// rowEndToEnd is row 2 for one size: b.runs rounds of the service then the no-op app, the
// median of each side and of the rounds' ratios. It returns the baseline's median users/s and
// the service's billing (of its first round).
func (b *bench) rowEndToEnd(t *table, n int, report bool) (float64, billing) {
	var svc, noop, ratios []float64
	var bill, noopBill billing
	for round := range b.runs {
		s := b.runServiceE2E("row 2", n)
		o := b.runNoopE2E("row 2", n)
		svc, noop, ratios = append(svc, s.rate), append(noop, o.rate), append(ratios, s.rate/o.rate)
		if round == 0 {
			bill, noopBill = s.bill, o.bill
		}
		logf("row 2 n=%d round %d (load average %s): service %.1f users/s, no-op %.1f/s: %.2fx", n, round+1, loadAvg(), s.rate, o.rate, s.rate/o.rate)
	}
	if report {
		of := ""
		if b.runs > 1 {
			of = fmt.Sprintf(", median of %d", b.runs)
		}
		t.add("2", fmt.Sprintf("end to end, %d sign-ups, one run each%s", n, of), fmt.Sprintf("%.1f users/s", median(svc)), fmt.Sprintf("%.1f users/s", median(noop)), fmt.Sprintf("%.2fx", median(ratios)), ">= 0.85x")
		addBilling(t, "2", fmt.Sprintf("%d sign-ups, one run each", n), n, bill, noopBill)
	}
	return median(noop), bill
}

// addBilling adds the Inngest runs, steps and executions per synced user of a burst, against
// other's (the no-op app's, or the unbatched service's).
func addBilling(t *table, row, label string, n int, bill, other billing) {
	if bill.runs == 0 {
		return
	}
	r, s, e := bill.perUser(n)
	or, os, oe := other.perUser(n)
	cell := func(v float64, b billing) string {
		if b.runs == 0 {
			return ""
		}
		return fmt.Sprintf("%.3f", v)
	}
	sampled := ""
	if bill.traced < bill.runs {
		sampled = fmt.Sprintf(", steps from %d traces", bill.traced)
	}
	t.add(row, fmt.Sprintf("Inngest runs per user (%s)", label), cell(r, bill), cell(or, other), ratio(r, or), "")
	t.add(row, fmt.Sprintf("Inngest step executions per user (%s%s)", label, sampled), cell(s, bill), cell(os, other), ratio(s, os), "")
	t.add(row, fmt.Sprintf("Inngest executions (runs + steps) per user (%s)", label), cell(e, bill), cell(oe, other), ratio(e, oe), "")
}

// rowBatched is row 3: the service with batched create/update functions.
func (b *bench) rowBatched(t *table, n int, baselineRate float64, unbatched billing) {
	wh, _ := svix.NewWebhook(benchSecret)
	svc := b.startE2E(false, "INNGEST_BATCH_SIZE=100")
	defer svc.stop()
	reqs := preSign(wh, fmt.Sprintf("b%d", n), n)
	start, cpu := time.Now(), cpuSecondsOf(os.Getpid())
	deliver(wh, svc.appURL+"/api/webhooks/clerk", reqs, b.c)
	posted := time.Since(start)
	took := svc.waitCount(int64(n), start, time.Duration(n)*200*time.Millisecond+time.Minute)
	logf("row 3 n=%d batched: CPU seconds: dev server %.1f, service %.1f, bench (FerretDB, poster) %.1f; posted in %.1f s, wall %.1f s", n, svc.dev.cpuSeconds(), svc.app.cpuSeconds(), cpuSecondsOf(os.Getpid())-cpu, posted.Seconds(), took.Seconds())
	rate := float64(n) / took.Seconds()
	bill := b.countBilling("row 3 batched", svc, start, n)
	lone := b.loneSignUps(svc, wh, "bl", 5)
	logf("row 3 n=%d: batched %.1f users/s (%v); lone sign-up p99 %v", n, rate, took.Round(time.Millisecond), lone.p99)
	t.add("3", fmt.Sprintf("end to end, %d sign-ups, batched (100)", n), fmt.Sprintf("%.1f users/s", rate), fmt.Sprintf("%.1f users/s", baselineRate), ratio(rate, baselineRate), ">= 2.00x")
	t.add("3", "batched: lone sign-up on an idle system, max of 5", ms(lone.p99), "", "", "<= 2000 ms")
	addBilling(t, "3", fmt.Sprintf("%d sign-ups, batched (100) vs one run each", n), n, bill, unbatched)
}

// loneSignUps posts k sign-ups one at a time and measures webhook accepted -> user stored.
func (b *bench) loneSignUps(s *e2eStack, wh *svix.Webhook, run string, k int) loadResult {
	lat := make([]time.Duration, 0, k)
	for i := range k {
		userRun := fmt.Sprintf("%s%d", run, i)
		req := preSign(wh, userRun, 1)
		start := time.Now()
		_ = postLoad(s.appURL+"/api/webhooks/clerk", req, 1)
		lat = append(lat, s.waitID(fmt.Sprintf("user_%s%06d", userRun, 0), start, 30*time.Second))
		time.Sleep(200 * time.Millisecond)
	}
	return summarize(lat)
}

func summarize(lat []time.Duration) loadResult {
	sorted := append([]time.Duration(nil), lat...)
	slices.Sort(sorted)
	return loadResult{n: len(lat), p50: percentile(sorted, 50), p99: percentile(sorted, 99)}
}

// rowIdle is row 4: one sign-up at a time, 50 times, accepted -> stored; versus one no-op
// event at a time on the no-op app.
func (b *bench) rowIdle(t *table) {
	wh, _ := svix.NewWebhook(benchSecret)
	svc := b.startE2E(false)
	s := b.loneSignUps(svc, wh, "idle", 50)
	svc.stop()

	noop := b.startE2E(true)
	ic, err := inngestgo.NewClient(inngestgo.ClientOpts{AppID: "bench-feeder", Dev: inngestgo.BoolPtr(true), EventAPIBaseURL: &noop.devURL, Logger: slog.New(slog.DiscardHandler)})
	exitOn(err)
	lat := make([]time.Duration, 0, 50)
	for i := range 50 {
		id := fmt.Sprintf("idle_%d", i)
		start := time.Now()
		_, err := ic.Send(context.Background(), inngestgo.Event{Name: "bench/noop", Data: map[string]any{"id": id}})
		exitOn(err)
		lat = append(lat, noop.waitID(id, start, 30*time.Second))
		time.Sleep(200 * time.Millisecond)
	}
	noop.stop()
	n := summarize(lat)
	t.add("4", "idle: accepted -> stored, p50 (50 sign-ups)", ms(s.p50), ms(n.p50), ratio(float64(s.p50), float64(n.p50)), "")
	t.add("4", "idle: accepted -> stored, p99", ms(s.p99), ms(n.p99), ratio(float64(s.p99), float64(n.p99)), "")
}

// rowMicro is row 5: the microbenchmarks, through testing.Benchmark.
func rowMicro(t *table) {
	for _, m := range microBenchmarks() {
		svc, base := testing.Benchmark(m.service), testing.Benchmark(m.baseline)
		t.add("5", m.name+" ns/op", fmt.Sprint(svc.NsPerOp()), fmt.Sprint(base.NsPerOp()), ratio(float64(svc.NsPerOp()), float64(base.NsPerOp())), "")
		t.add("5", m.name+" allocs/op", fmt.Sprint(svc.AllocsPerOp()), fmt.Sprint(base.AllocsPerOp()), ratio(float64(svc.AllocsPerOp()), float64(base.AllocsPerOp())), "<= 2.00x")
		t.add("5", m.name+" B/op", fmt.Sprint(svc.AllocedBytesPerOp()), fmt.Sprint(base.AllocedBytesPerOp()), ratio(float64(svc.AllocedBytesPerOp()), float64(base.AllocedBytesPerOp())), "")
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

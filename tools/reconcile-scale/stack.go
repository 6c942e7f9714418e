package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/store"
	"clerksync/tools/internal/proc"
)

// stack is what a measurement through Inngest runs against: the service's binary, the real
// Inngest dev server calling it, and a database of its own.
type stack struct {
	o      options
	fake   *clerkfake.Server
	dbs    *databases
	name   string // the database's name
	dir    string // the measurement's directory: logs, and the embedded database's DATA_DIR
	svc    *proc.Proc
	dev    *devServer
	devURL string
	fns    map[string]string // the functions' UUIDs, by function id (reconcile.FunctionID, ...)
	// st is the measurement's store on a MongoDB server (nil on the embedded FerretDB, which
	// only the service may open while it runs: storeAfter opens it then).
	st      *store.Store
	closeDB func()
}

// startStack makes the measurement's directory o.dir/name, opens its database and lets fill
// write it, then starts the service (on the embedded FerretDB, with its own: MONGODB_URI=embedded
// and DATA_DIR, as it runs by default, so that its peak RSS is the database's too and the
// marks get the _id lookup index only an embedded FerretDB gives them) and the dev server, and
// waits until the dev server has synced the service's functions. The caller stops it (stop).
// It returns the first error of these.
func startStack(ctx context.Context, o options, fake *clerkfake.Server, dbs *databases, name string, fill func(*store.Store) error) (*stack, error) {
	s := &stack{o: o, fake: fake, dbs: dbs, name: name, dir: filepath.Join(o.dir, name), closeDB: func() {}}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	dataDir := filepath.Join(s.dir, "data")
	st, closeDB, err := dbs.openAt(ctx, dataDir, name)
	if err != nil {
		return nil, err
	}
	if err := fill(st); err != nil {
		closeDB()
		return nil, err
	}
	dbEnv := []string{"MONGODB_URI=" + dbs.uri + "/" + name}
	if dbs.emb != nil {
		closeDB() // the service opens DATA_DIR next: one process at a time
		dbEnv = []string{"MONGODB_URI=embedded", "DATA_DIR=" + dataDir, "MONGODB_DATABASE=" + name}
	} else {
		s.st, s.closeDB = st, closeDB
	}
	svcPort, err := proc.FreePort()
	if err != nil {
		s.stop()
		return nil, err
	}
	devPort, err := proc.FreePort()
	if err != nil {
		s.stop()
		return nil, err
	}
	s.devURL = fmt.Sprintf("http://127.0.0.1:%d", devPort)
	env := cleanEnv(append([]string{
		"PORT=" + strconv.Itoa(svcPort), "HOST=127.0.0.1",
		"INNGEST_DEV=" + s.devURL,
		"CLERK_SECRET_KEY=" + secretKey, "CLERK_API_URL=" + fake.URL, clerkRateLimit(o.rate),
		"CLERK_WEBHOOK_SIGNING_SECRET=whsec_cmVjb25jaWxlLXNjYWxlLW9ubHktc2VjcmV0",
		"LOG_LEVEL=info",
	}, dbEnv...)...)
	s.svc, err = proc.Start(proc.Spec{Name: "clerk-user-sync", Args: []string{o.serviceBin}, Env: env, Dir: s.dir, Log: filepath.Join(s.dir, "service.log")})
	if err != nil {
		s.stop()
		return nil, err
	}
	svcURL := fmt.Sprintf("http://127.0.0.1:%d", svcPort)
	if err := proc.WaitFor(ctx, "the service", s.svc, 60*time.Second, 200*time.Millisecond, func() bool { return proc.HTTPOK(svcURL + "/readyz") }); err != nil {
		s.stop()
		return nil, err
	}
	// The dev server's own port is fixed before it starts: the service sends to it.
	if s.dev, err = startDevServerAt(ctx, o.inngestBin, s.dir, svcURL+"/api/inngest", devPort); err != nil {
		s.stop()
		return nil, err
	}
	err = proc.WaitFor(ctx, "the dev server's sync of the service", s.dev.p, 90*time.Second, 200*time.Millisecond, func() bool {
		fns, err := s.dev.functions(appID)
		s.fns = map[string]string{}
		for _, f := range fns {
			for _, id := range []string{reconcile.FunctionID, reconcile.OrganizationsFunctionID} {
				if strings.HasSuffix(f.Slug, id) {
					s.fns[id] = f.UUID
				}
			}
		}
		return err == nil && len(s.fns) == 2
	})
	if err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// launch starts the stack (startStack), then requests the runs with `clerk-user-sync reconcile
// args`: the measurement starts with the request. It returns the stack, what the measurement
// starts from, and the request's event id, or the first error (the stack then stopped).
func launch(ctx context.Context, o options, fake *clerkfake.Server, dbs *databases, name string, fill func(*store.Store) error, args ...string) (*stack, measured, string, error) {
	s, err := startStack(ctx, o, fake, dbs, name, fill)
	if err != nil {
		return nil, measured{}, "", err
	}
	m := s.mark()
	eventID, err := s.request(ctx, args...)
	if err != nil {
		s.stop()
		return nil, measured{}, "", err
	}
	return s, m, eventID, nil
}

// stop stops the dev server and the service, and closes the database.
func (s *stack) stop() {
	if s.dev != nil {
		s.dev.p.Stop(syscall.SIGTERM, 10*time.Second)
	}
	if s.svc != nil {
		s.svc.Stop(syscall.SIGTERM, 30*time.Second)
	}
	s.closeDB()
}

// storeAfter returns the measurement's store once its runs are over: on the embedded
// FerretDB, it stops the service and opens its DATA_DIR (stop closes it).
func (s *stack) storeAfter(ctx context.Context) (*store.Store, error) {
	if s.st != nil {
		return s.st, nil
	}
	s.svc.Stop(syscall.SIGTERM, 30*time.Second)
	st, closeDB, err := s.dbs.openAt(ctx, filepath.Join(s.dir, "data"), s.name)
	if err != nil {
		return nil, err
	}
	s.st, s.closeDB = st, closeDB
	return st, nil
}

var eventIDRE = regexp.MustCompile(`event id (\S+)`)

// request runs `clerk-user-sync reconcile` with args against the dev server and returns the
// id of the event it sent.
func (s *stack) request(ctx context.Context, args ...string) (string, error) {
	env := cleanEnv("INNGEST_DEV="+s.devURL, "CLERK_SECRET_KEY="+secretKey, "LOG_LEVEL=warn")
	out := filepath.Join(s.dir, "reconcile-command.log")
	cmd := append([]string{s.o.serviceBin, "reconcile"}, args...)
	p, err := proc.Start(proc.Spec{Name: strings.Join(append([]string{"clerk-user-sync"}, cmd[1:]...), " "), Args: cmd, Env: env, Dir: s.dir, Log: out})
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
		return "", fmt.Errorf("clerk-user-sync %s: %s", strings.Join(cmd[1:], " "), clip(string(b), 600))
	}
	return m[1], nil
}

// continuation names the event that starts run k (from 1) of the pass whose first run is
// pass: reconcile.ContinueEvent's id for the users' pass, OrganizationsContinueEvent's for
// the organizations'.
type continuation func(pass string, k int) string

func usersContinuation(pass string, k int) string { return fmt.Sprintf("%s-run-%d", pass, k) }
func orgsContinuation(pass string, k int) string  { return fmt.Sprintf("%s-orgs-run-%d", pass, k) }

// measured is what the stack measured of a measurement: taken when its runs are over.
type measured struct {
	before     clerkfake.Stats
	reqsBefore int
	start      time.Time
}

// mark records the stand-in's counts and the time: the measurement starts now.
func (s *stack) mark() measured {
	return measured{before: s.fake.Stats(), reqsBefore: len(s.fake.Requests()), start: time.Now()}
}

// follow follows the pass of the function fnID (reconcile.FunctionID or
// OrganizationsFunctionID) that the event eventID started, run after run (next names the
// event of each next run), until a run ends without handing the pass on, the pass stalls
// (o.stall) or takes longer than o.timeout (the run is then cancelled). It records in res the
// wall time from m.start, the runs, their steps (trace) and largest output and memoized state,
// the Clerk requests (those for organizations when orgs, else those for users) and 429s, and
// the service's peak RSS; the wall time ends at the last run's end as the dev server recorded
// it (its API may tell it seconds later); res.outcome is the last run's status and output, with what went
// wrong. It returns the last run's output (nil when it did not end).
func (s *stack) follow(ctx context.Context, res *result, m measured, eventID, fnID string, next continuation, orgs bool) json.RawMessage {
	var ended *time.Time // the last run's end, as the dev server recorded it
	defer func() {
		// From the request to the last run's end: the dev server's record of it, when there is
		// one, for its API shows runs seconds late on a busy machine.
		res.wall = time.Since(m.start)
		if ended != nil && ended.After(m.start) {
			logf("%s %d: the last run ended %v after the request; the dev server's API told it %v later", res.what, res.users, ended.Sub(m.start).Round(100*time.Millisecond), (res.wall - ended.Sub(m.start)).Round(100*time.Millisecond))
			res.wall = ended.Sub(m.start)
		}
		if rss, err := proc.VmHWM(s.svc.Cmd.Process.Pid); err == nil {
			res.rss = rss
		}
		res.allRequests = s.fake.Stats().Requests - m.before.Requests
		res.requests, res.tooMany = countRequests(s.fake.Requests()[m.reqsBefore:], filepath.Join(s.dir, "clerk-requests.log"), orgs)
	}()
	uuid := s.fns[fnID]
	var runID string
	err := proc.WaitFor(ctx, "the run of "+fnID, s.dev.p, 60*time.Second, 200*time.Millisecond, func() bool {
		runs, _ := s.dev.eventRuns(eventID)
		for _, r := range runs {
			if r.FunctionID == uuid {
				runID = r.RunID
			}
		}
		return runID != ""
	})
	if err != nil {
		res.outcome = "ERROR: " + err.Error()
		return nil
	}
	logf("%s %d: run %s of %s started (event %s); logs in %s", res.what, res.users, runID, fnID, eventID, s.dir)
	// A pass too long for one run goes on in the next: follow each run to its end, and the next
	// one it sent.
	pass := runID
	deadline := m.start.Add(s.o.timeout)
	lastLog := time.Now()
	lastReqs, lastProgress, lastSteps := m.before.Requests, time.Now(), 0
	for k := 0; ; k++ {
		if k > 0 {
			id := next(pass, k)
			runID = ""
			err = proc.WaitFor(ctx, "the run of "+id, s.dev.p, 2*time.Minute, 200*time.Millisecond, func() bool {
				runID, _ = s.dev.runOfEventID(id, m.start, uuid)
				return runID != ""
			})
			if err != nil {
				res.outcome = fmt.Sprintf("the pass's run %d never started: %v", k+1, err)
				return nil
			}
		}
		res.runs++
		watch := s.dev.watchState(runID, 500*time.Millisecond)
		var run devRun
		stopped := true // unless the run ends
		for {
			run, err = s.dev.run(runID)
			if err == nil && run.ended() {
				stopped = false
				break
			}
			if s.svc.Exited() {
				res.outcome = "the service exited: " + lastLine(s.svc.LogTail(2000))
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				res.outcome = fmt.Sprintf("TIMEOUT: run %d of the pass still %s after %v; cancelled", k+1, run.Status, s.o.timeout)
				_ = s.dev.cancel(runID)
				break
			}
			// Progress: a Clerk request, or a step memoized (scan and delete steps may make no
			// Clerk request for minutes).
			now, steps := s.fake.Stats().Requests, watch.steps()
			if now != lastReqs || steps != lastSteps {
				lastReqs, lastSteps, lastProgress = now, steps, time.Now()
			} else if time.Since(lastProgress) > s.o.stall {
				res.outcome = fmt.Sprintf("STALLED: run %d of the pass still %s, no Clerk request or step for %v; cancelled", k+1, run.Status, s.o.stall)
				_ = s.dev.cancel(runID)
				break
			}
			if time.Since(lastLog) > time.Minute {
				logf("%s %d: run %d %s after %v, %d Clerk requests so far, %d steps in this run", res.what, res.users, k+1, run.Status, time.Since(m.start).Round(time.Second), now-m.before.Requests, steps)
				lastLog = time.Now()
			}
			time.Sleep(250 * time.Millisecond)
		}
		st8 := watch.end()
		lastSteps = 0
		if st8.Total > res.state {
			res.state, res.stateSteps = st8.Total, st8.Steps
		}
		if dup := strings.Count(s.dev.p.LogTail(1<<30), "duplicate response"); dup > 0 && !strings.Contains(res.outcome, "duplicate response") {
			res.outcome += fmt.Sprintf(" [dev server: %d× \"error handling generator response: duplicate response\"]", dup)
		}
		if tr, err := s.dev.trace(runID); err == nil {
			res.steps += tr.Steps
			res.attempts += tr.Attempts
			res.traceTotal += tr.Total
			res.maxRunSteps = max(res.maxRunSteps, tr.Steps)
			if tr.Largest > res.largest {
				res.largest, res.largestStep = tr.Largest, tr.LargestStep
			}
			if res.stepKinds == nil {
				res.stepKinds = map[string]int{}
			}
			for kind, n := range tr.Kinds {
				res.stepKinds[kind] += n
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
			return nil
		}
		if run.Status != "Completed" || !strings.Contains(string(run.Output), `"continued":true`) {
			res.outcome = run.Status + ": " + clip(string(run.Output), 400) + res.outcome
			ended = run.EndedAt
			return run.Output
		}
	}
}

// decodeOutput decodes a run's output into v: the function's return value, as JSON or as a
// JSON string holding it.
func decodeOutput(out json.RawMessage, v any) error {
	var s string
	if json.Unmarshal(out, &s) == nil {
		out = json.RawMessage(s)
	}
	return json.Unmarshal(out, v)
}

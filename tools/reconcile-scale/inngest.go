package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"clerksync/internal/inngestdev"
	"clerksync/tools/internal/proc"
)

// devServer is a running Inngest dev server (serve mode: it calls the service's /api/inngest).
type devServer struct {
	p   *proc.Proc
	url string
}

// startDevServerAt starts `inngest dev` in dir on port, syncing the app served at serveURL
// only (no discovery), and waits until it answers. Its Connect gateway listens on a free port
// of its own; nothing connects to it.
func startDevServerAt(ctx context.Context, bin, dir, serveURL string, port int) (*devServer, error) {
	gw, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	// Configured as make dev's inngest.json configures it (e2e's way too), with this run's URL
	// and port. The working directory is the run's own: the dev server reads an inngest.json
	// from its directory and every parent, and the repository has one.
	cfg, _ := json.Marshal(map[string]any{"sdk-url": []string{serveURL}, "no-discovery": true, "port": strconv.Itoa(port), "poll-interval": 5})
	cfgPath := filepath.Join(dir, "inngest.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return nil, err
	}
	args := []string{bin, "dev", "--config", cfgPath, "--connect-gateway-port", strconv.Itoa(gw), "--retry-interval", "1"}
	// Its Connect gateway and executor get gRPC ports of their own too (a server built by
	// tools/inngest/build.sh reads them), so that a Connect-mode server elsewhere on the machine
	// never reaches this one's.
	grpc1, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	grpc2, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	env := cleanEnv("INNGEST_CONNECT_GATEWAY_GRPC_PORT="+strconv.Itoa(grpc1), "INNGEST_CONNECT_EXECUTOR_GRPC_PORT="+strconv.Itoa(grpc2))
	p, err := proc.Start(proc.Spec{Name: "inngest dev", Args: args, Env: env, Dir: dir, Log: filepath.Join(dir, "inngest-dev.log")})
	if err != nil {
		return nil, err
	}
	d := &devServer{p: p, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if err := proc.WaitFor(ctx, "the Inngest dev server", p, 90*time.Second, 200*time.Millisecond, func() bool { return proc.HTTPOK(d.url + "/") }); err != nil {
		p.Stop(syscall.SIGTERM, 5*time.Second)
		return nil, err
	}
	return d, nil
}

// devFunction is one function as GET /v1/apps/{app}/functions lists it: its slug
// (<app>-<function id>) and its UUID, which the runs name.
type devFunction struct {
	Slug string `json:"id"`
	UUID string `json:"internal_id"`
}

// functions returns the functions the dev server has synced for app.
func (d *devServer) functions(app string) ([]devFunction, error) {
	var fns []devFunction
	err := d.get("/v1/apps/"+app+"/functions", &fns)
	return fns, err
}

// devRun is a run as GET /v1/events/{id}/runs and GET /v1/runs/{id} show it.
type devRun struct {
	RunID      string          `json:"run_id"`
	FunctionID string          `json:"function_id"`
	Status     string          `json:"status"`
	StartedAt  time.Time       `json:"run_started_at"`
	EndedAt    *time.Time      `json:"ended_at"`
	Output     json.RawMessage `json:"output"`
}

// ended reports whether the run has ended, whatever its outcome.
func (r devRun) ended() bool {
	return r.Status == "Completed" || r.Status == "Failed" || r.Status == "Cancelled"
}

// runOfEventID returns the run of the function fnID (its UUID) that the event with the id id
// (the sender's, not the dev server's internal id) started, received after since; "" while
// there is none.
func (d *devServer) runOfEventID(id string, since time.Time, fnID string) (string, error) {
	for cursor := ""; ; {
		q := url.Values{"limit": {"50"}, "received_after": {since.UTC().Format(time.RFC3339Nano)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var events []struct {
			InternalID string `json:"internal_id"`
			ID         string `json:"id"`
		}
		if err := d.get("/v1/events?"+q.Encode(), &events); err != nil {
			return "", err
		}
		for _, e := range events {
			if e.ID != id {
				continue
			}
			runs, err := d.eventRuns(e.InternalID)
			if err != nil {
				return "", err
			}
			for _, r := range runs {
				if r.FunctionID == fnID {
					return r.RunID, nil
				}
			}
		}
		if len(events) < 50 {
			return "", nil
		}
		cursor = events[len(events)-1].InternalID
	}
}

// eventRuns returns the runs the event eventID started.
func (d *devServer) eventRuns(eventID string) ([]devRun, error) {
	var runs []devRun
	err := d.get("/v1/events/"+eventID+"/runs", &runs)
	return runs, err
}

// run returns the run runID as it is now.
func (d *devServer) run(runID string) (devRun, error) {
	var r devRun
	err := d.get("/v1/runs/"+runID, &r)
	return r, err
}

// cancel asks the dev server to cancel the run runID.
func (d *devServer) cancel(runID string) error {
	req, _ := http.NewRequest(http.MethodDelete, d.url+"/v1/runs/"+runID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// stateSize is what a run's memoized state held at one moment: the step outputs, as the
// executor keeps them and sends them to the SDK with each call (GET /v0/runs/{id}/actions,
// the run's state while it runs; gone once it ends).
type stateSize struct {
	Steps   int    // step outputs held
	Total   int    // their bytes
	Largest int    // the largest one's bytes
	Step    string // and its step's hashed id
}

// actions reads the run's memoized step outputs now. It returns an error once the run's
// state is gone (the run ended).
func (d *devServer) actions(runID string) (stateSize, error) {
	resp, err := http.Get(d.url + "/v0/runs/" + runID + "/actions")
	if err != nil {
		return stateSize{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return stateSize{}, fmt.Errorf("GET /v0/runs/%s/actions = %d", runID, resp.StatusCode)
	}
	var acts map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&acts); err != nil {
		return stateSize{}, err
	}
	s := stateSize{Steps: len(acts)}
	for id, raw := range acts {
		s.Total += len(raw)
		if len(raw) > s.Largest {
			s.Largest, s.Step = len(raw), id
		}
	}
	return s, nil
}

// stateWatch polls a run's memoized state (actions) until stopped, keeping the largest seen:
// the state grows with every step and is dropped when the run ends.
type stateWatch struct {
	mu   sync.Mutex
	max  stateSize
	last int // step outputs at the last poll
	stop chan struct{}
	done chan struct{}
}

// watchState starts polling the state of runID every interval.
func (d *devServer) watchState(runID string, interval time.Duration) *stateWatch {
	w := &stateWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			if s, err := d.actions(runID); err == nil {
				w.mu.Lock()
				w.last = s.Steps
				if s.Total > w.max.Total {
					w.max.Total, w.max.Steps = s.Total, s.Steps
				}
				if s.Largest > w.max.Largest {
					w.max.Largest, w.max.Step = s.Largest, s.Step
				}
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-time.After(interval):
			}
		}
	}()
	return w
}

// steps returns how many step outputs the state held when last polled: it grows while the
// run makes progress.
func (w *stateWatch) steps() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// end stops polling and returns the largest state seen.
func (w *stateWatch) end() stateSize {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}

// traceSteps is what a run's trace says about its steps once it ended.
type traceSteps struct {
	Steps       int    // the step spans (the finalization not counted)
	Attempts    int    // their executions, retries included
	Largest     int    // the largest step output's bytes
	LargestStep string // its name
	Total       int    // every step output's bytes
	Failed      []string
	Kinds       map[string]int // the steps by name less its number (org-members-3: org-members)
}

// trace reads the run's trace (what the dev server's UI shows) and every step's output.
func (d *devServer) trace(runID string) (traceSteps, error) {
	tr, err := inngestdev.Trace(d.url, runID)
	if err != nil {
		return traceSteps{}, err
	}
	var ts traceSteps
	for _, s := range tr.ChildrenSpans {
		if s.StepOp == nil || *s.StepOp != "RUN" {
			continue // the finalization, or a span not (yet) a step's
		}
		ts.Steps++
		if ts.Kinds == nil {
			ts.Kinds = map[string]int{}
		}
		ts.Kinds[strings.TrimRight(strings.TrimRight(s.Name, "0123456789"), "-")]++
		ts.Attempts += s.Executions()
		if s.Status == "FAILED" {
			ts.Failed = append(ts.Failed, s.Name)
		}
		if s.OutputID == nil {
			continue
		}
		var out struct {
			Output struct {
				Data *string `json:"data"`
			} `json:"runTraceSpanOutputByID"`
		}
		if err := d.gql(`query($id: String!) { runTraceSpanOutputByID(outputID: $id) { data } }`, map[string]any{"id": *s.OutputID}, &out); err != nil {
			return ts, fmt.Errorf("output of step %s: %w", s.Name, err)
		}
		if out.Output.Data != nil {
			n := len(*out.Output.Data)
			ts.Total += n
			if n > ts.Largest {
				ts.Largest, ts.LargestStep = n, s.Name
			}
		}
	}
	return ts, nil
}

// gql runs a GraphQL query against the dev server's API (inngestdev.Query).
func (d *devServer) gql(query string, vars map[string]any, out any) error {
	return inngestdev.Query(d.url, query, vars, out)
}

// get GETs path from the dev server's REST API and decodes its "data" (or whole body).
func (d *devServer) get(path string, v any) error {
	resp, err := http.Get(d.url + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s = %d: %s", path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var wrapped struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(body, &wrapped) == nil && len(wrapped.Data) > 0 {
		body = wrapped.Data
	}
	return json.Unmarshal(body, v)
}

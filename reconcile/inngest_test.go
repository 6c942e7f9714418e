package reconcile_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/inngest/inngestgo"

	"clerksync/reconcile"
)

// testAppID is the app id of the Inngest client the tests serve the function from.
const testAppID = "reconcile-test"

// inngestCall is one call Inngest made to the function while driving a run.
type inngestCall struct {
	// Step is the step the call ran, "" for the call that ended the run.
	Step string
	// Op is what the call gave: "StepRun" (the step's output), "StepError" (the step failed;
	// Inngest calls it again), or "" for the end of the run.
	Op string
	// RetryAt is when the answer asked Inngest to call again (its Retry-After header), zero
	// when it did not say.
	RetryAt time.Time
	// At is when the call was made.
	At time.Time
	// Data is the step's output, for a StepRun.
	Data json.RawMessage
}

// memoized is one step's output as Inngest memoizes it and hands it back on later calls.
type memoized struct {
	// Step is the step's id, as the code names it (check-instance, survey-0, ...).
	Step string
	// Data is its output, JSON.
	Data string
}

// generatorOp is one opcode of the serve handler's 206 answer.
type generatorOp struct {
	Op   string          `json:"op"`
	ID   string          `json:"id"`
	Name string          `json:"name"`
	Data json.RawMessage `json:"data"`
}

// cronEvent is the event Inngest starts a cron run with.
func cronEvent() map[string]any {
	return map[string]any{
		"name": "inngest/scheduled.timer", "id": "01JCRONCRONCRONCRONCRONCRO", "ts": 1700000000000,
		"data": map[string]any{"cron": reconcile.DefaultSchedule},
	}
}

// requestEvent is reconcile.RequestEvent with data, as the reconcile command sends it.
func requestEvent(data map[string]any) map[string]any {
	return map[string]any{"name": reconcile.RequestEvent, "id": "01JREQUESTREQUESTREQUESTRE", "ts": 1700000000000, "data": data}
}

// driveRun runs reconcile-users-with-clerk of r the way Inngest runs it on its cron schedule
// (driveFunction).
func driveRun(t *testing.T, r *reconcile.Reconciler, maxCalls int) ([]inngestCall, reconcile.Summary) {
	t.Helper()
	return driveRunOn(t, r, cronEvent(), maxCalls)
}

// driveRunOn runs reconcile-users-with-clerk of r the way Inngest runs it when evt starts it
// (driveFunction).
func driveRunOn(t *testing.T, r *reconcile.Reconciler, evt map[string]any, maxCalls int) ([]inngestCall, reconcile.Summary) {
	t.Helper()
	calls, out := driveFunction(t, r.Register, reconcile.FunctionID, evt, maxCalls)
	var sum reconcile.Summary
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("run output %s: %v", out, err)
	}
	return calls, sum
}

// driveOrgRun runs reconcile-organizations-with-clerk of r the way Inngest runs it on its cron
// schedule (driveFunction).
func driveOrgRun(t *testing.T, r *reconcile.Reconciler, maxCalls int) ([]inngestCall, reconcile.OrganizationsSummary) {
	t.Helper()
	return driveOrgRunOn(t, r, cronEvent(), maxCalls)
}

// driveOrgRunOn runs reconcile-organizations-with-clerk of r the way Inngest runs it when evt
// starts it (driveFunction).
func driveOrgRunOn(t *testing.T, r *reconcile.Reconciler, evt map[string]any, maxCalls int) ([]inngestCall, reconcile.OrganizationsSummary) {
	t.Helper()
	calls, out := driveFunction(t, r.RegisterOrganizations, reconcile.OrganizationsFunctionID, evt, maxCalls)
	var sum reconcile.OrganizationsSummary
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("run output %s: %v", out, err)
	}
	return calls, sum
}

// driveFunction runs the function fnID, which register creates, the way Inngest runs it when
// the event evt starts it, through the Inngest SDK's serve handler (dev mode, so unsigned): it
// posts the event with the outputs of the steps done so far, memoizes the output of the step each call ran,
// and calls again; a step that failed is called again at once (not at its Retry-After), as
// another attempt. It returns every call and the run's output. It fails the test when a call
// answers anything but a step or the end of the run, or when the run has not ended after
// maxCalls calls.
func driveFunction(t *testing.T, register func(inngestgo.Client, string) error, fnID string, evt map[string]any, maxCalls int) ([]inngestCall, json.RawMessage) {
	t.Helper()
	return driveFunctionFrom(t, register, fnID, evt, nil, maxCalls)
}

// driveFunctionFrom is driveFunction with the steps done already: Inngest hands their outputs
// to every call, as it does to a run that an earlier version of the code started.
func driveFunctionFrom(t *testing.T, register func(inngestgo.Client, string) error, fnID string, evt map[string]any, done []memoized, maxCalls int) ([]inngestCall, json.RawMessage) {
	t.Helper()
	client, err := inngestgo.NewClient(inngestgo.ClientOpts{AppID: testAppID, Dev: inngestgo.BoolPtr(true), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := register(client, reconcile.DefaultSchedule); err != nil {
		t.Fatal(err)
	}
	handler := client.Serve()
	var calls []inngestCall
	steps := map[string]json.RawMessage{}
	var stack []string
	for _, d := range done {
		// The SDK's step hash: the SHA-1 of the step id (ids are unique within a run).
		sum := sha1.Sum([]byte(d.Step))
		id := hex.EncodeToString(sum[:])
		steps[id] = json.RawMessage(`{"data":` + d.Data + `}`)
		stack = append(stack, id)
	}
	attempt := 0
	for range maxCalls {
		rec := httptest.NewRecorder()
		at := time.Now()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/?fnId="+testAppID+"-"+fnID,
			bytes.NewReader(invokeBody(t, evt, steps, stack, attempt))))
		call := inngestCall{RetryAt: retryAtHeader(t, rec.Header()), At: at}
		switch rec.Code {
		case http.StatusOK:
			return append(calls, call), json.RawMessage(rec.Body.Bytes())
		case http.StatusPartialContent:
		default:
			t.Fatalf("call %d = %d %s; want 206 (a step) or 200 (the run's end)", len(calls)+1, rec.Code, rec.Body)
		}
		var ops []generatorOp
		if err := json.Unmarshal(rec.Body.Bytes(), &ops); err != nil || len(ops) != 1 {
			t.Fatalf("call %d answered %s (%v); want one opcode", len(calls)+1, rec.Body, err)
		}
		call.Step, call.Op = ops[0].Name, ops[0].Op
		if ops[0].Op == "StepRun" {
			call.Data = ops[0].Data
		}
		calls = append(calls, call)
		switch ops[0].Op {
		case "StepRun":
			steps[ops[0].ID] = json.RawMessage(`{"data":` + string(ops[0].Data) + `}`)
			stack = append(stack, ops[0].ID)
			attempt = 0
		case "StepError":
			attempt++
		default:
			t.Fatalf("call %d gave opcode %s (%s); want StepRun or StepError", len(calls), ops[0].Op, ops[0].Name)
		}
	}
	t.Fatalf("the run has not ended after %d calls: %+v", maxCalls, calls)
	return nil, nil
}

// invokeBody returns what Inngest posts to call the function: the event evt that started the
// run, the memoized step outputs and the attempt of the step to run.
func invokeBody(t *testing.T, evt map[string]any, steps map[string]json.RawMessage, stack []string, attempt int) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"event": evt, "events": []any{evt}, "steps": steps,
		"ctx": map[string]any{
			"fn_id": "6f1d3c2a-5b8e-4f7a-9c0d-1e2f3a4b5c6d", "run_id": runIDOf(evt),
			"attempt": attempt, "stack": map[string]any{"current": len(stack), "stack": stack},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runIDOf is the id of the run that evt starts: 01JRUNRUNRUNRUNRUNRUNRUNRU for the cron event,
// another for each other event id, as Inngest gives each run its own.
func runIDOf(evt map[string]any) string {
	if id, ok := evt["id"].(string); ok && id != cronEvent()["id"] {
		return "run-" + id
	}
	return "01JRUNRUNRUNRUNRUNRUNRUNRU"
}

// retryAtHeader returns the time of the Retry-After header the serve handler answered with
// (RFC 3339), zero for none.
func retryAtHeader(t *testing.T, h http.Header) time.Time {
	t.Helper()
	v := h.Get("Retry-After")
	if v == "" {
		return time.Time{}
	}
	at, err := time.Parse(time.RFC3339, v)
	if err != nil {
		t.Fatalf("Retry-After %q: %v", v, err)
	}
	return at
}

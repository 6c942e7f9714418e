// Package inngestdev reads the Inngest dev server's GraphQL API, what its UI reads, for the
// measuring tools (bench, tools/reconcile-scale): queries, and runs' traces with the
// executions of their steps.
package inngestdev

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
)

// Query runs a GraphQL query with vars against the dev server at devURL (POST /v0/gql) and
// decodes the answer's data into out. It returns the request's error, one for an answer that
// is not GraphQL's JSON, the answer's first GraphQL error, or the decoding's.
func Query(devURL, query string, vars map[string]any, out any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	resp, err := http.Post(devURL+"/v0/gql", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Data   json.RawMessage
		Errors []struct{ Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("GraphQL answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("GraphQL: %s", r.Errors[0].Message)
	}
	return json.Unmarshal(r.Data, out)
}

// Span is a span of a run's trace (GraphQL runTrace), as far as counting steps goes. The dev
// server's traces have the run, then its step spans and the finalization, then each step's
// attempts.
type Span struct {
	Name          string  `json:"name"`
	Status        string  `json:"status"`
	StepOp        *string `json:"stepOp"` // set on a step's span ("RUN" for step.Run)
	StepID        *string `json:"stepID"`
	OutputID      *string `json:"outputID"` // of the step's output (runTraceSpanOutputByID)
	Attempts      *int    `json:"attempts"`
	ChildrenSpans []Span  `json:"childrenSpans"`
}

// spanFields are the fields of Span that Trace asks for at each level.
const spanFields = `name status stepOp stepID outputID attempts`

// Trace returns the trace of the run runID, four levels deep (the run, its steps, their
// attempts, and one more), or the query's error.
func Trace(devURL, runID string) (Span, error) {
	var tr struct {
		RunTrace Span `json:"runTrace"`
	}
	q := `query($id: String!) { runTrace(runID: $id) { ` + spanFields +
		` childrenSpans { ` + spanFields + ` childrenSpans { ` + spanFields + ` childrenSpans { ` + spanFields + ` } } } } }`
	if err := Query(devURL, q, map[string]any{"id": runID}, &tr); err != nil {
		return Span{}, fmt.Errorf("trace of run %s: %w", runID, err)
	}
	return tr.RunTrace, nil
}

// Executions returns how often the step of span s ran: once per attempt span beneath it when
// the trace lists them, or else once plus its attempt number (0 for the first).
func (s Span) Executions() int {
	n := 0
	for _, c := range s.ChildrenSpans {
		if c.StepOp != nil {
			n++
		}
	}
	if n == 0 {
		n = 1
		if s.Attempts != nil && *s.Attempts > 0 {
			n += *s.Attempts
		}
	}
	return n
}

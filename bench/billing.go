package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// billing is what Inngest Cloud bills for a burst: function runs and step executions (an
// execution is one run or one step execution: a run of one step is two).
type billing struct {
	runs, steps int
	// traced is how many runs' traces were read to count the steps: all of them, or an
	// evenly spread sample of a large burst, steps then being scaled up to every run.
	traced int
}

func (b billing) perUser(users int) (runs, steps, executions float64) {
	u := float64(users)
	return float64(b.runs) / u, float64(b.steps) / u, float64(b.runs+b.steps) / u
}

// maxTraced bounds the traces countBilling reads.
const maxTraced = 200

// countBilling counts, through the dev server's GraphQL API (what its UI reads), the runs
// queued since from (runs' totalCount), and the step executions in their traces (runTrace,
// span.stepExecutions), over every run or an evenly spread sample of maxTraced.
func countBilling(devURL string, from time.Time) (billing, error) {
	var ids []string
	var total int
	after := ""
	for {
		var page struct {
			Runs struct {
				TotalCount int
				Edges      []struct{ Node struct{ ID string } }
				PageInfo   struct {
					HasNextPage bool
					EndCursor   string
				}
			}
		}
		vars := map[string]any{"from": from.UTC().Format(time.RFC3339)}
		if after != "" {
			vars["after"] = after
		}
		err := gql(devURL, `query($from: Time!, $after: String) {
			runs(first: 400, after: $after, orderBy: [{field: QUEUED_AT, direction: ASC}], filter: {from: $from}) {
				totalCount edges { node { id } } pageInfo { hasNextPage endCursor } } }`, vars, &page)
		if err != nil {
			return billing{}, err
		}
		total = page.Runs.TotalCount
		for _, e := range page.Runs.Edges {
			ids = append(ids, e.Node.ID)
		}
		if !page.Runs.PageInfo.HasNextPage || page.Runs.PageInfo.EndCursor == "" || len(page.Runs.Edges) == 0 {
			break
		}
		after = page.Runs.PageInfo.EndCursor
	}
	total = max(total, len(ids))
	sample := ids
	if len(ids) > maxTraced {
		sample = make([]string, 0, maxTraced)
		for i := range maxTraced {
			sample = append(sample, ids[i*len(ids)/maxTraced])
		}
	}
	steps := 0
	for _, id := range sample {
		var tr struct {
			RunTrace span
		}
		err := gql(devURL, `query($id: String!) { runTrace(runID: $id) {
			stepOp attempts childrenSpans { stepOp attempts childrenSpans { stepOp attempts childrenSpans { stepOp attempts } } } } }`,
			map[string]any{"id": id}, &tr)
		if err != nil {
			return billing{}, fmt.Errorf("trace of run %s: %w", id, err)
		}
		steps += tr.RunTrace.stepExecutions()
	}
	b := billing{runs: total, steps: steps, traced: len(sample)}
	if len(sample) > 0 && len(sample) < total {
		b.steps = int(float64(steps)*float64(total)/float64(len(sample)) + 0.5)
	}
	return b, nil
}

// span is a span of a run's trace, as far as counting goes.
type span struct {
	StepOp        *string
	Attempts      *int
	ChildrenSpans []span
}

// stepExecutions counts the step executions under s: a step's span (stepOp set; the dev
// server's traces have Run -> [step spans, Finalization]) counts once per attempt, from the
// attempt spans beneath it when the trace lists them, or else from its attempt number (0 for
// the first).
func (s span) stepExecutions() int {
	if s.StepOp != nil {
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
	n := 0
	for _, c := range s.ChildrenSpans {
		n += c.stepExecutions()
	}
	return n
}

// gql runs a GraphQL query against the dev server.
func gql(devURL, query string, vars map[string]any, out any) error {
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

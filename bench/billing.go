package main

import (
	"time"

	"clerksync/internal/inngestdev"
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
// stepExecutions), over every run or an evenly spread sample of maxTraced.
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
		err := inngestdev.Query(devURL, `query($from: Time!, $after: String) {
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
		tr, err := inngestdev.Trace(devURL, id)
		if err != nil {
			return billing{}, err
		}
		steps += stepExecutions(tr)
	}
	b := billing{runs: total, steps: steps, traced: len(sample)}
	if len(sample) > 0 && len(sample) < total {
		b.steps = int(float64(steps)*float64(total)/float64(len(sample)) + 0.5)
	}
	return b, nil
}

// stepExecutions counts the step executions under s: a step's span (stepOp set; the dev
// server's traces have Run -> [step spans, Finalization]) counts Executions, and any other
// span the executions beneath it.
func stepExecutions(s inngestdev.Span) int {
	if s.StepOp != nil {
		return s.Executions()
	}
	n := 0
	for _, c := range s.ChildrenSpans {
		n += stepExecutions(c)
	}
	return n
}

package backfill

import (
	"fmt"
	"io"
	"maps"
	"slices"
)

// Reasons for skipping a user in an import.
const (
	SkipDeleted = "deleted in the database (a tombstone; never brought back)"
	SkipInvalid = "invalid (no id or no usable timestamp)"
)

// Tally counts what an import did to each user.
type Tally struct {
	// Created users were not in the database.
	Created int
	// Updated users were in the database with older data.
	Updated int
	// Unchanged users were in the database with the same data or newer (a rerun, or a
	// webhook that came later than the source's data).
	Unchanged int
	// Skipped counts the users left out, by reason (SkipDeleted, SkipInvalid).
	Skipped map[string]int
}

// Skip counts one user left out for reason.
func (t *Tally) Skip(reason string) {
	if t.Skipped == nil {
		t.Skipped = map[string]int{}
	}
	t.Skipped[reason]++
}

// SkippedTotal returns how many users were left out, whatever the reason.
func (t *Tally) SkippedTotal() int {
	n := 0
	for _, c := range t.Skipped {
		n += c
	}
	return n
}

// Total returns how many users the tally has counted.
func (t *Tally) Total() int { return t.Created + t.Updated + t.Unchanged + t.SkippedTotal() }

// Reasons returns the skip reasons, sorted.
func (t *Tally) Reasons() []string { return slices.Sorted(maps.Keys(t.Skipped)) }

// WriteSummary writes to w what the backfill from source did (a description such as "the
// export users.csv"), with the reasons users were skipped; complete is false when the
// backfill stopped early. Write errors are ignored.
func (t *Tally) WriteSummary(w io.Writer, source string, complete bool) {
	status := "backfill done"
	if !complete {
		status = "backfill stopped early"
	}
	fmt.Fprintf(w, "%s: %d users from %s\n", status, t.Total(), source)
	fmt.Fprintf(w, "  created    %7d\n", t.Created)
	fmt.Fprintf(w, "  updated    %7d\n", t.Updated)
	fmt.Fprintf(w, "  unchanged  %7d  (the database had this version or a newer one)\n", t.Unchanged)
	fmt.Fprintf(w, "  skipped    %7d\n", t.SkippedTotal())
	for _, r := range t.Reasons() {
		fmt.Fprintf(w, "    %7d  %s\n", t.Skipped[r], r)
	}
}

package backfill

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Reasons for skipping a user (organization, membership) in an import.
const (
	SkipDeleted = "deleted in the database (a tombstone; never brought back)"
	SkipInvalid = "invalid (no id or no usable timestamp)"
)

// Tally counts what an import did to each user; its Organizations and Memberships, what it
// did to each organization and membership, in the same way.
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
	// Organizations and Memberships count the organizations and memberships imported (their
	// own Organizations and Memberships stay nil); nil when none were read: an export, an
	// import stopped before them, or an instance with organizations turned off.
	Organizations, Memberships *Tally
	// OrganizationsNotEnabled is true when Clerk answered that the instance has
	// organizations turned off: there were none to import.
	OrganizationsNotEnabled bool
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

// Total returns how many users the tally has counted (organizations and memberships apart).
func (t *Tally) Total() int { return t.Created + t.Updated + t.Unchanged + t.SkippedTotal() }

// Reasons returns the skip reasons, sorted.
func (t *Tally) Reasons() []string { return slices.Sorted(maps.Keys(t.Skipped)) }

// WriteSummary writes to w what the backfill from source did (a description such as "the
// export users.csv"), with the reasons users were skipped, then a line for the organizations
// and one for the memberships when it read them; complete is false when the backfill stopped
// early. Write errors are ignored.
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
	switch {
	case t.OrganizationsNotEnabled:
		fmt.Fprintln(w, "organizations: none (the Clerk instance has organizations turned off)")
	case t.Organizations != nil:
		fmt.Fprintf(w, "organizations: %s\n", t.Organizations.oneLine())
		if t.Memberships != nil {
			fmt.Fprintf(w, "memberships: %s\n", t.Memberships.oneLine())
		}
	}
}

// counts returns the counts of t as "created 1, updated 0, unchanged 2, skipped 0".
func (t *Tally) counts() string {
	return fmt.Sprintf("created %d, updated %d, unchanged %d, skipped %d", t.Created, t.Updated, t.Unchanged, t.SkippedTotal())
}

// oneLine returns the total and counts of t on one line, with the skip reasons: "3 (created 2,
// updated 0, unchanged 0, skipped 1: 1 deleted in the database ...)".
func (t *Tally) oneLine() string {
	var reasons []string
	for _, r := range t.Reasons() {
		reasons = append(reasons, fmt.Sprintf("%d %s", t.Skipped[r], r))
	}
	s := fmt.Sprintf("%d (%s", t.Total(), t.counts())
	if len(reasons) > 0 {
		s += ": " + strings.Join(reasons, "; ")
	}
	return s + ")"
}

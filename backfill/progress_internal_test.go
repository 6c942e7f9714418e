package backfill

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// TestProgressBar: on a terminal the progress is a bar redrawn in place, at most every 100 ms
// and always at the last user, and Finish ends its line.
func TestProgressBar(t *testing.T) {
	var out bytes.Buffer
	p := &Progress{w: &out, tty: true, every: 1, total: 4}
	var tally Tally
	for i := range 4 {
		tally.Created++
		p.update(&tally)
		if i == 0 {
			p.drawn = time.Now().Add(time.Hour) // the next users come too soon to redraw
		}
	}
	// The first user draws (nothing drawn yet), the next two come too soon, the last draws.
	want := "\r[#######-----------------------] 1/4 users: created 1, updated 0, unchanged 0, skipped 0\x1b[K" +
		"\r[##############################] 4/4 users: created 4, updated 0, unchanged 0, skipped 0\x1b[K"
	if out.String() != want {
		t.Errorf("bar = %q; want %q", out.String(), want)
	}
	out.Reset()
	tally.Skip(SkipDeleted) // more than the total: the bar stays full
	p.Finish(&tally)
	if want := "\r[##############################] 5/4 users: created 4, updated 0, unchanged 0, skipped 1\x1b[K\n"; out.String() != want {
		t.Errorf("Finish = %q; want %q", out.String(), want)
	}

	out.Reset()
	(&Progress{w: &out, tty: true}).Finish(&Tally{Updated: 2})
	if want := "\r2 users: created 0, updated 2, unchanged 0, skipped 0\x1b[K\n"; out.String() != want {
		t.Errorf("Finish with no total = %q; want %q", out.String(), want)
	}
}

func TestIsTerminal(t *testing.T) {
	if isTerminal(&bytes.Buffer{}) {
		t.Error("isTerminal(a buffer) = true")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("isTerminal(a regular file) = true")
	}
	if p := NewProgress(f, 0); p.tty || p.every != 1 {
		t.Errorf("NewProgress(a file, 0) = tty %v, every %d; want plain lines every user", p.tty, p.every)
	}
}

// TestProgressOrganizationsBar: on a terminal, the organizations get a bar of their own once
// the users' is complete, and Finish ends the organizations' line.
func TestProgressOrganizationsBar(t *testing.T) {
	var out bytes.Buffer
	p := &Progress{w: &out, tty: true, every: 1, total: 1, orgTotal: 2}
	tally := Tally{Created: 1, Organizations: &Tally{}, Memberships: &Tally{}}
	p.update(&tally)
	out.Reset()
	for range 2 {
		tally.Organizations.Created++
		tally.Memberships.Unchanged += 2
		p.updateOrgs(&tally)
	}
	p.Finish(&tally)
	want := "\r[##############################] 1/1 users: created 1, updated 0, unchanged 0, skipped 0\x1b[K\n" +
		"\r[###############---------------] 1/2 organizations: created 1, updated 0, unchanged 0, skipped 0; 2 memberships: created 0, updated 0, unchanged 2, skipped 0\x1b[K" +
		"\r[##############################] 2/2 organizations: created 2, updated 0, unchanged 0, skipped 0; 4 memberships: created 0, updated 0, unchanged 4, skipped 0\x1b[K" +
		"\r[##############################] 2/2 organizations: created 2, updated 0, unchanged 0, skipped 0; 4 memberships: created 0, updated 0, unchanged 4, skipped 0\x1b[K\n"
	if out.String() != want {
		t.Errorf("bars = %q; want %q", out.String(), want)
	}
}

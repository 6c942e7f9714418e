package backfill

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Progress shows how far a backfill is: a bar redrawn in place when its writer is a terminal,
// otherwise a plain line every `every` users; then, once FromAPI reaches the organizations, a
// line of its own for them (and their memberships), every `every` organizations. FromAPI and
// FromExport update it; Finish shows the final counts. Write errors are ignored.
type Progress struct {
	w     io.Writer
	tty   bool
	every int
	// total is how many users there are, when known (0: unknown).
	total   int
	drawn   time.Time
	printed int
	// orgs is true once the organizations' progress is shown; orgTotal is how many
	// organizations there are, when known, and orgPrinted how many the last plain line counted.
	orgs       bool
	orgTotal   int
	orgPrinted int
}

// NewProgress returns a progress display on w: a bar when w is a terminal (an *os.File on a
// character device), otherwise a plain line every `every` users (at least 1).
func NewProgress(w io.Writer, every int) *Progress {
	return &Progress{w: w, tty: isTerminal(w), every: max(every, 1)}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// update shows the counts after one more user.
func (p *Progress) update(t *Tally) {
	n := t.Total()
	if p.tty {
		if time.Since(p.drawn) >= 100*time.Millisecond || n == p.total {
			p.drawn = time.Now()
			fmt.Fprintf(p.w, "\r%s\x1b[K", p.line(t))
		}
		return
	}
	if n-p.printed >= p.every {
		p.printed = n
		fmt.Fprintln(p.w, "backfill: "+p.line(t))
	}
}

// updateOrgs shows the counts after one more organization (and its memberships). The first
// call ends the users' progress with their final counts.
func (p *Progress) updateOrgs(t *Tally) {
	if !p.orgs {
		p.finishUsers(t)
		p.orgs, p.drawn = true, time.Time{}
	}
	n := t.Organizations.Total()
	if p.tty {
		if time.Since(p.drawn) >= 100*time.Millisecond || n == p.orgTotal {
			p.drawn = time.Now()
			fmt.Fprintf(p.w, "\r%s\x1b[K", p.orgLine(t))
		}
		return
	}
	if n-p.orgPrinted >= p.every {
		p.orgPrinted = n
		fmt.Fprintln(p.w, "backfill: "+p.orgLine(t))
	}
}

// Finish shows the final counts of t, and ends the bar's line on a terminal. Call it once,
// after the import, whether it succeeded or not.
func (p *Progress) Finish(t *Tally) {
	if p.orgs && t.Organizations != nil {
		if p.tty {
			fmt.Fprintf(p.w, "\r%s\x1b[K\n", p.orgLine(t))
		} else if t.Organizations.Total() != p.orgPrinted {
			p.orgPrinted = t.Organizations.Total()
			fmt.Fprintln(p.w, "backfill: "+p.orgLine(t))
		}
		return
	}
	p.finishUsers(t)
}

// finishUsers shows the final counts of the users in t, and ends the bar's line on a terminal.
func (p *Progress) finishUsers(t *Tally) {
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K\n", p.line(t))
		return
	}
	if t.Total() != p.printed {
		p.printed = t.Total()
		fmt.Fprintln(p.w, "backfill: "+p.line(t))
	}
}

// line is the users' progress as one line: a bar on a terminal when the total is known, then
// the counts.
func (p *Progress) line(t *Tally) string {
	return p.bar(t.Total(), p.total, "users: "+t.counts())
}

// orgLine is the organizations' progress as one line, as line is the users', with the
// memberships' counts after.
func (p *Progress) orgLine(t *Tally) string {
	o, m := t.Organizations, t.Memberships
	if m == nil {
		m = &Tally{}
	}
	return p.bar(o.Total(), p.orgTotal, fmt.Sprintf("organizations: %s; %d memberships: %s", o.counts(), m.Total(), m.counts()))
}

// bar returns "n/total what" ("n what" when the total is unknown), after a bar on a terminal
// when the total is known.
func (p *Progress) bar(n, total int, what string) string {
	if total <= 0 {
		return fmt.Sprintf("%d %s", n, what)
	}
	s := fmt.Sprintf("%d/%d %s", n, total, what)
	if !p.tty {
		return s
	}
	const width = 30
	done := min(width, n*width/total)
	return "[" + strings.Repeat("#", done) + strings.Repeat("-", width-done) + "] " + s
}

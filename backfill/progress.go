package backfill

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Progress shows how far a backfill is: a bar redrawn in place when its writer is a terminal,
// otherwise a plain line every `every` users. FromAPI and FromExport update it; Finish shows
// the final counts. Write errors are ignored.
type Progress struct {
	w     io.Writer
	tty   bool
	every int
	// total is how many users there are, when known (0: unknown).
	total   int
	drawn   time.Time
	printed int
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

// Finish shows the final counts of t, and ends the bar's line on a terminal. Call it once,
// after the import, whether it succeeded or not.
func (p *Progress) Finish(t *Tally) {
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K\n", p.line(t))
		return
	}
	if t.Total() != p.printed {
		p.printed = t.Total()
		fmt.Fprintln(p.w, "backfill: "+p.line(t))
	}
}

// line is the progress as one line: a bar on a terminal when the total is known, then the
// counts.
func (p *Progress) line(t *Tally) string {
	n := t.Total()
	counts := fmt.Sprintf("created %d, updated %d, unchanged %d, skipped %d", t.Created, t.Updated, t.Unchanged, t.SkippedTotal())
	if p.total <= 0 {
		return fmt.Sprintf("%d users: %s", n, counts)
	}
	s := fmt.Sprintf("%d/%d users: %s", n, p.total, counts)
	if !p.tty {
		return s
	}
	const width = 30
	done := min(width, n*width/p.total)
	return "[" + strings.Repeat("#", done) + strings.Repeat("-", width-done) + "] " + s
}

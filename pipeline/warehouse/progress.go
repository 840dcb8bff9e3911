package warehouse

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress draws one live line on a terminal for the stage that is running:
// its name, what is done of the total, the rate and the time left. A line
// appears only once a stage has run for a second, is redrawn at most ten
// times a second, and is cleared when the stage is done. Whatever else
// writes to the same terminal (the log) goes through Interrupt, which
// clears the line first and redraws it after, so the two never share a
// line.
//
// A nil *Progress draws nothing: that is what a stage gets when output is
// not a terminal. Counting is an atomic add; drawing happens on a ticker
// goroutine, never in a stage's loop.
type Progress struct {
	mu     sync.Mutex // guards out and everything below; held while a log record is written
	out    io.Writer
	now    func() time.Time
	width  int
	Delay  time.Duration // a stage's line appears after it has run this long
	every  time.Duration // at most one redraw per interval
	manual bool          // no ticker: the caller calls Redraw (tests)

	tasks  []*Task // running, oldest first; the newest is drawn
	drawn  bool    // a line is on the screen
	shown  string  // the line on the screen
	last   time.Time
	ticker *time.Ticker
	stop   chan struct{}
}

// ProgressOptions configure NewProgress.
type ProgressOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Width is the terminal's width in columns; a line is cut to fit
	// (a wrapped line could not be cleared). 0 means 80.
	Width int
	// Manual draws only when Redraw is called, with no ticker goroutine.
	Manual bool
}

// NewProgress draws on out, which must be a terminal (the caller checks).
func NewProgress(out io.Writer, opts ProgressOptions) *Progress {
	p := &Progress{out: out, now: opts.Now, width: opts.Width, Delay: time.Second, every: 100 * time.Millisecond, manual: opts.Manual}
	if p.now == nil {
		p.now = time.Now
	}
	if p.width <= 0 {
		p.width = 80
	}
	return p
}

// Task is one stage's count of work done. A nil *Task counts nothing.
type Task struct {
	p           *Progress
	stage, unit string
	total       int64
	done        atomic.Int64
	sub         atomic.Int64 // a second count (rows while files are counted), shown with its rate
	subUnit     string
	started     time.Time
}

// Start begins counting a stage's work: total units (files, rows,
// analyses, reports; 0 when not known).
func (p *Progress) Start(stage, unit string, total int64) *Task {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := &Task{p: p, stage: stage, unit: unit, total: total, started: p.now()}
	p.tasks = append(p.tasks, t)
	if !p.manual && p.ticker == nil {
		p.ticker = time.NewTicker(p.every)
		p.stop = make(chan struct{})
		go p.tick(p.ticker, p.stop)
	}
	return t
}

func (p *Progress) tick(t *time.Ticker, stop chan struct{}) {
	for {
		select {
		case <-t.C:
			p.Redraw()
		case <-stop:
			return
		}
	}
}

// Counting adds a second count to the line, in unit (rows while files are
// counted); its rate is the one shown. It returns t.
func (t *Task) Counting(unit string) *Task {
	if t != nil {
		t.p.mu.Lock()
		t.subUnit = unit
		t.p.mu.Unlock()
	}
	return t
}

// Add counts n units done.
func (t *Task) Add(n int64) {
	if t != nil {
		t.done.Add(n)
	}
}

// AddSub counts n units of the second count (see Counting).
func (t *Task) AddSub(n int64) {
	if t != nil {
		t.sub.Add(n)
	}
}

// Done ends the task and clears its line. Calling it twice is harmless.
func (t *Task) Done() {
	if t == nil {
		return
	}
	p := t.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.tasks {
		if x == t {
			p.tasks = append(p.tasks[:i], p.tasks[i+1:]...)
			break
		}
	}
	p.clearLocked()
	if len(p.tasks) == 0 && p.ticker != nil {
		p.ticker.Stop()
		close(p.stop)
		p.ticker, p.stop = nil, nil
	}
	p.drawLocked(true)
}

// Redraw draws the running task's line if it is due: the task has run for
// a second and the last redraw is a tenth of a second old.
func (p *Progress) Redraw() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drawLocked(false)
}

// Interrupt runs write (which writes whole lines to the terminal) with the
// live line cleared, and draws the line again after.
func (p *Progress) Interrupt(write func() error) error {
	if p == nil {
		return write()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	err := write()
	p.drawLocked(true)
	return err
}

// clearLocked removes the live line, leaving the cursor at the start of
// an empty line.
func (p *Progress) clearLocked() {
	if p.drawn {
		io.WriteString(p.out, "\r\x1b[K")
		p.drawn = false
	}
}

// drawLocked draws the newest task's line when it has run long enough
// and (unless force) the last redraw is old enough.
func (p *Progress) drawLocked(force bool) {
	if len(p.tasks) == 0 {
		return
	}
	now := p.now()
	t := p.tasks[len(p.tasks)-1]
	if now.Sub(t.started) < p.Delay {
		return
	}
	if !force && p.drawn && now.Sub(p.last) < p.every {
		return
	}
	line := t.line(now)
	if len(line) > p.width-1 {
		line = line[:p.width-1]
	}
	if p.drawn && line == p.shown {
		return
	}
	io.WriteString(p.out, "\r\x1b[K"+line)
	p.drawn, p.last, p.shown = true, now, line
}

// line is the task's progress line: stage, done of total, rate, time left.
func (t *Task) line(now time.Time) string {
	elapsed := now.Sub(t.started).Seconds()
	done := t.done.Load()
	var b strings.Builder
	b.WriteString(t.stage)
	b.WriteString("  ")
	if t.total > 0 {
		fmt.Fprintf(&b, "%s/%s %s", groupDigits(done), groupDigits(t.total), t.unit)
	} else {
		fmt.Fprintf(&b, "%s %s", groupDigits(done), t.unit)
	}
	rateN, rateUnit := done, t.unit
	if t.subUnit != "" {
		rateN, rateUnit = t.sub.Load(), t.subUnit
		fmt.Fprintf(&b, ", %s %s", groupDigits(rateN), rateUnit)
	}
	if elapsed > 0 {
		fmt.Fprintf(&b, "  %s %s/s", groupDigits(int64(float64(rateN)/elapsed+0.5)), rateUnit)
	}
	left := "?"
	if t.total > 0 && done > 0 && elapsed > 0 {
		left = clock(time.Duration(float64(t.total-done) * elapsed / float64(done) * float64(time.Second)))
	}
	fmt.Fprintf(&b, "  %s left", left)
	return b.String()
}

// groupDigits writes n with thousands separators: 200,000.
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// clock writes a duration as m:ss, or h:mm:ss from an hour.
func clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s < 0 {
		s = 0
	}
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

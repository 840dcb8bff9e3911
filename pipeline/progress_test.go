package pipeline

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock               { return &fakeClock{t: time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)} }
func testProgress(out *bytes.Buffer, c *fakeClock) *warehouse.Progress {
	return warehouse.NewProgress(out, warehouse.ProgressOptions{Now: c.now, Manual: true, Width: 100})
}

// termScreen plays what a terminal shows for the bytes written to it: "\r"
// returns to the start of the line, "\x1b[K" erases to its end, "\n" ends
// it. It returns the lines as they stand, the last one unfinished.
func termScreen(b []byte) []string {
	var lines []string
	var cur []byte
	col := 0
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '\r':
			col = 0
		case b[i] == '\n':
			lines = append(lines, string(cur))
			cur, col = nil, 0
		case bytes.HasPrefix(b[i:], []byte("\x1b[K")):
			cur = cur[:col]
			i += 2
		default:
			if col < len(cur) {
				cur[col] = b[i]
			} else {
				cur = append(cur, b[i])
			}
			col++
		}
	}
	return append(lines, string(cur))
}

func TestProgressLine(t *testing.T) {
	var out bytes.Buffer
	c := newFakeClock()
	p := testProgress(&out, c)
	task := p.Start("score", "responses", 200_000)
	task.Add(10_000)
	c.advance(500 * time.Millisecond)
	p.Redraw()
	if out.Len() != 0 {
		t.Fatalf("a line within the first second: %q", out.String())
	}
	c.advance(500 * time.Millisecond)
	task.Add(40_000)
	p.Redraw()
	want := "score  50,000/200,000 responses  50,000 responses/s  0:03 left"
	if got := termScreen(out.Bytes()); len(got) != 1 || got[0] != want {
		t.Fatalf("screen %q, want %q", got, want)
	}
	// At most ten redraws a second.
	n := out.Len()
	c.advance(50 * time.Millisecond)
	task.Add(1)
	p.Redraw()
	if out.Len() != n {
		t.Errorf("redrawn after 50 ms: %q", out.String()[n:])
	}
	c.advance(50 * time.Millisecond)
	p.Redraw()
	if out.Len() == n {
		t.Error("not redrawn after 100 ms")
	}
	task.Done()
	if got := termScreen(out.Bytes()); len(got) != 1 || got[0] != "" {
		t.Errorf("after Done the screen shows %q", got)
	}
	task.Done()
}

func TestProgressSecondCount(t *testing.T) {
	var out bytes.Buffer
	c := newFakeClock()
	p := testProgress(&out, c)
	task := p.Start("ingest", "files", 10).Counting("rows")
	task.Add(4)
	task.AddSub(120_000)
	c.advance(2 * time.Second)
	p.Redraw()
	want := "ingest  4/10 files, 120,000 rows  60,000 rows/s  0:03 left"
	if got := termScreen(out.Bytes()); got[len(got)-1] != want {
		t.Fatalf("screen %q, want %q", got, want)
	}
	task.Done()
}

// TestProgressLogLines: a log line written through Interrupt never shares
// a screen line with the progress line, and the progress line comes back.
func TestProgressLogLines(t *testing.T) {
	var out bytes.Buffer
	c := newFakeClock()
	p := testProgress(&out, c)
	task := p.Start("ingest", "files", 10)
	for i := range 10 {
		c.advance(300 * time.Millisecond)
		task.Add(1)
		p.Redraw()
		p.Interrupt(func() error {
			_, err := out.WriteString("level=INFO msg=accepted file=f" + string(rune('0'+i)) + ".csv\n")
			return err
		})
	}
	lines := termScreen(out.Bytes())
	logs := 0
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "level=INFO") || strings.Contains(l, "files") {
			t.Errorf("a log line shares its line with progress: %q", l)
		}
		logs++
	}
	if logs != 10 {
		t.Errorf("%d log lines, want 10", logs)
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "ingest  10/10 files") {
		t.Errorf("live line after the logs: %q", last)
	}
	task.Done()
	if last := termScreen(out.Bytes()); last[len(last)-1] != "" {
		t.Errorf("line left after Done: %q", last[len(last)-1])
	}
}

// TestProgressNil: no terminal, no Progress: nothing is drawn and a stage
// counts into nothing.
func TestProgressNil(t *testing.T) {
	var p *warehouse.Progress
	task := p.Start("score", "responses", 10)
	task.Add(1)
	task.AddSub(1)
	task.Counting("rows").Done()
	p.Redraw()
	called := false
	if err := p.Interrupt(func() error { called = true; return nil }); err != nil || !called {
		t.Error("Interrupt on a nil Progress must still write")
	}
}

// TestProgressCut: a line never wraps (a wrapped line could not be
// cleared with one carriage return).
func TestProgressCut(t *testing.T) {
	var out bytes.Buffer
	c := newFakeClock()
	p := warehouse.NewProgress(&out, warehouse.ProgressOptions{Now: c.now, Manual: true, Width: 20})
	task := p.Start("report fidelity", "reports", 10)
	c.advance(2 * time.Second)
	p.Redraw()
	if got := termScreen(out.Bytes()); len(got[0]) != 19 {
		t.Errorf("line %q: %d columns, want 19", got[0], len(got[0]))
	}
	task.Done()
}

// TestProgressTicker draws from the ticker goroutine while workers count
// (run with -race).
func TestProgressTicker(t *testing.T) {
	var out lockedBuffer
	p := warehouse.NewProgress(&out, warehouse.ProgressOptions{})
	p.Delay = 0
	task := p.Start("score", "responses", 4000)
	done := make(chan bool)
	for range 4 {
		go func() {
			for range 1000 {
				task.Add(1)
			}
			done <- true
		}()
	}
	for range 4 {
		<-done
	}
	time.Sleep(250 * time.Millisecond)
	task.Done()
	s := termScreen(out.bytes())
	if !strings.Contains(out.String(), "4,000/4,000 responses") || s[len(s)-1] != "" {
		t.Errorf("ticker output %q, screen %q", out.String(), s)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { return string(l.bytes()) }

func (l *lockedBuffer) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

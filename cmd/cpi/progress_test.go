package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// screen plays what a terminal shows for the bytes written to it ("\r",
// "\x1b[K" erase to the end of the line, "\n"); the last line unfinished.
func screen(b []byte) []string {
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

// TestLogLinesClearProgress: log records written while a progress line is
// up each get a line of their own ("ingest 1/10 filestime=…" was the bug),
// and the progress line is drawn again after them.
func TestLogLinesClearProgress(t *testing.T) {
	var term bytes.Buffer
	clock := time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	p := warehouse.NewProgress(&term, warehouse.ProgressOptions{Now: func() time.Time { return clock }, Manual: true, Width: 120})
	g := &globals{stderr: &term, logFormat: "text"}
	log := g.logger(p).With("stage", "ingest")
	task := p.Start("ingest", "files", 10)
	for i := range 10 {
		clock = clock.Add(400 * time.Millisecond)
		task.Add(1)
		p.Redraw()
		log.Info("accepted", "n", i)
		log.Debug("not shown")
	}
	lines := screen(term.Bytes())
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "time=") || strings.Contains(l, "files") {
			t.Errorf("log line shares a line with progress: %q", l)
		}
	}
	if n := len(lines) - 1; n != 10 {
		t.Errorf("%d log lines, want 10:\n%s", n, term.String())
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "ingest  10/10 files") || !strings.Contains(last, "files/s") || !strings.Contains(last, "left") {
		t.Errorf("live line %q", last)
	}
	task.Done()
	if lines := screen(term.Bytes()); lines[len(lines)-1] != "" {
		t.Errorf("live line left after Done: %q", lines[len(lines)-1])
	}
}

// TestNoProgressOffTerminal: stderr not a terminal (cron, a pipe): no
// progress, and nothing of it in what a whole run writes.
func TestNoProgressOffTerminal(t *testing.T) {
	var errb bytes.Buffer
	g := &globals{stderr: &errb, logFormat: "text"}
	if g.progress() != nil {
		t.Fatal("progress on a buffer")
	}
	if _, ok := g.logger(nil).Handler().(progressHandler); ok {
		t.Error("log handler wrapped with no progress line")
	}
	dir := t.TempDir()
	x, w := filepath.Join(dir, "x"), filepath.Join(dir, "w")
	if code, _, stderr := cli(t, "synth", "--out", x, "--participants", "20", "--quiet"); code != 0 {
		t.Fatalf("synth: %d %s", code, stderr)
	}
	code, _, stderr := cli(t, "run", "--warehouse", w, "--inbox", x)
	if code != 0 && code != 3 {
		t.Fatalf("run: %d %s", code, stderr)
	}
	if strings.ContainsAny(stderr, "\r\x1b") {
		t.Errorf("progress drawn off a terminal: %q", stderr)
	}
}

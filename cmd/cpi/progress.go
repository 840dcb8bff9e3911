package main

import (
	"context"
	"log/slog"
	"os"

	"golang.org/x/term"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// progress is the live progress line on stderr: only on a terminal, and
// neither with --quiet nor with JSON logs (read by programs, not people).
func (g *globals) progress() *warehouse.Progress {
	if g.quiet || g.logFormat == "json" {
		return nil
	}
	f, ok := g.stderr.(*os.File)
	if !ok || !isTerminal(f) {
		return nil
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		width = 0
	}
	return warehouse.NewProgress(f, warehouse.ProgressOptions{Width: width})
}

// progressHandler writes each log record with the progress line cleared
// before and drawn again after, under the progress line's own lock, so a
// log line never runs into the live line.
type progressHandler struct {
	inner slog.Handler
	p     *warehouse.Progress
}

var _ slog.Handler = progressHandler{}

func (h progressHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h progressHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.p.Interrupt(func() error { return h.inner.Handle(ctx, r) })
}

func (h progressHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return progressHandler{inner: h.inner.WithAttrs(attrs), p: h.p}
}

func (h progressHandler) WithGroup(name string) slog.Handler {
	return progressHandler{inner: h.inner.WithGroup(name), p: h.p}
}

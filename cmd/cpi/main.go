// Command cpi is the research data pipeline of the Connecting People
// implementation study: see README.md and DESIGN.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// memoryLimit is the Go heap's soft limit unless GOMEMLIMIT says otherwise:
// the stages stream, so their live data is small, and the limit keeps the
// garbage collector from letting the heap double with the input's size
// (peak memory stays the same from a hundred thousand participants to a
// million).
const memoryLimit = 128 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

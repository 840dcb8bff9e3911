package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// heapBudget is the Go heap's budget unless GOMEMLIMIT or GOGC say
// otherwise. The streaming stages (ingest, score) keep a few tens of MiB
// live whatever the input's size, so the garbage collector need not run
// each time the heap doubles: it runs when the heap reaches the budget
// (as GOMEMLIMIT=256MiB GOGC=off would have it). Peak memory is then the
// same from a hundred thousand participants to a million, and collection
// costs little: at national scale, ingest and score took 20% longer with
// the default collector and a 128 MiB limit.
//
// A stage whose live data is large (compare holds the analysis data of
// every participant) would, under a fixed limit, collect without pause;
// under the default collector its heap would reach twice its live data
// (430 MiB of RSS for compare at a million participants). So the limit
// follows the live heap: after each collection it is set to the live heap
// plus half of it or a quarter of the budget, whichever is more, and never
// under the budget (heapLimit). Compare at a million participants (175 MiB
// live) then peaks at about 280 MiB of RSS, in the same CPU time (with
// GOMEMLIMIT=250MiB, 14.9 s against 15.3 s under the default collector,
// which doubled the heap to 430 MiB).
const heapBudget = 256 << 20

// heapLimit is the memory limit after a collection that left live bytes.
func heapLimit(budget, live int64) int64 {
	return max(budget, live+max(budget/4, live/2))
}

// tuneMemory applies heapBudget unless the environment sets GOMEMLIMIT or
// GOGC. It keeps no state but the runtime's own settings and the tuner it
// returns (nil when the environment decides), through which a command
// whose live data is small may lower the budget (gcTuner.lower).
func tuneMemory() *gcTuner {
	if os.Getenv("GOMEMLIMIT") != "" || os.Getenv("GOGC") != "" {
		return nil
	}
	t := &gcTuner{budget: heapBudget, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	debug.SetGCPercent(-1)
	t.set(0)
	runtime.SetFinalizer(&gcCycle{t}, afterGC)
	return t
}

// gcTuner sets the memory limit from the live heap.
type gcTuner struct {
	mu     sync.Mutex // the collector's finalizer goroutine and a command
	budget int64
	sample []metrics.Sample
	live   int64 // the live heap after the last collection
	limit  int64 // the limit set
}

// lower makes the budget at most budget, for a command that keeps little
// live whatever the study's size and reads a table row by row (the
// reports read participants for Table 1): garbage is then collected at
// the lower budget instead of piling up to heapBudget, so the command's
// peak does not depend on the participants. Nil (the environment sets the
// collector) does nothing.
func (t *gcTuner) lower(budget int64) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if budget < t.budget {
		t.budget = budget
		t.set(t.live)
	}
}

// set sets the limit for a live heap of live bytes (t.mu held, or t not
// yet shared).
func (t *gcTuner) set(live int64) {
	t.live = live
	if l := heapLimit(t.budget, live); l != t.limit {
		t.limit = l
		debug.SetMemoryLimit(l)
	}
}

// gcCycle is garbage on purpose: its finalizer runs after each
// collection, looks at the live heap and sets the limit for the next.
type gcCycle struct{ t *gcTuner }

func afterGC(c *gcCycle) {
	t := c.t
	t.mu.Lock()
	defer t.mu.Unlock()
	metrics.Read(t.sample)
	t.set(int64(t.sample[0].Value.Uint64()))
	runtime.SetFinalizer(c, afterGC)
}

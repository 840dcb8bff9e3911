package main

import (
	"math"
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
// every participant) would, under a fixed limit, collect without pause.
// So once the live heap passes half the budget the collector goes back to
// its default (run when the heap doubles, no limit), and back to the
// budget when the live heap falls again: the budget is a floor for the
// heap, never a ceiling.
const heapBudget = 256 << 20

// tuneMemory applies heapBudget unless the environment sets GOMEMLIMIT or
// GOGC. It keeps no state but the runtime's own settings and the tuner it
// returns (nil when the environment decides), through which a command
// whose live data is small may lower the budget (gcTuner.lower).
func tuneMemory() *gcTuner {
	if os.Getenv("GOMEMLIMIT") != "" || os.Getenv("GOGC") != "" {
		return nil
	}
	t := &gcTuner{budget: heapBudget, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.set(false)
	runtime.SetFinalizer(&gcCycle{t}, afterGC)
	return t
}

// gcTuner switches the collector between the budget and its default.
type gcTuner struct {
	mu       sync.Mutex // the collector's finalizer goroutine and a command
	budget   int64
	sample   []metrics.Sample
	doubling bool // the default collector is on
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
		if !t.doubling {
			t.set(false)
		}
	}
}

func (t *gcTuner) set(doubling bool) {
	t.doubling = doubling
	if doubling {
		debug.SetMemoryLimit(math.MaxInt64)
		debug.SetGCPercent(100)
		return
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(t.budget)
}

// gcCycle is garbage on purpose: its finalizer runs after each
// collection, looks at the live heap and sets itself for the next.
type gcCycle struct{ t *gcTuner }

func afterGC(c *gcCycle) {
	t := c.t
	t.mu.Lock()
	defer t.mu.Unlock()
	metrics.Read(t.sample)
	live := int64(t.sample[0].Value.Uint64())
	if doubling := 2*live > t.budget; doubling != t.doubling {
		t.set(doubling)
	}
	runtime.SetFinalizer(c, afterGC)
}

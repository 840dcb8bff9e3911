package main

import (
	"math"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

// TestGCTunerLower: lower sets the runtime's memory limit to the lower
// budget while the budget is on, never raises it, waits while the default
// collector is on (the limit stays off until the tuner goes back to the
// budget, which is then the lower one), and a nil tuner (GOGC or
// GOMEMLIMIT set) leaves the runtime alone.
func TestGCTunerLower(t *testing.T) {
	limit, percent := debug.SetMemoryLimit(-1), debug.SetGCPercent(-1)
	t.Cleanup(func() {
		debug.SetMemoryLimit(limit)
		debug.SetGCPercent(percent)
	})
	tu := &gcTuner{budget: heapBudget, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	tu.set(false)
	if got := debug.SetMemoryLimit(-1); got != heapBudget {
		t.Fatalf("limit %d, want the budget %d", got, heapBudget)
	}
	tu.lower(reportHeapBudget)
	if got := debug.SetMemoryLimit(-1); got != reportHeapBudget {
		t.Errorf("after lower: limit %d, want %d", got, reportHeapBudget)
	}
	tu.lower(heapBudget)
	if got := debug.SetMemoryLimit(-1); got != reportHeapBudget {
		t.Errorf("lower to a larger budget: limit %d, want it kept at %d", got, reportHeapBudget)
	}
	tu.set(true)
	tu.lower(reportHeapBudget / 2)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("lower while doubling: limit %d, want none", got)
	}
	tu.set(false)
	if got := debug.SetMemoryLimit(-1); got != reportHeapBudget/2 {
		t.Errorf("back to the budget: limit %d, want the lowered %d", got, reportHeapBudget/2)
	}
	var none *gcTuner
	none.lower(1 << 20)
	if got := debug.SetMemoryLimit(-1); got != reportHeapBudget/2 {
		t.Errorf("nil tuner changed the limit to %d", got)
	}
}

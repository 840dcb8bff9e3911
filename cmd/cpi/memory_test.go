package main

import (
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

// TestHeapLimit: the limit is the budget while the live heap is small
// (the streaming stages), then the live heap and half of it (compare at
// national scale), never less than a quarter budget above the live heap.
func TestHeapLimit(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct{ live, want int64 }{
		{0, 256 * mib},
		{100 * mib, 256 * mib},
		{192 * mib, 288 * mib},
		{1024 * mib, 1536 * mib},
	} {
		if got := heapLimit(256*mib, c.live); got != c.want {
			t.Errorf("live %d MiB: limit %d MiB, want %d MiB", c.live/mib, got/mib, c.want/mib)
		}
	}
	if got := heapLimit(400*mib, 300*mib); got != 450*mib {
		t.Errorf("budget 400 MiB, live 300 MiB: limit %d MiB, want 450 MiB", got/mib)
	}
	if got := heapLimit(400*mib, 200*mib); got != 400*mib {
		t.Errorf("budget 400 MiB, live 200 MiB: limit %d MiB, want the budget", got/mib)
	}
}

// TestGCTunerLower: lower sets the runtime's memory limit from the lower
// budget and the live heap last seen, never raises the budget, and a nil
// tuner (GOGC or GOMEMLIMIT set) leaves the runtime alone.
func TestGCTunerLower(t *testing.T) {
	const mib = 1 << 20
	limit, percent := debug.SetMemoryLimit(-1), debug.SetGCPercent(-1)
	t.Cleanup(func() {
		debug.SetMemoryLimit(limit)
		debug.SetGCPercent(percent)
	})
	tu := &gcTuner{budget: heapBudget, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	tu.set(10 * mib)
	if got := debug.SetMemoryLimit(-1); got != heapBudget {
		t.Fatalf("limit %d, want the budget %d", got, heapBudget)
	}
	tu.lower(reportHeapBudget)
	if got, want := debug.SetMemoryLimit(-1), heapLimit(reportHeapBudget, 10*mib); got != want || want != reportHeapBudget {
		t.Errorf("after lower: limit %d, want %d (the report budget)", got, want)
	}
	tu.lower(heapBudget)
	if got := debug.SetMemoryLimit(-1); got != reportHeapBudget {
		t.Errorf("lower to a larger budget: limit %d, want it kept at %d", got, reportHeapBudget)
	}
	tu.set(100 * mib) // a larger live heap: the limit follows it
	if got := debug.SetMemoryLimit(-1); got != 150*mib {
		t.Errorf("live 100 MiB under the report budget: limit %d MiB, want 150 MiB", got/mib)
	}
	var none *gcTuner
	none.lower(1 << 20)
	if got := debug.SetMemoryLimit(-1); got != 150*mib {
		t.Errorf("nil tuner changed the limit to %d", got)
	}
}

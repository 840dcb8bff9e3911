package main

import "testing"

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

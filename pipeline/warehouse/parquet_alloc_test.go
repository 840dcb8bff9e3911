package warehouse

import (
	"testing"
	"unsafe"
)

// Reallocate keeps the contents, clears what the buffer grew by (though
// the new buffer is a reused, dirty one), and gives the old buffer back:
// the next allocation of its class is the same memory, cleared.
func TestReuseAllocatorReallocate(t *testing.T) {
	a := &reuseAllocator{}
	dirty := a.Allocate(20000) // class 32 KiB
	for i := range dirty {
		dirty[i] = 0xAA
	}
	a.Free(dirty)

	b := a.Allocate(5000) // class 8 KiB
	for i := range b {
		b[i] = byte(i%250 + 1)
	}
	old := unsafe.SliceData(b)
	nb := a.Reallocate(20000, b)
	if len(nb) != 20000 || cap(nb) != 32<<10 {
		t.Fatalf("len %d cap %d, want 20000 and 32768", len(nb), cap(nb))
	}
	if unsafe.SliceData(nb) != unsafe.SliceData(dirty) {
		t.Error("the freed 32 KiB buffer was not reused")
	}
	for i := range 5000 {
		if nb[i] != byte(i%250+1) {
			t.Fatalf("byte %d is %d after growing, want %d", i, nb[i], i%250+1)
		}
	}
	for i := 5000; i < 20000; i++ {
		if nb[i] != 0 {
			t.Fatalf("byte %d the buffer grew by is %#x, want 0", i, nb[i])
		}
	}
	again := a.Allocate(6000)
	if unsafe.SliceData(again) != old {
		t.Error("the buffer given up by Reallocate was not reused")
	}
	for i, v := range again {
		if v != 0 {
			t.Fatalf("reused byte %d is %d, want 0", i, v)
		}
	}
	// Growing within the capacity clears the new part in place.
	again[100] = 7
	short := again[:50]
	grown := a.Reallocate(200, short)
	if unsafe.SliceData(grown) != old || grown[100] != 0 {
		t.Errorf("grown in place: same memory %v, byte 100 = %d", unsafe.SliceData(grown) == old, grown[100])
	}
}

// What an allocator keeps for reuse is bounded in bytes as well as in
// buffers: freeing 64 buffers of 1 MiB keeps reuseKeepBytes of them, and
// taking them again gives back exactly those before Go's fresh ones.
func TestReuseAllocatorKeepsBoundedBytes(t *testing.T) {
	a := &reuseAllocator{}
	var bufs [][]byte
	for range 64 {
		bufs = append(bufs, a.Allocate(1<<20))
	}
	kept := map[*byte]bool{}
	for _, b := range bufs {
		a.Free(b)
	}
	if want := min(reuseKeepBytes, reuseKeep<<20); a.kept != want {
		t.Fatalf("kept %d bytes, want %d", a.kept, want)
	}
	n := a.kept >> 20
	for _, b := range bufs[:n] {
		kept[unsafe.SliceData(b)] = true
	}
	for i := range n {
		if b := a.Allocate(1 << 20); !kept[unsafe.SliceData(b)] {
			t.Fatalf("allocation %d is not one of the %d buffers kept", i, n)
		}
	}
	if a.kept != 0 {
		t.Errorf("%d bytes still kept after taking every kept buffer", a.kept)
	}
	if b := a.Allocate(1 << 20); kept[unsafe.SliceData(b)] {
		t.Error("a buffer handed out twice")
	}
}

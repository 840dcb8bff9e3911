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

package warehouse

import (
	"math/bits"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// reuseAllocator is the memory.Allocator of the Parquet writers: it keeps
// the buffers the writers free (their index, level and page buffers, tens
// to hundreds of KiB each, allocated anew for every column of every row
// group) and hands them out again, instead of Go allocating and clearing
// fresh memory each time (that clearing was a tenth of ingest's CPU time).
// Buffers are sorted into power-of-two classes from 4 KiB; smaller ones
// are Go's. Memory handed out is zeroed, as Go's allocator gives it: a
// reused buffer is cleared, which costs the same as Go's clearing but
// touches memory that is already in the cache and needs no collection.
// At most reuseKeep buffers of a class wait for reuse, so what it holds is
// bounded (a few MiB in practice: a writer frees a row group's buffers
// before it takes the next one's). Each TableFile has its own; it is safe
// for concurrent use all the same.
type reuseAllocator struct {
	mu   sync.Mutex
	free [reuseClasses][][]byte
	kept int // bytes in free
}

const (
	reuseMinShift = 12 // 4 KiB
	reuseClasses  = 20 // up to 2 GiB
	reuseKeep     = 16
	// reuseKeepBytes bounds what one allocator keeps in all: pooled
	// buffers are live memory to the collector, whose heap budget
	// (cmd/cpi/memory.go) they must not eat into.
	reuseKeepBytes = 8 << 20
	reuseAlign     = 64 // as memory.GoAllocator aligns
)

var _ memory.Allocator = (*reuseAllocator)(nil)

// reuseClass is the class of a buffer of size bytes, or -1 for Go's own.
func reuseClass(size int) int {
	if size <= 1<<reuseMinShift>>1 {
		return -1
	}
	c := bits.Len(uint(size-1)) - reuseMinShift
	if c < 0 {
		c = 0
	}
	if c >= reuseClasses {
		return -1
	}
	return c
}

func (a *reuseAllocator) Allocate(size int) []byte { return a.allocate(size, true) }

// allocate is Allocate; a reused buffer is cleared only if zero is true.
func (a *reuseAllocator) allocate(size int, zero bool) []byte {
	c := reuseClass(size)
	if c < 0 {
		return goAllocate(size, size)
	}
	a.mu.Lock()
	list := a.free[c]
	if n := len(list); n > 0 {
		b := list[n-1]
		list[n-1] = nil
		a.free[c] = list[:n-1]
		a.kept -= cap(b)
		a.mu.Unlock()
		if zero {
			clear(b[:size])
		}
		return b[:size]
	}
	a.mu.Unlock()
	return goAllocate(size, 1<<(c+reuseMinShift))
}

// goAllocate is memory.GoAllocator's Allocate with room for capacity
// bytes: zeroed, 64-byte aligned, len size and cap capacity.
func goAllocate(size, capacity int) []byte {
	buf := make([]byte, capacity+reuseAlign)
	shift := 0
	if m := int(uintptr(unsafe.Pointer(unsafe.SliceData(buf))) % reuseAlign); m != 0 {
		shift = reuseAlign - m
	}
	return buf[shift : shift+size : shift+capacity]
}

// Reallocate grows b as memory.Buffer does (its only caller in arrow-go):
// the bytes b grows by are cleared, and a new buffer takes b's contents.
// b itself goes back to the pool, as C's realloc frees it for arrow's
// Mallocator: a caller of Reallocate must not use the old slice (arrow's
// Buffer replaces it; the Parquet dictionary encoder re-slices the new
// one). Only the grown part of a new buffer is cleared: the rest is
// overwritten by the copy.
func (a *reuseAllocator) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		if size > len(b) {
			clear(b[len(b):size])
		}
		return b[:size]
	}
	nb := a.allocate(size, false)
	n := copy(nb, b)
	clear(nb[n:])
	a.Free(b)
	return nb
}

func (a *reuseAllocator) Free(b []byte) {
	c := reuseClass(cap(b))
	if c < 0 || cap(b) != 1<<(c+reuseMinShift) {
		return // not one of ours: Go collects it
	}
	a.mu.Lock()
	if len(a.free[c]) < reuseKeep && a.kept+cap(b) <= reuseKeepBytes {
		a.free[c] = append(a.free[c], b[:0])
		a.kept += cap(b)
	}
	a.mu.Unlock()
}

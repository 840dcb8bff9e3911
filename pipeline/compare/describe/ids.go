package describe

import (
	"slices"
	"strings"
)

// StudyIDs are the participants' study_ids, one per participant row, held
// as one string and the end of each id in it: at a million participants,
// about 16 MB in two allocations instead of a million strings for the
// collector to trace. Find needs them in study_id order (Sort).
type StudyIDs struct {
	buf  strings.Builder // while appending
	all  string          // after Sort
	ends []int32
}

// Append adds an id (copied) as the next participant.
func (p *StudyIDs) Append(id string) {
	p.buf.WriteString(id)
	p.ends = append(p.ends, int32(p.buf.Len()))
}

// Len is the number of participants.
func (p *StudyIDs) Len() int { return len(p.ends) }

// At is participant i's study_id (after Sort).
func (p *StudyIDs) At(i int) string {
	start := int32(0)
	if i > 0 {
		start = p.ends[i-1]
	}
	return p.all[start:p.ends[i]]
}

// Sort puts the ids in study_id order and ends appending. It returns the
// permutation applied, perm[k] being the old position of the k-th id, or
// nil when they were in order already (each trust's are; the trusts' files
// come in path order, which is usually, not always, study_id order).
func (p *StudyIDs) Sort() []int32 {
	p.all = p.buf.String() // no copy
	p.buf = strings.Builder{}
	sorted := true
	for i := 1; i < p.Len() && sorted; i++ {
		sorted = p.At(i-1) < p.At(i)
	}
	if sorted {
		return nil
	}
	perm := make([]int32, p.Len())
	for i := range perm {
		perm[i] = int32(i)
	}
	slices.SortStableFunc(perm, func(a, b int32) int { return strings.Compare(p.At(int(a)), p.At(int(b))) })
	var all strings.Builder
	all.Grow(len(p.all))
	ends := make([]int32, len(perm))
	for k, i := range perm {
		all.WriteString(p.At(int(i)))
		ends[k] = int32(all.Len())
	}
	p.all, p.ends = all.String(), ends
	return perm
}

// Find is the row of a study_id (after Sort), or −1.
func (p *StudyIDs) Find(id string) int {
	lo, hi := 0, p.Len()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p.At(m) < id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < p.Len() && p.At(lo) == id {
		return lo
	}
	return -1
}

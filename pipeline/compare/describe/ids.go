package describe

import (
	"encoding/binary"
	"slices"
	"strings"
)

// StudyIDs are the participants' study_ids, one per participant row.
// Once sorted they are front-coded in blocks of idBlock (each id its
// prefix shared with the one before and the rest: sorted study_ids
// "<TRUST>-<participant_id>" share most of their bytes), so that the
// million of a national study take about 4 MB and no pointers for the
// collector to trace, while Find still bisects (over the blocks' first
// ids) and then scans one block.
type StudyIDs struct {
	buf    strings.Builder // while appending
	ends   []int32         // while appending: the end of each id in buf
	n      int
	blocks []int32 // after Sort: where each block starts in packed
	packed []byte
}

// idBlock is the number of ids in a block.
const idBlock = 16

// Append adds an id (copied) as the next participant.
func (p *StudyIDs) Append(id string) {
	p.buf.WriteString(id)
	p.ends = append(p.ends, int32(p.buf.Len()))
	p.n++
}

// Len is the number of participants.
func (p *StudyIDs) Len() int { return p.n }

// Sort puts the ids in study_id order, ends appending and packs them. It
// returns the permutation applied, perm[k] being the old position of the
// k-th id, or nil when they were in order already (each trust's are; the
// trusts' files come in path order, which is usually, not always,
// study_id order).
func (p *StudyIDs) Sort() []int32 {
	all, ends := p.buf.String(), p.ends
	p.buf, p.ends = strings.Builder{}, nil
	at := func(i int32) string {
		start := int32(0)
		if i > 0 {
			start = ends[i-1]
		}
		return all[start:ends[i]]
	}
	var perm []int32
	for i := 1; i < p.n; i++ {
		if at(int32(i-1)) > at(int32(i)) {
			perm = make([]int32, p.n)
			for k := range perm {
				perm[k] = int32(k)
			}
			slices.SortStableFunc(perm, func(a, b int32) int { return strings.Compare(at(a), at(b)) })
			break
		}
	}
	p.blocks, p.packed = make([]int32, 0, (p.n+idBlock-1)/idBlock), make([]byte, 0, p.n*4)
	prev := ""
	for k := range p.n {
		i := int32(k)
		if perm != nil {
			i = perm[k]
		}
		id := at(i)
		shared := 0
		if k%idBlock == 0 {
			p.blocks = append(p.blocks, int32(len(p.packed)))
		} else {
			for shared < min(len(prev), len(id)) && prev[shared] == id[shared] {
				shared++
			}
		}
		p.packed = binary.AppendUvarint(p.packed, uint64(shared))
		p.packed = binary.AppendUvarint(p.packed, uint64(len(id)-shared))
		p.packed = append(p.packed, id[shared:]...)
		prev = id
	}
	p.packed = slices.Clip(p.packed)
	return perm
}

// next decodes the id at packed[at:] after prev (dst, reused) and
// returns it and the position after it.
func (p *StudyIDs) next(dst []byte, at int) ([]byte, int) {
	shared, k := binary.Uvarint(p.packed[at:])
	at += k
	rest, k := binary.Uvarint(p.packed[at:])
	at += k
	dst = append(dst[:shared], p.packed[at:at+int(rest)]...)
	return dst, at + int(rest)
}

// head is block b's first id, without a copy.
func (p *StudyIDs) head(b int) []byte {
	at := int(p.blocks[b])
	_, k := binary.Uvarint(p.packed[at:]) // 0 shared
	at += k
	rest, k := binary.Uvarint(p.packed[at:])
	at += k
	return p.packed[at : at+int(rest)]
}

// At is participant i's study_id (after Sort).
func (p *StudyIDs) At(i int) string {
	var cur []byte
	at := int(p.blocks[i/idBlock])
	for range i%idBlock + 1 {
		cur, at = p.next(cur, at)
	}
	return string(cur)
}

// Find is the row of a study_id (after Sort), or −1.
func (p *StudyIDs) Find(id string) int {
	// The last block whose first id is at most id.
	lo, hi := 0, len(p.blocks)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if string(p.head(m)) <= id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	b := lo - 1
	if b < 0 {
		return -1
	}
	var scratch [64]byte
	cur, at := scratch[:0], int(p.blocks[b])
	for i := b * idBlock; i < min((b+1)*idBlock, p.n); i++ {
		cur, at = p.next(cur, at)
		switch s := string(cur); {
		case s == id:
			return i
		case s > id:
			return -1
		}
	}
	return -1
}

// IDCursor finds study_ids that mostly come in study_id order (the
// dictionary entries of a table sorted by study_id) by stepping forward
// from the last one found, and bisects (Find) only when an id is behind it
// or more than a block ahead. It holds the position it reached, so it serves
// one goroutine at a time.
type IDCursor struct {
	p   *StudyIDs
	i   int    // the row of cur; −1 before the first Find
	cur []byte // id i
	at  int    // where id i+1 starts in packed
}

// Cursor is a new cursor over p (after Sort).
func (p *StudyIDs) Cursor() *IDCursor { return &IDCursor{p: p, i: -1} }

// Find is the row of a study_id, or −1, as StudyIDs.Find.
func (c *IDCursor) Find(id string) int {
	p := c.p
	if c.i >= 0 && string(c.cur) <= id {
		for range idBlock {
			switch s := string(c.cur); {
			case s == id:
				return c.i
			case s > id:
				return -1 // between two ids
			}
			if c.i+1 >= p.n {
				return -1 // after the last
			}
			c.cur, c.at = p.next(c.cur, c.at)
			c.i++
		}
	}
	i := p.Find(id)
	if i >= 0 {
		c.i, c.at = i, int(p.blocks[i/idBlock])
		c.cur = c.cur[:0]
		for range i%idBlock + 1 {
			c.cur, c.at = p.next(c.cur, c.at)
		}
	}
	return i
}

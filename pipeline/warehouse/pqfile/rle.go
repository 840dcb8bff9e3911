package pqfile

import "encoding/binary"

// rleEncoder is Parquet's RLE/bit-packing hybrid as arrow-go's RleEncoder
// writes it, decision for decision, so that a page encoded here is byte
// for byte the page the column writer would have cut
// (TestRLEEncoderMatchesArrow, TestWriteRowGroupParallelSameBytes).
//
// Values are taken eight at a time. Eight equal values start (or extend)
// a repeated run; any other group of eight is bit-packed into the current
// literal run, whose indicator byte is reserved before its first group and
// filled in when the run ends (at most 63 groups). A repeated run is
// counted only from a group boundary. At the end, a buffer holding one
// repeated value alone ends as a short repeated run; otherwise it is
// padded with zeros to a literal group.
//
// Where arrow-go calls a method per value and writes each through a bit
// writer, a continuing run here is counted in one loop and a literal group
// is packed at once.
type rleEncoder struct {
	out   []byte
	width int
	buf   [8]uint64
	nb    int    // values in buf
	cur   uint64 // the value being repeated
	rep   int32  // its count so far
	lit   int32  // values in the open literal run
	ind   int    // offset of the open literal run's indicator byte; -1: none
}

// reset starts an encoding of values of width bits, appended to out.
func (e *rleEncoder) reset(out []byte, width int) {
	*e = rleEncoder{out: out, width: width, ind: -1}
}

func (e *rleEncoder) put(v uint64) {
	if e.cur == v {
		e.rep++
		if e.rep > 8 {
			return
		}
	} else {
		if e.rep >= 8 {
			e.flushRepeated()
		}
		e.rep = 1
		e.cur = v
	}
	e.buf[e.nb] = v
	e.nb++
	if e.nb == 8 {
		e.flushBuffered()
	}
}

// putAll encodes vals (non-negative) as put would one by one, a group or
// a run at a time where it can:
//   - while a repeated run (of more than eight) goes on, it only counts;
//   - at a group boundary after a literal group (rep == 0, the buffer
//     empty), the next eight values are a literal group unless all eight
//     are equal, whatever the value before them: put would count a run
//     of at most eight within the group, never end a repeated run.
func putAll[T int16 | int32](e *rleEncoder, vals []T) {
	for i := 0; i < len(vals); {
		v := uint64(vals[i])
		if e.rep > 8 && v == e.cur {
			j := i + 1
			for j < len(vals) && uint64(vals[j]) == v {
				j++
			}
			e.rep += int32(j - i)
			i = j
			continue
		}
		if e.rep == 0 && e.nb == 0 && len(vals)-i >= 8 {
			g := vals[i : i+8 : i+8]
			if g[1] != g[0] || g[2] != g[0] || g[3] != g[0] || g[4] != g[0] || g[5] != g[0] || g[6] != g[0] || g[7] != g[0] {
				for k, x := range g {
					e.buf[k] = uint64(x)
				}
				e.nb = 8
				e.cur = uint64(g[7])
				e.rep = 1 // as put leaves it; flushBuffered sets it to 0
				e.flushBuffered()
				i += 8
				continue
			}
		}
		e.put(v)
		i++
	}
}

// putInt32 encodes indices.
func (e *rleEncoder) putInt32(vals []int32) { putAll(e, vals) }

// putInt16 encodes levels.
func (e *rleEncoder) putInt16(vals []int16) { putAll(e, vals) }

func (e *rleEncoder) flushBuffered() {
	if e.rep >= 8 {
		// The group is the start of a repeated run: the literal run
		// before it (if any) ends here.
		e.nb = 0
		if e.lit != 0 {
			e.flushLiteral(true)
		}
		return
	}
	e.lit += int32(e.nb)
	// One indicator byte holds at most 63 groups.
	e.flushLiteral(e.lit/8+1 >= 1<<6)
	e.rep = 0
}

func (e *rleEncoder) flushLiteral(end bool) {
	if e.ind == -1 {
		e.ind = len(e.out)
		e.out = append(e.out, 0)
	}
	if e.nb > 0 {
		e.out = packGroup(e.out, &e.buf, e.width)
		e.nb = 0
	}
	if end {
		e.out[e.ind] = byte((e.lit/8)<<1 | 1)
		e.ind = -1
		e.lit = 0
	}
}

func (e *rleEncoder) flushRepeated() {
	e.out = binary.AppendUvarint(e.out, uint64(e.rep)<<1)
	var le [8]byte
	binary.LittleEndian.PutUint64(le[:], e.cur)
	e.out = append(e.out, le[:(e.width+7)/8]...)
	e.rep = 0
	e.nb = 0
}

// finish ends the last run and returns the encoding.
func (e *rleEncoder) finish() []byte {
	if e.lit > 0 || e.rep > 0 || e.nb > 0 {
		allRep := e.lit == 0 && (e.rep == int32(e.nb) || e.nb == 0)
		if e.rep > 0 && allRep {
			e.flushRepeated()
		} else {
			for e.nb != 0 && e.nb < 8 {
				e.buf[e.nb] = 0
				e.nb++
			}
			e.lit += int32(e.nb)
			e.flushLiteral(true)
			e.rep = 0
		}
	}
	return e.out
}

// packGroup appends eight values of width bits (at most 32), bit-packed
// least significant bit first: width bytes.
func packGroup(out []byte, vals *[8]uint64, width int) []byte {
	var acc uint64 // bits not yet appended: fewer than 8 between values
	n := 0         // how many
	for _, v := range vals {
		acc |= v << n
		n += width
		for n >= 8 {
			out = append(out, byte(acc))
			acc >>= 8
			n -= 8
		}
	}
	return out
}

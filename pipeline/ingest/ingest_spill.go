package ingest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// rowSpill keeps the accepted rows of an export that is not in participant
// order out of memory while it is read: each interview is appended to an
// unnamed temporary file in a compact binary form, and only its place, the
// participant id and the wave stay in memory to be sorted. Once sorted,
// each participant's rows are read back in turn (from the page cache, as a
// rule). Memory is then some 100 bytes a row instead of some 700, and none
// of it is pointers the garbage collector has to follow through every row.
//
// The file is made in the generation being written (TMPDIR for cpi
// validate), readable by its owner only, and removed from the folder as
// soon as it is created: nothing is left behind, even by a crash. (Where
// an open file cannot be removed, it is removed when closed.)
type rowSpill struct {
	f      *os.File
	name   string // set while the file still has a name
	w      *bufio.Writer
	off    int64
	buf    []byte
	intern map[string]string // team, wave and demographic codes read back
}

func NewRowSpill(dir string) (*rowSpill, error) {
	f, err := os.CreateTemp(dir, ".cpi-sort-*")
	if err != nil {
		return nil, fmt.Errorf("sort rows: %w", err)
	}
	s := &rowSpill{f: f, w: bufio.NewWriterSize(f, 256<<10), intern: map[string]string{}} // CreateTemp: mode 0600
	if err := os.Remove(f.Name()); err != nil {
		s.name = f.Name()
	}
	return s, nil
}

// Spilled is where put wrote an interview.
type Spilled struct {
	Off int64
	N   int32
}

// Put appends iv to the file.
func (s *rowSpill) Put(iv *Interview) (Spilled, error) {
	b := s.buf[:0]
	b = binary.AppendUvarint(b, uint64(iv.Line))
	b = binary.AppendVarint(b, int64(iv.Date))
	b = binary.AppendUvarint(b, uint64(len(iv.Flags)))
	for _, v := range iv.Flags {
		b = binary.AppendVarint(b, int64(v))
	}
	w := byte(0)
	if iv.Withdrawn {
		w = 1
	}
	b = append(b, w)
	for _, str := range [...]string{iv.Pid, iv.Team, iv.Wave} {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	b = binary.AppendUvarint(b, uint64(len(iv.Demo)))
	for _, str := range iv.Demo {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	b = binary.AppendUvarint(b, uint64(len(iv.Items)))
	for _, v := range iv.Items {
		b = binary.AppendVarint(b, int64(v))
	}
	s.buf = b
	at := Spilled{Off: s.off, N: int32(len(b))}
	if _, err := s.w.Write(b); err != nil {
		return Spilled{}, fmt.Errorf("sort rows: %w", err)
	}
	s.off += int64(len(b))
	return at, nil
}

// Done ends the writing; get may be called from then on.
func (s *rowSpill) Done() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("sort rows: %w", err)
	}
	return nil
}

// Get reads back the interview at at into iv, whose items slice is reused
// when it is long enough.
func (s *rowSpill) Get(at Spilled, iv *Interview) error {
	if cap(s.buf) < int(at.N) {
		s.buf = make([]byte, at.N)
	}
	b := s.buf[:at.N]
	if n, err := s.f.ReadAt(b, at.Off); n < len(b) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("sort rows: %w", err)
	}
	r := spillReader{b: b}
	iv.Line = int(r.uvarint())
	iv.Date = int32(r.varint())
	nf := int(r.uvarint())
	if r.bad || nf > len(b) {
		return errors.New("sort rows: a row read back is damaged")
	}
	iv.Flags = slices.Grow(iv.Flags[:0], nf)[:nf]
	for i := range iv.Flags {
		iv.Flags[i] = int32(r.varint())
	}
	iv.Withdrawn = r.byte() == 1
	iv.Pid = string(r.bytes()) // one per participant: not worth interning
	iv.Team = s.internBytes(r.bytes())
	iv.Wave = s.internBytes(r.bytes())
	nd := int(r.uvarint())
	if r.bad || nd > len(b) {
		return errors.New("sort rows: a row read back is damaged")
	}
	iv.Demo = slices.Grow(iv.Demo[:0], nd)[:nd]
	for i := range iv.Demo {
		iv.Demo[i] = s.internBytes(r.bytes())
	}
	n := int(r.uvarint())
	if r.bad || n > len(b) {
		return errors.New("sort rows: a row read back is damaged")
	}
	if cap(iv.Items) < n {
		iv.Items = make([]int32, n)
	}
	iv.Items = iv.Items[:n]
	for i := range iv.Items {
		iv.Items[i] = int32(r.varint())
	}
	if r.bad {
		return errors.New("sort rows: a row read back is damaged")
	}
	return nil
}

// internBytes is b as a string, shared between rows: codes repeat.
func (s *rowSpill) internBytes(b []byte) string {
	if v, ok := s.intern[string(b)]; ok {
		return v
	}
	v := string(b)
	if len(s.intern) < 4096 {
		s.intern[v] = v
	}
	return v
}

// Close releases the file, and removes it if it still has a name.
func (s *rowSpill) Close() {
	if s == nil {
		return
	}
	s.f.Close()
	if s.name != "" {
		os.Remove(s.name)
	}
}

// spillReader decodes what put wrote; bad is set, not a panic, if the
// bytes run out.
type spillReader struct {
	b   []byte
	bad bool
}

func (r *spillReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *spillReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *spillReader) byte() byte {
	if len(r.b) == 0 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *spillReader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

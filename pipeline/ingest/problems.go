package ingest

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// ProblemChunk is how many problems a problemSet holds in memory before it
// writes them, sorted, to its file: about 2 MB.
const ProblemChunk = 16 * 1024

// problemSet gathers the row problems of one export in bounded memory and
// gives them back sorted by line, then column, then the order they came in
// (a stable sort). Up to problemChunk problems stay in memory; beyond that
// each full chunk is sorted and appended to an unlinked temporary file as a
// run, and reading merges the runs. A file with a million problems so
// takes a few MB, not gigabytes.
type problemSet struct {
	dir  string // where the temporary file goes ("" TMPDIR)
	mem  []seqProblem
	seq  int64
	n    int64
	f    *os.File
	bw   *bufio.Writer
	off  int64
	runs []problemRun
}

type seqProblem struct {
	Problem
	seq int64
}

type problemRun struct{ off, len int64 }

func NewProblemSet(dir string) *problemSet { return &problemSet{dir: dir} }

// Len is the number of problems added.
func (s *problemSet) Len() int64 { return s.n }

func (s *problemSet) Add(ps ...Problem) error {
	for _, p := range ps {
		s.mem = append(s.mem, seqProblem{p, s.seq})
		s.seq++
		s.n++
		if len(s.mem) >= ProblemChunk {
			if err := s.spill(); err != nil {
				return err
			}
		}
	}
	return nil
}

func problemLess(a, b *seqProblem) bool {
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	if a.Column != b.Column {
		return a.Column < b.Column
	}
	return a.seq < b.seq
}

func (s *problemSet) sortMem() {
	sort.Slice(s.mem, func(i, j int) bool { return problemLess(&s.mem[i], &s.mem[j]) })
}

// spill writes the problems in memory, sorted, as a run of the file.
func (s *problemSet) spill() error {
	if len(s.mem) == 0 {
		return nil
	}
	if s.f == nil {
		f, err := createUnlinked(s.dir, ".problems-*")
		if err != nil {
			return fmt.Errorf("problem list: %w", err)
		}
		s.f, s.bw = f, bufio.NewWriterSize(f, 64*1024)
	}
	s.sortMem()
	start := s.off
	var buf []byte
	for i := range s.mem {
		buf = encodeProblem(buf[:0], &s.mem[i])
		if _, err := s.bw.Write(buf); err != nil {
			return fmt.Errorf("problem list: %w", err)
		}
		s.off += int64(len(buf))
	}
	s.runs = append(s.runs, problemRun{start, s.off - start})
	s.mem = s.mem[:0]
	return nil
}

// Each calls fn with every problem in order. The set may be read more than
// once, and not added to afterwards.
func (s *problemSet) Each(fn func(Problem) error) error {
	if s.f == nil {
		s.sortMem()
		for i := range s.mem {
			if err := fn(s.mem[i].Problem); err != nil {
				return err
			}
		}
		return nil
	}
	if err := s.spill(); err != nil {
		return err
	}
	if err := s.bw.Flush(); err != nil {
		return fmt.Errorf("problem list: %w", err)
	}
	h := make(problemHeap, 0, len(s.runs))
	for _, r := range s.runs {
		rd := &runReader{r: bufio.NewReaderSize(io.NewSectionReader(s.f, r.off, r.len), 16*1024)}
		ok, err := rd.next()
		if err != nil {
			return err
		}
		if ok {
			h = append(h, rd)
		}
	}
	heap.Init(&h)
	for len(h) > 0 {
		rd := h[0]
		if err := fn(rd.cur.Problem); err != nil {
			return err
		}
		ok, err := rd.next()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return nil
}

// Close releases the temporary file.
func (s *problemSet) Close() {
	if s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name()) // where an open file could not be unlinked
		s.f = nil
	}
	s.mem = nil
}

func encodeProblem(buf []byte, p *seqProblem) []byte {
	buf = binary.AppendVarint(buf, int64(p.Line))
	buf = binary.AppendVarint(buf, p.seq)
	for _, s := range [...]string{p.File, p.Column, p.Code, p.Severity, p.Message} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	return buf
}

type runReader struct {
	r   *bufio.Reader
	cur seqProblem
}

func (rd *runReader) next() (bool, error) {
	line, err := binary.ReadVarint(rd.r)
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("problem list: %w", err)
	}
	seq, err := binary.ReadVarint(rd.r)
	if err != nil {
		return false, fmt.Errorf("problem list: %w", err)
	}
	var strs [5]string
	for i := range strs {
		n, err := binary.ReadUvarint(rd.r)
		if err != nil || n > 1<<20 {
			return false, fmt.Errorf("problem list: damaged temporary file")
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(rd.r, b); err != nil {
			return false, fmt.Errorf("problem list: %w", err)
		}
		strs[i] = string(b)
	}
	rd.cur = seqProblem{Problem{File: strs[0], Line: int(line), Column: strs[1], Code: strs[2], Severity: strs[3], Message: strs[4]}, seq}
	return true, nil
}

type problemHeap []*runReader

func (h problemHeap) Len() int           { return len(h) }
func (h problemHeap) Less(i, j int) bool { return problemLess(&h[i].cur, &h[j].cur) }
func (h problemHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *problemHeap) Push(x any)        { *h = append(*h, x.(*runReader)) }
func (h *problemHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// createUnlinked makes a temporary file (mode 0600) in dir ("" TMPDIR) and
// removes its name at once, so nothing is left even by a crash. Where an
// open file cannot be unlinked, close removes it by name.
func createUnlinked(dir, pattern string) (*os.File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name())
	return f, nil
}

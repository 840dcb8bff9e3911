package codes

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/metadata"
)

// This file walks the pages of a column chunk without arrow-go's page
// reader, which allocates (and zeroes) its buffers anew for every column
// chunk, copies the compressed bytes twice and decodes each page header
// into fresh Thrift structs with their statistics. Here the chunk's bytes
// are read into one buffer, each page header is parsed in place (Thrift's
// compact protocol: only the fields read needs), and each page is
// decompressed into a second buffer; both are kept from chunk to chunk.

// Page types (parquet.thrift's PageType).
const (
	pageData       = 0
	pageDictionary = 2
	pageDataV2     = 3
)

// pageReader reads the pages of one column chunk after another.
type pageReader struct {
	raw   []byte // the chunk as stored
	data  []byte // the current page's body, decompressed
	rest  []byte // the chunk's bytes after the current page
	codec compress.Codec
	plain bool // the chunk is not compressed

	// The current page's header.
	typ        int32
	numValues  int
	encoding   parquet.Encoding
	defLevels  parquet.Encoding // data pages V1
	compSize   int
	uncompSize int
}

// reset reads the column chunk cc of the file f into the reader.
func (p *pageReader) reset(f io.ReaderAt, cc *metadata.ColumnChunkMetaData) error {
	start := cc.DataPageOffset()
	if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && start > cc.DictionaryPageOffset() {
		start = cc.DictionaryPageOffset()
	}
	size := cc.TotalCompressedSize()
	if start < 0 || size < 0 || size > math.MaxInt32 {
		return fmt.Errorf("column chunk at %d of %d bytes out of range", start, size)
	}
	codec, err := compress.GetCodec(cc.Compression())
	if err != nil {
		return err
	}
	p.codec, p.plain = codec, cc.Compression() == compress.Codecs.Uncompressed
	p.raw = slices.Grow(p.raw[:0], int(size))[:size]
	if _, err := f.ReadAt(p.raw, start); err != nil {
		return fmt.Errorf("reading a column chunk: %w", err)
	}
	p.rest = p.raw
	return nil
}

// next moves to the chunk's next page, decompressed into p.data; false at
// the chunk's end.
func (p *pageReader) next() (bool, error) {
	if len(p.rest) == 0 {
		return false, nil
	}
	r := thriftReader{b: p.rest}
	if err := p.header(&r); err != nil {
		return false, fmt.Errorf("page header: %w", err)
	}
	body := r.b
	if p.compSize < 0 || p.compSize > len(body) || p.uncompSize < 0 || int64(p.uncompSize) > parquet.DefaultMaxUncompressedPageSize {
		return false, errors.New("page sizes out of range")
	}
	p.rest = body[p.compSize:]
	body = body[:p.compSize]
	if p.typ != pageData && p.typ != pageDictionary {
		p.data = p.data[:0] // not decoded here
		return true, nil
	}
	if p.plain {
		p.data = append(p.data[:0], body...)
	} else {
		dst := slices.Grow(p.data[:0], p.uncompSize)[:p.uncompSize]
		out, err := compress.Decode(p.codec, dst, body)
		if err != nil {
			return false, fmt.Errorf("decompressing a page: %w", err)
		}
		p.data = out
	}
	if len(p.data) != p.uncompSize {
		return false, fmt.Errorf("a page of %d bytes, its header says %d", len(p.data), p.uncompSize)
	}
	return true, nil
}

// header parses a PageHeader: type (1), uncompressed_page_size (2),
// compressed_page_size (3), and of data_page_header (5) or
// dictionary_page_header (7) num_values (1), encoding (2) and, of a data
// page, definition_level_encoding (3); other fields are skipped.
func (p *pageReader) header(r *thriftReader) error {
	p.typ, p.numValues, p.compSize, p.uncompSize = -1, -1, -1, -1
	p.encoding, p.defLevels = -1, -1
	var last int16
	for {
		id, t := r.field(&last)
		if r.err != nil {
			return r.err
		}
		if t == thriftStop {
			break
		}
		switch {
		case id == 1 && t == thriftI32:
			p.typ = int32(r.int())
		case id == 2 && t == thriftI32:
			p.uncompSize = int(r.int())
		case id == 3 && t == thriftI32:
			p.compSize = int(r.int())
		case (id == 5 || id == 7) && t == thriftStruct:
			var inner int16
			for {
				id2, t2 := r.field(&inner)
				if r.err != nil || t2 == thriftStop {
					break
				}
				switch {
				case id2 == 1 && t2 == thriftI32:
					p.numValues = int(r.int())
				case id2 == 2 && t2 == thriftI32:
					p.encoding = parquet.Encoding(r.int())
				case id2 == 3 && t2 == thriftI32 && id == 5:
					p.defLevels = parquet.Encoding(r.int())
				default:
					r.skip(t2, 1)
				}
			}
		default:
			r.skip(t, 0)
		}
	}
	if r.err != nil {
		return r.err
	}
	if p.typ < 0 || p.compSize < 0 || p.uncompSize < 0 {
		return errors.New("a required field is missing")
	}
	if (p.typ == pageData || p.typ == pageDictionary) && p.numValues < 0 {
		return errors.New("a page without its number of values")
	}
	return nil
}

// Thrift compact protocol types.
const (
	thriftStop   = 0
	thriftTrue   = 1
	thriftFalse  = 2
	thriftByte   = 3
	thriftI16    = 4
	thriftI32    = 5
	thriftI64    = 6
	thriftDouble = 7
	thriftBinary = 8
	thriftList   = 9
	thriftSet    = 10
	thriftMap    = 11
	thriftStruct = 12
)

// thriftReader reads Thrift's compact protocol from b; the first error
// sticks (and reads give zero after it).
type thriftReader struct {
	b   []byte
	err error
}

var errThrift = errors.New("malformed Thrift")

func (r *thriftReader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errThrift
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *thriftReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.err = errThrift
		return 0
	}
	r.b = r.b[k:]
	return v
}

// int reads a zigzag varint (i16, i32, i64).
func (r *thriftReader) int() int64 {
	v := r.uvarint()
	return int64(v>>1) ^ -int64(v&1)
}

// field reads a field header: its id (after last, the struct's previous
// field id) and type, thriftStop at the struct's end.
func (r *thriftReader) field(last *int16) (int16, byte) {
	c := r.byte()
	t := c & 0x0f
	if t == thriftStop {
		return 0, thriftStop
	}
	if d := int16(c >> 4); d != 0 {
		*last += d
	} else {
		*last = int16(r.int())
	}
	return *last, t
}

// skip skips a value of type t (a bool field's value is in its type).
func (r *thriftReader) skip(t byte, depth int) {
	if depth > 16 {
		r.err = errThrift
		return
	}
	n := 0
	switch t {
	case thriftTrue, thriftFalse:
	case thriftByte:
		n = 1
	case thriftI16, thriftI32, thriftI64:
		r.uvarint()
	case thriftDouble:
		n = 8
	case thriftBinary:
		n = int(min(r.uvarint(), math.MaxInt32))
	case thriftList, thriftSet:
		h := r.byte()
		size := uint64(h >> 4)
		if size == 15 {
			size = r.uvarint()
		}
		for range min(size, uint64(len(r.b))+1) {
			r.skipElem(h&0x0f, depth+1)
		}
	case thriftMap:
		size := r.uvarint()
		if size > 0 {
			kv := r.byte()
			for range min(size, uint64(len(r.b))+1) {
				r.skipElem(kv>>4, depth+1)
				r.skipElem(kv&0x0f, depth+1)
			}
		}
	case thriftStruct:
		var last int16
		for r.err == nil {
			_, ft := r.field(&last)
			if ft == thriftStop {
				break
			}
			r.skip(ft, depth+1)
		}
	default:
		r.err = errThrift
	}
	if r.err == nil && n > len(r.b) {
		r.err = errThrift
	}
	if r.err == nil {
		r.b = r.b[n:]
	}
}

// skipElem skips an element of a list, set or map: a bool there is a byte.
func (r *thriftReader) skipElem(t byte, depth int) {
	if t == thriftTrue || t == thriftFalse {
		r.byte()
		return
	}
	r.skip(t, depth)
}

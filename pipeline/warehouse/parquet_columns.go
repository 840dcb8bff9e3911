package warehouse

import (
	"errors"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// ScoreCodes turns a string column of one batch into small integer codes:
// for a dictionary-encoded column, lookup runs once per dictionary entry;
// for a plain one, once per run of equal values.
type ScoreCodes struct {
	dict   *array.Dictionary
	idx    []int32 // the dictionary's indices
	codes  []int
	plain  *array.String
	lookup func(string) int
	last   string
	lastC  int
	primed bool
}

func (c *ScoreCodes) Init(a arrow.Array, lookup func(string) int) error {
	*c = ScoreCodes{lookup: lookup}
	switch a := a.(type) {
	case *array.Dictionary:
		vals, ok := a.Dictionary().(*array.String)
		idx, ok2 := a.Indices().(*array.Int32)
		if !ok || !ok2 {
			return errors.New("not a dictionary of strings with int32 indices")
		}
		c.dict, c.idx = a, idx.Int32Values()
		c.codes = make([]int, vals.Len())
		for i := range c.codes {
			c.codes[i] = lookup(vals.Value(i))
		}
	case *array.String:
		c.plain = a
	default:
		return errors.New("not a string column")
	}
	return nil
}

// At is row r's code (-1: unknown).
func (c *ScoreCodes) At(r int) int {
	if c.dict != nil {
		if c.dict.IsNull(r) {
			return -1
		}
		return c.codes[c.idx[r]]
	}
	s := c.plain.Value(r)
	if !c.primed || s != c.last {
		c.last, c.lastC, c.primed = strings.Clone(s), c.lookup(s), true
	}
	return c.lastC
}

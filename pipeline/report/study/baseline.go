package study

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/report"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// notRecorded is Table 1's level of a characteristic left blank.
const notRecorded = "not recorded"

// BaselineCounts are Table 1's counts: the participants interviewed at the
// first wave, by arm, and by arm and level of each of the study's
// demographic fields (schemas' DemographicFields, in their order). They
// are counts only: memory does not grow with the participants.
type BaselineCounts struct {
	arms   []string
	fields []schemas.Demographic
	n      []int64
	levels []map[string][]int64 // per field: level → count per arm
}

// NewBaselineCounts starts Table 1's counts for the arms shown.
func NewBaselineCounts(s *schemas.Study, arms []string) *BaselineCounts {
	b := &BaselineCounts{arms: slices.Clone(arms), fields: s.DemographicFields(), n: make([]int64, len(arms))}
	for range b.fields {
		b.levels = append(b.levels, map[string][]int64{})
	}
	return b
}

// Add counts one participant interviewed at the first wave: their arm and
// their values of the demographic fields, in DemographicFields' order, as
// text ("" for null; a binary field's 1 or 0). A participant of an arm not
// shown is not counted.
func (b *BaselineCounts) Add(arm string, values []string) {
	a := slices.Index(b.arms, arm)
	if a < 0 {
		return
	}
	b.n[a]++
	for f := range b.fields {
		lv := ""
		if f < len(values) {
			lv = values[f]
		}
		b.addLevel(f, a, lv, 1)
	}
}

// addLevel counts n participants of arm a at level lv (as Add takes it)
// of field f.
func (b *BaselineCounts) addLevel(f, a int, lv string, n int64) {
	switch field := b.fields[f]; {
	case lv == "":
		lv = notRecorded
	case field.Binary && lv == "1":
		lv = "yes"
	case field.Binary:
		lv = "no"
	}
	c := b.levels[f][lv]
	if c == nil {
		c = make([]int64, len(b.arms))
		b.levels[f][strings.Clone(lv)] = c
	}
	c[a] += n
}

// ReadBaselineCounts counts Table 1 from the participants table of the
// generation at genDir: participants.interviewed_baseline marks who was
// interviewed at the first wave. It reads only the arm, that flag and the
// demographic columns, the text ones as dictionary codes, into memory
// that each batch reuses, and counts codes: its memory does not grow
// with the participants (at 1,000,000 the dense read of every column
// allocated 545 MB).
func ReadBaselineCounts(ctx context.Context, s *schemas.Study, arms []string, genDir string) (*BaselineCounts, error) {
	b := NewBaselineCounts(s, arms)
	files, err := warehouse.TableFiles(genDir, "participants")
	if err != nil {
		return nil, fmt.Errorf("baseline characteristics: %w", err)
	}
	names := []string{"arm", "interviewed_baseline"}
	for _, f := range b.fields {
		names = append(names, f.Name)
	}
	scan := warehouse.NewColumnScan(ctx, files, names, names)
	scan.ReuseMemory()
	defer scan.Close()
	// Each field's levels get codes as they are met (text[f] is code →
	// level, the level as read); counts[f][code][arm] are the people.
	type fieldCodes struct {
		text   []string
		byText map[string]int
		byInt  map[int32]int
		counts [][]int64
	}
	fc := make([]fieldCodes, len(b.fields))
	for f := range fc {
		fc[f].byText, fc[f].byInt = map[string]int{}, map[int32]int{}
	}
	intern := func(c *fieldCodes, lv string) int {
		if k, ok := c.byText[lv]; ok {
			return k
		}
		lv = strings.Clone(lv)
		c.byText[lv] = len(c.text)
		c.text = append(c.text, lv)
		c.counts = append(c.counts, make([]int64, len(b.arms)))
		return len(c.text) - 1
	}
	var armCodes warehouse.ScoreCodes
	text := make([]warehouse.ScoreCodes, len(b.fields))
	ints := make([]*array.Int32, len(b.fields))
	for {
		ok, err := scan.Next()
		if err != nil {
			return nil, fmt.Errorf("baseline characteristics: read table participants: %w", err)
		}
		if !ok {
			break
		}
		cols := scan.Cols
		ib, _ := cols[1].(*array.Boolean)
		if ib == nil {
			return nil, fmt.Errorf("baseline characteristics: table participants has unexpected column types")
		}
		if err := armCodes.Init(cols[0], func(arm string) int { return slices.Index(b.arms, arm) }); err != nil {
			return nil, fmt.Errorf("baseline characteristics: table participants: column arm: %w", err)
		}
		for f, field := range b.fields {
			ints[f] = nil
			switch c := cols[2+f].(type) {
			case *array.Int32:
				ints[f] = c
			default:
				if err := text[f].Init(c, func(lv string) int { return intern(&fc[f], lv) }); err != nil {
					return nil, fmt.Errorf("baseline characteristics: table participants: column %s has unexpected type %s", field.Name, c.DataType())
				}
			}
		}
		for i := 0; i < ib.Len(); i++ {
			if !ib.IsValid(i) || !ib.Value(i) {
				continue
			}
			a := armCodes.At(i)
			if a < 0 {
				continue
			}
			b.n[a]++
			for f := range fc {
				var k int
				if c := ints[f]; c != nil {
					k = intCode(fc[f].byInt, c, i, func(lv string) int { return intern(&fc[f], lv) })
				} else if k = text[f].At(i); k < 0 {
					k = intern(&fc[f], "") // null
				}
				fc[f].counts[k][a]++
			}
		}
	}
	for f := range fc {
		for k, lv := range fc[f].text {
			for a, n := range fc[f].counts[k] {
				if n > 0 {
					b.addLevel(f, a, lv, n)
				}
			}
		}
	}
	return b, nil
}

// intCode is the code of row i's value of an int32 column (its decimal
// text interned; null as ""), looked up by value so that no text is made
// per row.
func intCode(byInt map[int32]int, c *array.Int32, i int, intern func(string) int) int {
	if c.IsNull(i) {
		return intern("")
	}
	v := c.Value(i)
	if k, ok := byInt[v]; ok {
		return k
	}
	k := intern(strconv.Itoa(int(v)))
	byInt[v] = k
	return k
}

// layoutBaseline adds Table 1's counts to disc (each field's levels add up
// to the arm's size, which is the flow's first wave of the arm: one cell),
// and returns what fills the page in once disc is protected. A field's
// levels are the study's codes (yes and no for a binary field), then any
// other level found, sorted, then "not recorded" when someone has it.
func (pg *studyPage) layoutBaseline(s *schemas.Study, b *BaselineCounts, disc *report.Disclosure) []func() {
	arms := pg.Arms
	if b == nil || !slices.Equal(b.arms, arms) {
		b = NewBaselineCounts(s, arms)
	}
	pg.BaselineCols = len(arms) + 2
	nCell := make([]int, len(arms))
	var nAll int64
	for a, arm := range arms {
		nCell[a] = disc.Count(flowCellName("*", arm, s.BaselineWave()), b.n[a], avoidArmSize)
		nAll += b.n[a]
	}
	// The total column: every arm shown together (the flow's both arms at
	// the first wave when the flow has those arms only).
	nTotal := disc.Count(flowCellName("*", "*", s.BaselineWave()), nAll, avoidStudyTotal)
	disc.Sum(nTotal, nCell...)
	type varCells struct {
		name   string
		levels []string
		cells  [][]int // level × arm
		counts [][]int64
	}
	var all []varCells
	for f, field := range b.fields {
		v, counts := field.Name, b.levels[f]
		levels := slices.Clone(field.Codes)
		if field.Binary {
			levels = []string{"yes", "no"}
		}
		var extra []string
		for lv := range counts {
			if !slices.Contains(levels, lv) && lv != notRecorded {
				extra = append(extra, lv)
			}
		}
		sort.Strings(extra)
		levels = append(levels, extra...)
		if _, ok := counts[notRecorded]; ok {
			levels = append(levels, notRecorded)
		}
		vc := varCells{name: v, levels: levels}
		for _, lv := range levels {
			row := make([]int64, len(arms)+1) // the arms, then the total
			if c := counts[lv]; c != nil {
				copy(row, c)
			}
			ids := make([]int, len(arms)+1)
			for a, arm := range arms {
				ids[a] = disc.Count("baseline|"+v+"|"+lv+"|"+arm, row[a], avoidCell)
				row[len(arms)] += row[a]
			}
			ids[len(arms)] = disc.Count("baseline|"+v+"|"+lv+"|*", row[len(arms)], avoidCell)
			disc.Sum(ids[len(arms)], ids[:len(arms)]...)
			vc.cells = append(vc.cells, ids)
			vc.counts = append(vc.counts, row)
		}
		for a := range len(arms) + 1 {
			parts := make([]int, len(levels))
			for li := range levels {
				parts[li] = vc.cells[li][a]
			}
			if a < len(arms) {
				disc.Sum(nCell[a], parts...)
			} else {
				disc.Sum(nTotal, parts...)
			}
		}
		all = append(all, vc)
	}
	return []func(){func() {
		for a := range arms {
			pg.BaselineN = append(pg.BaselineN, disc.Show(nCell[a]))
		}
		pg.BaselineTotalN = disc.Show(nTotal)
		denom := append(slices.Clone(b.n), nAll)
		dcell := append(slices.Clone(nCell), nTotal)
		for _, vc := range all {
			bv := baselineVar{Name: demographicLabel(vc.name)}
			labels := codeLabels(s, vc.name)
			for li, lv := range vc.levels {
				cells := make([]string, len(arms)+1)
				for a := range cells {
					id := vc.cells[li][a]
					cells[a] = disc.Show(id)
					if c := vc.counts[li][a]; c > 0 && !disc.Hidden(id) && !disc.Hidden(dcell[a]) {
						cells[a] += fmt.Sprintf(" (%.1f%%)", 100*float64(c)/float64(denom[a]))
					}
				}
				label := lv
				if l, ok := labels[lv]; ok {
					label = l
				}
				bv.Levels = append(bv.Levels, baselineLevel{Level: label, Cells: cells})
			}
			pg.BaselineVars = append(pg.BaselineVars, bv)
		}
	}}
}

// demographicLabel is a demographic field's name as Table 1 prints it:
// "diagnosis_group" → "Diagnosis group".
func demographicLabel(name string) string {
	return capitalise(strings.ReplaceAll(name, "_", " "))
}

// capitalise upper-cases the first letter of an ASCII-led label.
func capitalise(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

// codeLabels maps a demographic field's codes to their labels in the
// study's code list (capitalised: non_binary → "Non binary"); a binary
// field's yes and no, and "not recorded", are capitalised too.
func codeLabels(s *schemas.Study, field string) map[string]string {
	out := map[string]string{"yes": "Yes", "no": "No", notRecorded: capitalise(notRecorded)}
	if codes, err := s.CodeList(field); err == nil {
		for _, c := range codes {
			out[c.Value] = capitalise(c.Label)
		}
	}
	return out
}

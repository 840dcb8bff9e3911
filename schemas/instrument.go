package schemas

import "fmt"

// Instrument is a questionnaire: its items with their ranges and the scales
// scored from them (DESIGN §8).
type Instrument struct {
	Name        string       `yaml:"name"`
	Title       string       `yaml:"title"`
	Min         *int         `yaml:"min"`
	Max         *int         `yaml:"max"`
	ItemPattern *ItemPattern `yaml:"item_pattern"`
	Items       []Item       `yaml:"items"`
	// Waves at which the instrument is asked; empty means every wave.
	Waves []string `yaml:"waves"`
	// Reverse lists reverse-keyed items: scored as min + max - value.
	Reverse []string `yaml:"reverse"`
	Scales  []Scale  `yaml:"scales"`
}

// ItemPattern generates item names fmt.Sprintf(Format, 1..Count).
type ItemPattern struct {
	Format string `yaml:"format"`
	Count  int    `yaml:"count"`
}

// Item is one answer column of an instrument.
type Item struct {
	Name string `yaml:"name"`
	Min  int    `yaml:"min"`
	Max  int    `yaml:"max"`
	// Blank, when set, is the value a blank answer stands for (GAS weights).
	Blank   *int `yaml:"blank"`
	Reverse bool `yaml:"-"`
}

// Scale is one score of an instrument.
//
// Methods: sum (prorated sum of Items, all items when empty), lookup (the
// scale From, rounded, looked up in Table from the lowest possible raw
// score), valueset (1 - the value set's decrements), item (one item's
// value), gas (Kiresuk & Sherman's T-score from Goals), cost (Σ units ×
// unit cost from the UnitCosts table; any item blank → null), auc (the
// area under the scale From's curve from baseline to the wave, in years
// from the study's nominal wave times: QALYs; scored at the waves after
// the first only).
type Scale struct {
	Name           string    `yaml:"name"`
	Method         string    `yaml:"method"`
	Items          []string  `yaml:"items"`
	MissingAllowed int       `yaml:"missing_allowed"`
	Reliability    bool      `yaml:"reliability"`
	From           string    `yaml:"from"`
	Round          string    `yaml:"round"`
	Table          []float64 `yaml:"table"`
	ValueSet       string    `yaml:"valueset"`
	Rho            float64   `yaml:"rho"`
	Goals          []Goal    `yaml:"goals"`
	// UnitCosts names the unit-cost table of a cost scale
	// (unitcosts/<name>.yaml).
	UnitCosts string `yaml:"unit_costs"`
	// Better says which way the scale improves: "higher" (a higher score
	// is better), "lower", or empty (not stated). Reports orient their
	// "favours" labels by it.
	Better string `yaml:"better"`
}

// Goal pairs a GAS goal's level and weight items.
type Goal struct {
	Level  string `yaml:"level"`
	Weight string `yaml:"weight"`
}

// ValueSet maps EQ-5D-style levels to a utility index. It holds either
// Dimensions, the decrements of each level per dimension item (index = 1 −
// Σ decrement), or States, a utility per health state: the profile of the
// five dimensions' levels as five digits 1–5 in the scale's item order
// ("11111" … "55555", all 3,125 of them), as NICE DSU's 5L-to-3L mapping
// gives. A value set may depend on the participant's age band and gender
// (their baseline demographics): then Strata replaces both, each stratum
// with its own Dimensions or States, and a participant in no stratum (or
// with either unknown) gets a null index.
type ValueSet struct {
	Name       string               `yaml:"name"`
	Title      string               `yaml:"title"`
	Version    string               `yaml:"version"`
	Source     string               `yaml:"source"`
	Dimensions map[string][]float64 `yaml:"dimensions"`
	States     map[string]float64   `yaml:"states"`
	Strata     []ValueSetStratum    `yaml:"strata"`
}

// ValueSetStratum is the decrements or the per-state utilities of one age
// band × gender.
type ValueSetStratum struct {
	AgeBand    string               `yaml:"age_band"`
	Gender     string               `yaml:"gender"`
	Dimensions map[string][]float64 `yaml:"dimensions"`
	States     map[string]float64   `yaml:"states"`
}

// StateDigits and StateCount are a per-state value set's profile length
// and number of profiles: five dimensions of five levels.
const (
	StateDigits = 5
	StateCount  = 3125
)

// StateIndex is a profile's position in a per-state table: the digits
// 1–5 read as a base-5 number (11111 → 0, 55555 → 3124); false when the
// key is not five digits 1–5.
func StateIndex(profile string) (int, bool) {
	if len(profile) != StateDigits {
		return 0, false
	}
	i := 0
	for k := 0; k < StateDigits; k++ {
		d := profile[k]
		if d < '1' || d > '5' {
			return 0, false
		}
		i = i*5 + int(d-'1')
	}
	return i, true
}

// ValueSetTable is one table of a value set: decrements per dimension or
// utilities per health state (exactly one is set).
type ValueSetTable struct {
	Dimensions map[string][]float64
	States     map[string]float64
}

// Tables is the value set's tables: its own, or each stratum's in order.
func (vs *ValueSet) Tables() []ValueSetTable {
	if len(vs.Strata) == 0 {
		return []ValueSetTable{{vs.Dimensions, vs.States}}
	}
	out := make([]ValueSetTable, len(vs.Strata))
	for i, st := range vs.Strata {
		out[i] = ValueSetTable{st.Dimensions, st.States}
	}
	return out
}

// Describe is the value set as the scores metadata names it: "<title>
// version <version>", then "; per health state", "; by age band and
// gender" and "; source: <source>" when they apply.
func (vs *ValueSet) Describe() string {
	d := vs.Title + " version " + vs.Version
	for _, t := range vs.Tables() {
		if t.States != nil {
			d += "; per health state"
			break
		}
	}
	if len(vs.Strata) > 0 {
		d += "; by age band and gender"
	}
	if vs.Source != "" {
		d += "; source: " + vs.Source
	}
	return d
}

// Item returns the named item.
func (in *Instrument) Item(name string) (Item, bool) {
	for _, it := range in.Items {
		if it.Name == name {
			return it, true
		}
	}
	return Item{}, false
}

// AskedAt reports whether the instrument is asked at the wave.
func (in *Instrument) AskedAt(wave string) bool {
	if len(in.Waves) == 0 {
		return true
	}
	for _, w := range in.Waves {
		if w == wave {
			return true
		}
	}
	return false
}

// ScaleItems is the items a scale is computed from.
func (in *Instrument) ScaleItems(sc *Scale) []string {
	if len(sc.Items) > 0 {
		return sc.Items
	}
	out := make([]string, 0, len(in.Items))
	for _, it := range in.Items {
		out = append(out, it.Name)
	}
	return out
}

// expandItems fills Items from ItemPattern and the instrument's default range.
func (in *Instrument) expandItems() error {
	if in.ItemPattern != nil {
		if in.Min == nil || in.Max == nil {
			return fmt.Errorf("item_pattern needs min and max")
		}
		for i := 1; i <= in.ItemPattern.Count; i++ {
			in.Items = append(in.Items, Item{Name: fmt.Sprintf(in.ItemPattern.Format, i), Min: *in.Min, Max: *in.Max})
		}
	}
	for _, r := range in.Reverse {
		found := false
		for i := range in.Items {
			if in.Items[i].Name == r {
				in.Items[i].Reverse = true
				found = true
			}
		}
		if !found {
			return fmt.Errorf("reverse item %q is not an item", r)
		}
	}
	return nil
}

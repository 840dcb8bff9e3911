package schemas

import (
	"math"
	"strings"
)

// ScaleRange returns the range of values a scale can take, derived from its
// instrument's definition, for outcome "instrument.scale":
//
//   - sum: Σ item min to Σ item max over the scale's items (a prorated sum
//     stays within it; a reverse-keyed item keeps its range);
//   - item: the item's min to max;
//   - lookup: the smallest and largest entry of the table;
//   - valueset: 1 − Σ (largest decrement) to 1 − Σ (smallest decrement)
//     over the scale's items (dimensions);
//   - cost: 0 to +Inf (unit counts and unit costs are not negative).
//
// ok is false for a scale whose range the definition does not give (gas,
// auc) or an unknown outcome.
func (s *Study) ScaleRange(outcome string) (lo, hi float64, ok bool) {
	instName, scaleName, found := strings.Cut(outcome, ".")
	if !found {
		return 0, 0, false
	}
	in, found := s.Instrument(instName)
	if !found {
		return 0, 0, false
	}
	var sc *Scale
	for i := range in.Scales {
		if in.Scales[i].Name == scaleName {
			sc = &in.Scales[i]
		}
	}
	if sc == nil {
		return 0, 0, false
	}
	switch sc.Method {
	case "sum", "item":
		items := in.ScaleItems(sc)
		if len(items) == 0 || (sc.Method == "item" && len(items) != 1) {
			return 0, 0, false
		}
		for _, name := range items {
			it, found := in.Item(name)
			if !found || it.Min > it.Max {
				return 0, 0, false
			}
			lo += float64(it.Min)
			hi += float64(it.Max)
		}
		return lo, hi, true
	case "lookup":
		if len(sc.Table) == 0 {
			return 0, 0, false
		}
		lo, hi = math.Inf(1), math.Inf(-1)
		for _, v := range sc.Table {
			lo, hi = min(lo, v), max(hi, v)
		}
		return lo, hi, true
	case "valueset":
		vs := s.ValueSets[sc.ValueSet]
		if vs == nil {
			return 0, 0, false
		}
		if len(vs.States) > 0 {
			lo, hi = math.Inf(1), math.Inf(-1)
			for _, v := range vs.States {
				lo, hi = min(lo, v), max(hi, v)
			}
			return lo, hi, true
		}
		lo, hi = 1, 1
		for _, name := range in.ScaleItems(sc) {
			dec := vs.Dimensions[name]
			if len(dec) == 0 {
				return 0, 0, false
			}
			dmin, dmax := math.Inf(1), math.Inf(-1)
			for _, d := range dec {
				dmin, dmax = min(dmin, d), max(dmax, d)
			}
			lo -= dmax
			hi -= dmin
		}
		return lo, hi, true
	case "cost":
		return 0, math.Inf(1), true
	}
	return 0, 0, false
}

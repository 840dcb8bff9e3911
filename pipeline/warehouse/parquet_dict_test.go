package warehouse

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// dictColumn gives the dictionary and indices a plain map gives (values in
// order of first appearance), whatever the shape of the column: sorted
// ids with repeats, a few values alternating, ascending ids that turn
// back, many values at random; and again after a reset, as each batch.
func TestDictColumnMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	id := func(i int) string { return fmt.Sprintf("AWP-P%07d", i) }
	shapes := map[string]func(n int) []string{
		"sorted ids with repeats": func(n int) []string {
			var out []string
			for i := 0; len(out) < n; i++ {
				for range 1 + rng.IntN(4) {
					out = append(out, id(i*3))
				}
			}
			return out[:n]
		},
		"few values alternating": func(n int) []string {
			vals := []string{"baseline", "followup", "month12", "", "baseline2"}
			out := make([]string, n)
			for i := range out {
				out[i] = vals[rng.IntN(len(vals))]
			}
			return out
		},
		"ascending then back": func(n int) []string {
			out := make([]string, n)
			for i := range out {
				out[i] = id(i % (n / 3))
			}
			return out
		},
		"many at random": func(n int) []string {
			out := make([]string, n)
			for i := range out {
				out[i] = id(rng.IntN(n / 4))
			}
			return out
		},
		"cycling, sometimes skipping": func(n int) []string {
			out := make([]string, 0, n)
			for len(out) < n {
				for j := range 30 {
					if rng.IntN(10) > 0 {
						out = append(out, fmt.Sprintf("scale%02d", (j*7)%30))
					}
				}
			}
			return out[:n]
		},
		"small then large": func(n int) []string {
			out := make([]string, n)
			for i := range out {
				if i < n/2 {
					out[i] = id(rng.IntN(dictScan))
				} else {
					out[i] = id(rng.IntN(100))
				}
			}
			return out
		},
	}
	for name, shape := range shapes {
		d := newDictColumn()
		for batch := range 3 {
			in := shape(5000)
			ref := map[string]int32{}
			var refVals []string
			refIdx := make([]int32, len(in))
			got := make([]int32, 0, len(in))
			for i, v := range in {
				j, ok := ref[v]
				if !ok {
					j = int32(len(refVals))
					ref[v] = j
					refVals = append(refVals, v)
				}
				refIdx[i] = j
				got = append(got, d.index(v))
			}
			if !slices.Equal(got, refIdx) || !slices.Equal(d.values, refVals) {
				t.Errorf("%s, batch %d: %d entries, want %d; indices equal %v", name, batch, len(d.values), len(refVals), slices.Equal(got, refIdx))
			}
			d.reset()
		}
	}
}

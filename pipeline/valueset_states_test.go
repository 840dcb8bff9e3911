package pipeline

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// eq5dOrder is the EQ-5D dimension order of a health-state profile:
// mobility, self-care, usual activities, pain/discomfort,
// anxiety/depression.
var eq5dOrder = []string{"eq5d_mo", "eq5d_sc", "eq5d_ua", "eq5d_pd", "eq5d_ad"}

// stateUtility is a made-up utility of a health state in stratum k, for
// tests only (ILLUSTRATIVE; not NICE DSU's mapping): each dimension
// weighs differently, and mobility × anxiety interact, so it is neither
// additive nor symmetric in the dimensions' order.
func stateUtility(k int, levels [5]int) float64 {
	u := 1 - 0.004*float64(k)
	for d, l := range levels {
		u -= 0.01 * float64(d+1) * float64(l-1)
	}
	return u - 0.006*float64((levels[0]-1)*(levels[4]-1))
}

// statesStratum is one stratum of the test's per-state value set.
type statesStratum struct {
	ageBand, gender string
	k               int // stateUtility's stratum; −1: additive dimensions instead
}

var statesStrata = []statesStratum{
	{"18-24", "female", 0},
	{"25-34", "male", 1},
	{"35-44", "female", 2},
	{"45-54", "male", -1},
}

// additiveDims is the one stratum of the test set given as decrements.
var additiveDims = map[string][]float64{
	"eq5d_mo": {0, 0.01, 0.02, 0.03, 0.04}, "eq5d_sc": {0, 0.02, 0.04, 0.06, 0.08},
	"eq5d_ua": {0, 0.03, 0.06, 0.09, 0.12}, "eq5d_pd": {0, 0.04, 0.08, 0.12, 0.16},
	"eq5d_ad": {0, 0.05, 0.10, 0.15, 0.20},
}

// statesValueSet writes the test's value set: per-state utilities by age
// band and gender for three strata, decrements for a fourth.
func statesValueSet() string {
	var b strings.Builder
	b.WriteString(`name: eq5d5l_states_ILLUSTRATIVE
title: Per-state value set by age band and gender
version: "0"
source: "ILLUSTRATIVE: utilities from a formula in a test; not NICE DSU's mapping nor any published value set"
strata:
`)
	for _, st := range statesStrata {
		fmt.Fprintf(&b, "  - age_band: %q\n    gender: %s\n", st.ageBand, st.gender)
		if st.k < 0 {
			b.WriteString("    dimensions:\n")
			for _, d := range eq5dOrder {
				fmt.Fprintf(&b, "      %s: %s\n", d, strings.Join(strings.Fields(fmt.Sprint(additiveDims[d])), ", "))
			}
			continue
		}
		b.WriteString("    states:\n")
		var l [5]int
		for l[0] = 1; l[0] <= 5; l[0]++ {
			for l[1] = 1; l[1] <= 5; l[1]++ {
				for l[2] = 1; l[2] <= 5; l[2]++ {
					for l[3] = 1; l[3] <= 5; l[3]++ {
						for l[4] = 1; l[4] <= 5; l[4]++ {
							fmt.Fprintf(&b, "      \"%d%d%d%d%d\": %s\n", l[0], l[1], l[2], l[3], l[4], strconv.FormatFloat(stateUtility(st.k, l), 'g', -1, 64))
						}
					}
				}
			}
		}
	}
	return b.String()
}

// A study chooses a per-state value set by age band and gender
// (economics.valueset): every eq5d5l.index of the bundled study equals the
// test's formula at the participant's profile (in EQ-5D order) and
// stratum, 1 − Σ decrements in the additive stratum, and null for a
// participant in no stratum or with a blank dimension; the scores metadata
// says "per health state".
func TestValueSetStatesByAgeAndGender(t *testing.T) {
	dir := t.TempDir()
	def, err := os.ReadFile(filepath.Join("..", "schemas", "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(def), "\neconomics:\n", "\neconomics:\n  valueset: eq5d5l_states_ILLUSTRATIVE\n", 1)
	if text == string(def) {
		t.Fatal("no economics section in the default study")
	}
	if err := os.MkdirAll(filepath.Join(dir, "valuesets"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"study.yaml": text, "valuesets/eq5d5l_states_ILLUSTRATIVE.yaml": statesValueSet()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := schemas.Load(filepath.Join(dir, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	in, _ := s.Instrument("eq5d5l")
	for i := range in.Scales {
		if sc := &in.Scales[i]; sc.Name == "index" && !slices.Equal(in.ScaleItems(sc), eq5dOrder) {
			t.Fatalf("the index's items are %v, not the EQ-5D order", in.ScaleItems(sc))
		}
	}
	env := warehouse.Env{Study: s, Version: "test"}
	env.Study.Analysis.Imputations = 5
	_, gen := runBundled(t, env)

	stratum, answers := eq5dTestInputs(t, gen)
	// want is the index by hand: the stratum's formula at the profile.
	want := func(id, wave string) float64 {
		var st *statesStratum
		for i := range statesStrata {
			if statesStrata[i].ageBand+"\x00"+statesStrata[i].gender == stratum[id] {
				st = &statesStrata[i]
			}
		}
		a := answers[eq5dTestKey{id, wave}]
		if st == nil {
			return math.NaN()
		}
		var l [5]int
		u := 1.0
		for d, item := range eq5dOrder {
			v, ok := a[item]
			if !ok {
				return math.NaN()
			}
			l[d] = int(v)
			u -= additiveDims[item][v-1]
		}
		if st.k < 0 {
			return u
		}
		return stateUtility(st.k, l)
	}
	counts := map[string]int{}
	err = warehouse.ScanTable(context.Background(), gen, "scores", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "study_id", "wave", "instrument", "scale", "value")
		if err != nil {
			return err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if cols[2].(*array.String).Value(i) != "eq5d5l" || cols[3].(*array.String).Value(i) != "index" {
				continue
			}
			id, wave := cols[0].(*array.String).Value(i), cols[1].(*array.String).Value(i)
			got := math.NaN()
			if cols[4].IsValid(i) {
				got = cols[4].(*array.Float64).Value(i)
			}
			w := want(id, wave)
			if math.IsNaN(got) != math.IsNaN(w) || math.Abs(got-w) > 1e-12 {
				t.Errorf("%s at %s: index %v, by hand %v (answers %v)", id, wave, got, w, answers[eq5dTestKey{id, wave}])
			}
			b, _, _ := strings.Cut(stratum[id], "\x00")
			switch {
			case math.IsNaN(w):
				counts["null"]++
			case b == "45-54":
				counts["additive"]++
			default:
				counts["per state"]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if counts["per state"] < 20 || counts["additive"] < 5 || counts["null"] < 10 {
		t.Errorf("indices %v: the test needs every kind", counts)
	}
	t.Logf("indices: %v", counts)
	files, err := warehouse.TableFiles(gen, "scores")
	if err != nil || len(files) == 0 {
		t.Fatal(err)
	}
	pf, err := file.OpenParquetFile(files[0], false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	if m := pf.MetaData().KeyValueMetadata().FindValue("cpi.valueset.eq5d5l_states_ILLUSTRATIVE"); m == nil || !strings.Contains(*m, "; per health state; by age band and gender; source: ILLUSTRATIVE") {
		t.Errorf("scores metadata names the value set as %v", m)
	}
}

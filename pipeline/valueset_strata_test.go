package pipeline

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// valuesetTiny is a hand-made value set by age band and gender, for the
// test only: made-up decrements, ILLUSTRATIVE in its name and source.
const valuesetTiny = `name: eq5d5l_tiny_ILLUSTRATIVE
title: Tiny value set by age band and gender
version: "0"
source: "ILLUSTRATIVE: made-up numbers for a test; not NICE DSU's mapping nor any published value set"
strata:
  - age_band: "18-24"
    gender: female
    dimensions:
      eq5d_mo: [0, 0.1, 0.2, 0.3, 0.4]
      eq5d_sc: [0, 0.1, 0.2, 0.3, 0.4]
      eq5d_ua: [0, 0.1, 0.2, 0.3, 0.4]
      eq5d_pd: [0, 0.1, 0.2, 0.3, 0.4]
      eq5d_ad: [0, 0.1, 0.2, 0.3, 0.4]
  - age_band: "25-34"
    gender: male
    dimensions:
      eq5d_mo: [0, 0.01, 0.02, 0.03, 0.04]
      eq5d_sc: [0, 0.02, 0.04, 0.06, 0.08]
      eq5d_ua: [0, 0.03, 0.06, 0.09, 0.12]
      eq5d_pd: [0, 0.04, 0.08, 0.12, 0.16]
      eq5d_ad: [0, 0.05, 0.10, 0.15, 0.20]
`

// A study chooses a value set by age band and gender
// (economics.valueset): every eq5d5l.index of the bundled study equals
// 1 − Σ the hand-made decrements of the participant's stratum, and is
// null for a participant in no stratum; the scores metadata names the
// value set with its source. A value set with both dimensions and
// strata, or a stratum with an unknown code, is refused.
func TestValueSetByAgeAndGender(t *testing.T) {
	dir := t.TempDir()
	def, err := os.ReadFile(filepath.Join("..", "schemas", "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(def), "\neconomics:\n", "\neconomics:\n  valueset: eq5d5l_tiny_ILLUSTRATIVE\n", 1)
	if text == string(def) {
		t.Fatal("no economics section in the default study")
	}
	if err := os.MkdirAll(filepath.Join(dir, "valuesets"), 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("study.yaml", text)
	write("valuesets/eq5d5l_tiny_ILLUSTRATIVE.yaml", valuesetTiny)
	s, err := schemas.Load(filepath.Join(dir, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tiny := map[string]map[string][]float64{
		"18-24\x00female": {"eq5d_mo": {0, 0.1, 0.2, 0.3, 0.4}, "eq5d_sc": {0, 0.1, 0.2, 0.3, 0.4}, "eq5d_ua": {0, 0.1, 0.2, 0.3, 0.4}, "eq5d_pd": {0, 0.1, 0.2, 0.3, 0.4}, "eq5d_ad": {0, 0.1, 0.2, 0.3, 0.4}},
		"25-34\x00male":   {"eq5d_mo": {0, 0.01, 0.02, 0.03, 0.04}, "eq5d_sc": {0, 0.02, 0.04, 0.06, 0.08}, "eq5d_ua": {0, 0.03, 0.06, 0.09, 0.12}, "eq5d_pd": {0, 0.04, 0.08, 0.12, 0.16}, "eq5d_ad": {0, 0.05, 0.10, 0.15, 0.20}},
	}
	env := warehouse.Env{Study: s, Version: "test"}
	env.Study.Analysis.Imputations = 5
	_, gen := runBundled(t, env)

	stratum, answers := eq5dTestInputs(t, gen)
	var inStratum, outside int
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
			want := math.NaN()
			dims, ok := tiny[stratum[id]]
			if a := answers[eq5dTestKey{id, wave}]; ok {
				want = 1
				for item, d := range dims {
					v, answered := a[item]
					if !answered {
						want = math.NaN()
						break
					}
					want -= d[v-1]
				}
			}
			if ok {
				inStratum++
			} else {
				outside++
			}
			if math.IsNaN(got) != math.IsNaN(want) || math.Abs(got-want) > 1e-12 {
				t.Errorf("%s at %s: index %v, by hand %v (stratum %q, answers %v)", id, wave, got, want, stratum[id], answers[eq5dTestKey{id, wave}])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if inStratum < 10 || outside < 10 {
		t.Errorf("%d indices in a stratum, %d outside: the test needs both", inStratum, outside)
	}
	t.Logf("%d indices in the value set's strata, %d outside (null)", inStratum, outside)
	files, err := warehouse.TableFiles(gen, "scores")
	if err != nil || len(files) == 0 {
		t.Fatal(err)
	}
	pf, err := file.OpenParquetFile(files[0], false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	if m := pf.MetaData().KeyValueMetadata().FindValue("cpi.valueset.eq5d5l_tiny_ILLUSTRATIVE"); m == nil || !strings.Contains(*m, "by age band and gender; source: ILLUSTRATIVE") {
		t.Errorf("scores metadata names the value set as %v", m)
	}

	// Refused: dimensions and strata both; an unknown age band.
	for _, bad := range []string{
		strings.Replace(valuesetTiny, "strata:\n", "dimensions: {eq5d_mo: [0, 0, 0, 0, 0]}\nstrata:\n", 1),
		strings.Replace(valuesetTiny, `"25-34"`, `"25-35"`, 1),
	} {
		write("valuesets/eq5d5l_tiny_ILLUSTRATIVE.yaml", bad)
		if _, err := schemas.Load(filepath.Join(dir, "study.yaml")); err == nil {
			t.Errorf("a bad value set was accepted:\n%s", bad)
		}
	}
}

// eq5dTestKey is a participant at a wave.
type eq5dTestKey struct{ id, wave string }

// eq5dTestInputs reads, from the tables of generation gen, each
// participant's stratum (age band, NUL, gender; absent when either is
// null) and EQ-5D-5L answers per wave (item -> level), for the value-set
// tests' recomputations.
func eq5dTestInputs(t *testing.T, gen string) (map[string]string, map[eq5dTestKey]map[string]int32) {
	t.Helper()
	stratum := map[string]string{}
	err := warehouse.ScanTable(context.Background(), gen, "participants", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "study_id", "age_band", "gender")
		if err != nil {
			return err
		}
		a, g := cols[1].(*array.String), cols[2].(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			if a.IsValid(i) && g.IsValid(i) {
				stratum[cols[0].(*array.String).Value(i)] = a.Value(i) + "\x00" + g.Value(i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	answers := map[eq5dTestKey]map[string]int32{}
	err = warehouse.ScanTable(context.Background(), gen, "responses", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "study_id", "wave", "instrument", "item", "value")
		if err != nil {
			return err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if cols[2].(*array.String).Value(i) != "eq5d5l" || !cols[4].IsValid(i) {
				continue
			}
			k := eq5dTestKey{cols[0].(*array.String).Value(i), cols[1].(*array.String).Value(i)}
			if answers[k] == nil {
				answers[k] = map[string]int32{}
			}
			answers[k][cols[3].(*array.String).Value(i)] = cols[4].(*array.Int32).Value(i)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return stratum, answers
}

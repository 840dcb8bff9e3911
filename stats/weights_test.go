package stats

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// propensityColumns returns the columns of
// glm(arm ~ age_band + gender + living_alone + diagnosis_group + y_base) in
// R's order with treatment contrasts (reference levels 18-24, female,
// anxiety), and the names of all dummy columns used in the balance table.
func (d *ancova) propensityColumns() (names []string, cols [][]float64) {
	names = []string{"(Intercept)"}
	cols = [][]float64{ones(len(d.arm))}
	for _, l := range []string{"25-34", "35-44", "45-54", "55-64", "65+"} {
		names = append(names, "age_band"+l)
		cols = append(cols, dummy(d.ageBand, l))
	}
	names = append(names, "gendermale", "living_alone")
	cols = append(cols, dummy(d.gender, "male"), d.livingAlone)
	for _, l := range []string{"depression", "other", "psychosis"} {
		names = append(names, "diagnosis_group"+l)
		cols = append(cols, dummy(d.diagnosis, l))
	}
	names = append(names, "y_base")
	cols = append(cols, d.yBase)
	return names, cols
}

func (d *ancova) ateWeights(t *testing.T) []float64 {
	t.Helper()
	_, cols := d.propensityColumns()
	_, ps, _, err := Logistic(columns(cols...), d.arm)
	if err != nil {
		t.Fatal(err)
	}
	w, err := ATEWeights(d.arm, ps)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestPropensityAndWeightsAgainstR(t *testing.T) {
	ref := loadReference(t)
	d := loadAncova(t)
	names, cols := d.propensityColumns()
	coef, ps, dev, err := Logistic(columns(cols...), d.arm)
	if err != nil {
		t.Fatal(err)
	}
	if len(coef) != len(ref.Propensity.Coef) {
		t.Fatalf("%d coefficients, R has %d", len(coef), len(ref.Propensity.Coef))
	}
	for j, name := range names {
		want, ok := ref.Propensity.Coef[name]
		if !ok {
			t.Fatalf("no R coefficient %q", name)
		}
		checkRel(t, "propensity "+name, coef[j], want, tolEst)
	}
	checkRel(t, "deviance", dev, ref.Propensity.Deviance, tolEst)

	w, err := ATEWeights(d.arm, ps)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range ref.Propensity.WeightsFirst5 {
		checkRel(t, "weight", w[i], want, tolEst)
	}
	var sum, max float64
	for _, v := range w {
		sum += v
		max = math.Max(max, v)
	}
	checkRel(t, "weights_sum", sum, ref.Propensity.WeightsSum, tolEst)
	checkRel(t, "weights_max", max, ref.Propensity.WeightsMax, tolEst)
	if ess := KishESS(w); !(ess > 100 && ess <= float64(len(w))) {
		t.Errorf("Kish ESS = %v, want between 100 and n", ess)
	}
}

func TestBalanceAgainstR(t *testing.T) {
	ref := loadReference(t)
	d := loadAncova(t)
	w := d.ateWeights(t)
	names, cols := d.propensityColumns()
	names = append(names, "age_band18-24")
	cols = append(cols, dummy(d.ageBand, "18-24"))
	checked := 0
	for j, name := range names {
		want, ok := ref.Balance[name]
		if !ok {
			continue
		}
		checked++
		got, err := SMD(cols[j], d.arm, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkRel(t, "smd_unweighted "+name, got, want.Unweighted, tolEst)
		got, err = SMD(cols[j], d.arm, w)
		if err != nil {
			t.Fatal(err)
		}
		checkRel(t, "smd_weighted "+name, got, want.Weighted, tolEst)
	}
	if checked != len(ref.Balance) {
		t.Errorf("checked %d covariates, R has %d", checked, len(ref.Balance))
	}
}

func TestWeightedCR2AgainstR(t *testing.T) {
	ref := loadReference(t)
	d := loadAncova(t)
	w := d.ateWeights(t)
	fit, err := OLS(d.design(d.arm, d.yBase), d.yFu, w)
	if err != nil {
		t.Fatal(err)
	}
	cr2, err := fit.CR2(d.teamCode)
	if err != nil {
		t.Fatal(err)
	}
	checkCoefTest(t, "weighted cr2", cr2.Test(1, 0.95), ref.WeightedCR2)
}

func TestKishAndVarianceRatio(t *testing.T) {
	// Hand-computed: (1+1+2)²/(1+1+4) = 16/6.
	if got := KishESS([]float64{1, 1, 2}); !closeRel(got, 16.0/6, 1e-15) {
		t.Errorf("KishESS = %v, want 8/3", got)
	}
	// var(1,2,3) = 1, var(2,4,6) = 4.
	x := []float64{1, 2, 3, 2, 4, 6}
	arm := []float64{1, 1, 1, 0, 0, 0}
	if got, err := VarianceRatio(x, arm, nil); err != nil || !closeRel(got, 0.25, 1e-15) {
		t.Errorf("VarianceRatio = %v, %v; want 0.25", got, err)
	}
	// Equal weights give the unweighted ratio.
	if got, err := VarianceRatio(x, arm, []float64{2, 2, 2, 2, 2, 2}); err != nil || !closeRel(got, 0.25, 1e-14) {
		t.Errorf("weighted VarianceRatio = %v, %v; want 0.25", got, err)
	}
	if _, err := SMD([]float64{1, 1, 1, 1}, []float64{1, 1, 0, 0}, nil); err == nil {
		t.Error("SMD of a constant covariate: no error")
	}
}

func TestOLSRankDeficient(t *testing.T) {
	x := mat.NewDense(4, 3, []float64{
		1, 1, 2,
		1, 2, 4,
		1, 3, 6,
		1, 4, 8,
	})
	if _, err := OLS(x, []float64{1, 2, 3, 5}, nil); err == nil {
		t.Error("collinear design: no error")
	}
	if _, _, _, err := Logistic(x, []float64{0, 1, 0, 1}); err == nil {
		t.Error("collinear logistic design: no error")
	}
}

// TestATEWeightsGroupedMatchesRows: the weights from each row's group's
// propensity are ATEWeights' of the rows' propensities to the bit, and its
// errors are ATEWeights' (the first row at fault, in row order).
func TestATEWeightsGroupedMatchesRows(t *testing.T) {
	d := loadAncova(t)
	_, cols := d.propensityColumns()
	_, ps, _, err := Logistic(columns(cols...), d.arm)
	if err != nil {
		t.Fatal(err)
	}
	// Groups: the distinct propensities, numbered in order of appearance.
	index := map[float64]int32{}
	var fitted []float64
	pat := make([]int32, len(ps))
	for i, q := range ps {
		p, ok := index[q]
		if !ok {
			p = int32(len(fitted))
			index[q] = p
			fitted = append(fitted, q)
		}
		pat[i] = p
	}
	if len(fitted) < 10 {
		t.Fatalf("only %d groups", len(fitted))
	}
	want, err := ATEWeights(d.arm, ps)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ATEWeightsGrouped(d.arm, pat, fitted)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			t.Fatalf("row %d: grouped %v, rows %v", i, got[i], want[i])
		}
	}
	// Errors: a propensity of 1 in the group of row 3 (and later rows).
	bad := append([]float64(nil), fitted...)
	bad[pat[3]] = 1
	rows := make([]float64, len(pat))
	for i, p := range pat {
		rows[i] = bad[p]
	}
	_, errRows := ATEWeights(d.arm, rows)
	_, errGrouped := ATEWeightsGrouped(d.arm, pat, bad)
	if errRows == nil || errGrouped == nil || errRows.Error() != errGrouped.Error() {
		t.Fatalf("errors: rows %v, grouped %v", errRows, errGrouped)
	}
	// An arm of 2 at row 5: ATEWeights' error; with a group out of range
	// at a later row too, the group's (its rows are checked first).
	arm := slices.Clone(d.arm)
	arm[5] = 2
	_, errRows = ATEWeights(arm, ps)
	_, errGrouped = ATEWeightsGrouped(arm, pat, fitted)
	if errRows == nil || errGrouped == nil || errRows.Error() != errGrouped.Error() {
		t.Fatalf("bad arm: rows %v, grouped %v", errRows, errGrouped)
	}
	far := slices.Clone(pat)
	far[len(far)-1] = int32(len(fitted))
	if _, err := ATEWeightsGrouped(arm, far, fitted); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("row %d has group", len(far)-1)) {
		t.Fatalf("a group out of range after a bad arm: %v", err)
	}
	if _, err := ATEWeightsGrouped(d.arm, pat, fitted[:1]); err == nil {
		t.Fatal("a group out of range: no error")
	}
	if _, err := ATEWeightsGrouped(d.arm[:1], pat, fitted); err == nil {
		t.Fatal("lengths differ: no error")
	}
}

// TestATEWeightsFewGroupsMatchesRows: with far fewer groups than rows
// (each group's two weights looked up per row), the weights are
// ATEWeights' of the rows' propensities to the bit, a group unused by any
// row may hold any value, and a used group's propensity of 0 is an error.
func TestATEWeightsFewGroupsMatchesRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 7))
	const n, groups = 2000, 7
	fitted := []float64{0.1, 0.35, 0.5, 0.61803, 0.9, 0.999, 1} // the last unused
	arm, ps := make([]float64, n), make([]float64, n)
	pat := make([]int32, n)
	for i := range n {
		pat[i] = int32(rng.IntN(groups - 1))
		arm[i] = float64(rng.IntN(2))
		ps[i] = fitted[pat[i]]
	}
	want, err := ATEWeights(arm, ps)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ATEWeightsGrouped(arm, pat, fitted)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			t.Fatalf("row %d: grouped %v, rows %v", i, got[i], want[i])
		}
	}
	bad := slices.Clone(fitted)
	bad[pat[5]] = 0
	if _, err := ATEWeightsGrouped(arm, pat, bad); err == nil {
		t.Fatal("a used group's propensity 0: no error")
	}
}

// BenchmarkATEWeightsGrouped: 1,000,000 rows in 2,000 groups (each
// group's two weights looked up) and in 1,000,000 (one a row).
func BenchmarkATEWeightsGrouped(b *testing.B) {
	for _, groups := range []int{2000, 1_000_000} {
		b.Run(fmt.Sprint(groups), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			const n = 1_000_000
			arm, pat, fitted := make([]float64, n), make([]int32, n), make([]float64, groups)
			for g := range fitted {
				fitted[g] = 0.2 + 0.6*rng.Float64()
			}
			for i := range n {
				pat[i], arm[i] = int32(i%groups), float64(rng.IntN(2))
			}
			for b.Loop() {
				if _, err := ATEWeightsGrouped(arm, pat, fitted); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestKishESSByArm: each arm's effective sample size is KishESS of that
// arm's weights, bit for bit, and the largest weight is the largest; an
// arm without weights has NaN.
func TestKishESSByArm(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 1))
	w, arm := make([]float64, 777), make([]float64, 777)
	var w1, w0 []float64
	for i := range w {
		w[i], arm[i] = 0.2+3*rng.Float64(), float64(rng.IntN(2))
		if arm[i] == 1 {
			w1 = append(w1, w[i])
		} else {
			w0 = append(w0, w[i])
		}
	}
	essI, essC, maxW := KishESSByArm(w, arm)
	if math.Float64bits(essI) != math.Float64bits(KishESS(w1)) || math.Float64bits(essC) != math.Float64bits(KishESS(w0)) {
		t.Errorf("ess %v %v, want %v %v", essI, essC, KishESS(w1), KishESS(w0))
	}
	if want := slices.Max(w); maxW != want {
		t.Errorf("max weight %v, want %v", maxW, want)
	}
	if essI, essC, _ := KishESSByArm([]float64{1, 2}, []float64{1, 1}); essI != 9.0/5 || !math.IsNaN(essC) {
		t.Errorf("one arm: %v %v, want 1.8 NaN", essI, essC)
	}
}

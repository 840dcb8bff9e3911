package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// cellPatterns groups the rows of x (last column the numeric covariate)
// into patterns and their first K−1 columns into cells, for LogisticCells
// and LogisticPatterns alike; pat is each row's pattern.
func cellPatterns(t *testing.T, x *mat.Dense, arm []float64) (pc *PatternCounts, cells [][]float64, cellOf []int32, y []float64, pat []int) {
	t.Helper()
	n, k := x.Dims()
	pc, _ = NewPatternCounts(k)
	pat = make([]int, n)
	index := map[string]int32{}
	for i := 0; i < n; i++ {
		row := x.RawRowView(i)
		p, err := pc.Add(row, arm[i])
		if err != nil {
			t.Fatal(err)
		}
		pat[i] = p
		if p < len(cellOf) {
			continue
		}
		key := fmtRow(row[:k-1])
		c, ok := index[key]
		if !ok {
			c = int32(len(cells))
			index[key] = c
			cells = append(cells, append([]float64(nil), row[:k-1]...))
		}
		cellOf = append(cellOf, c)
		y = append(y, row[k-1])
	}
	return pc, cells, cellOf, y, pat
}

func fmtRow(r []float64) string {
	b := make([]byte, 0, 8*len(r))
	for _, v := range r {
		u := math.Float64bits(v)
		for s := 0; s < 64; s += 8 {
			b = append(b, byte(u>>s))
		}
	}
	return string(b)
}

// TestLogisticCellsMatchesPatterns: the propensity model fitted from cell
// sums equals LogisticPatterns (coefficients, every pattern's fitted
// probability, deviance; 1e-10 relative) on the R reference data, where it
// must also match R's glm with the reference tolerance, and on 20,000
// simulated rows with four categorical covariates, a 0/1 one and a
// continuous one with a large mean (costs in pounds: the centred sums are
// what keep the step accurate), and with a continuous covariate taking few
// values (patterns of many rows).
func TestLogisticCellsMatchesPatterns(t *testing.T) {
	check := func(name string, x *mat.Dense, arm []float64) []float64 {
		t.Helper()
		pc, cells, cellOf, y, _ := cellPatterns(t, x, arm)
		trials, ones := pc.trials, pc.ones
		pcoef, pfit, pdev, err := LogisticPatterns(pc)
		if err != nil {
			t.Fatal(err)
		}
		coef, fit, dev, err := LogisticCells(cells, cellOf, y, trials, ones)
		if err != nil {
			t.Fatal(err)
		}
		for j := range pcoef {
			checkClose(t, name+" coef", coef[j], pcoef[j], tolSuff)
		}
		worst := 0.0
		for p := range pfit {
			worst = math.Max(worst, relErr(fit[p], pfit[p]))
		}
		if !(worst <= tolSuff) {
			t.Errorf("%s: fitted probabilities differ by %.2g relative (tol %g)", name, worst, tolSuff)
		}
		checkClose(t, name+" deviance", dev, pdev, tolSuff)
		t.Logf("%s: %d patterns, %d cells, worst fitted rel. diff %.2g", name, len(cellOf), len(cells), worst)
		return coef
	}

	ref := loadReference(t)
	d := loadAncova(t)
	names, cols := d.propensityColumns()
	coef := check("reference", columns(cols...), d.arm)
	for j, name := range names {
		checkRel(t, "propensity "+name, coef[j], ref.Propensity.Coef[name], tolEst)
	}

	rng := rand.New(rand.NewPCG(31, 7))
	for _, sim := range []struct {
		name string
		y    func() float64
	}{
		{"costs", func() float64 { return math.Round(100*(800+600*rng.ExpFloat64())) / 100 }},
		{"few values", func() float64 { return float64(rng.IntN(9)) }},
	} {
		const n = 20_000
		x := mat.NewDense(n, 9, nil)
		arm := make([]float64, n)
		for i := 0; i < n; i++ {
			row := x.RawRowView(i)
			row[0] = 1
			if a := rng.IntN(4); a > 0 {
				row[a] = 1
			}
			if rng.Float64() < 0.5 {
				row[4] = 1
			}
			if rng.Float64() < 0.3 {
				row[5] = 1
			}
			if g := rng.IntN(3); g > 0 {
				row[5+g] = 1
			}
			row[8] = sim.y()
			scale := 1.0
			if sim.name == "costs" {
				scale = 1.0 / 1000
			}
			eta := -0.3 + 0.4*row[1] - 0.2*row[3] + 0.5*row[4] - 0.6*row[5] + 0.3*row[7] + 0.2*scale*row[8]
			if rng.Float64() < 1/(1+math.Exp(-eta)) {
				arm[i] = 1
			}
		}
		check(sim.name, x, arm)
	}
}

// TestLogisticCellsErrors: the preconditions of LogisticPatterns, and a
// covariate constant within every cell (collinear with the cells) is
// rank deficient.
func TestLogisticCellsErrors(t *testing.T) {
	cells := [][]float64{{1, 0}, {1, 1}}
	if _, _, _, err := LogisticCells(cells, []int32{0, 1, 1}, []float64{1, 2, 3}, []float64{2, 2, 2}, []float64{0, 0, 0}); err == nil {
		t.Error("no variation in y: no error")
	}
	if _, _, _, err := LogisticCells(cells, []int32{0, 1, 1}, []float64{1, 2, 2}, []float64{2, 2, 2}, []float64{1, 0, 2}); err == nil {
		t.Error("covariate constant within cells: no error")
	}
	if _, _, _, err := LogisticCells(cells, []int32{0, 2}, []float64{1, 2}, []float64{2, 2}, []float64{1, 0}); err == nil {
		t.Error("cell out of range: no error")
	}
	if _, _, _, err := LogisticCells(cells, []int32{0, 1}, []float64{1, math.NaN()}, []float64{2, 2}, []float64{1, 0}); err == nil {
		t.Error("NaN covariate: no error")
	}
	if _, _, _, err := LogisticCells(cells, []int32{0, 1}, []float64{1, 2}, []float64{2, 2}, []float64{3, 0}); err == nil {
		t.Error("more ones than trials: no error")
	}
	if _, _, _, err := LogisticCells([][]float64{{1, 0, 0}}, []int32{0, 0}, []float64{1, 2}, []float64{2, 2}, []float64{1, 0}); err == nil {
		t.Error("one cell for four coefficients: no error")
	}
}

// BenchmarkLogisticCells fits 700,000 ungrouped rows (every row its own
// pattern, as with a cost as the continuous covariate) in 48 cells.
func BenchmarkLogisticCells(b *testing.B) {
	const n, nc = 700_000, 48
	rng := rand.New(rand.NewPCG(5, 6))
	cells := make([][]float64, nc)
	for c := range cells {
		row := make([]float64, 7)
		row[0] = 1
		row[1+c%6] = float64(c / 6 % 2)
		cells[c] = row
	}
	cellOf, y, trials, ones := make([]int32, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		c := rng.IntN(nc)
		cellOf[i], y[i], trials[i] = int32(c), 1500+800*rng.NormFloat64(), 1
		if rng.Float64() < 0.3+0.01*float64(c%10)+y[i]/1e5 {
			ones[i] = 1
		}
	}
	for b.Loop() {
		if _, _, _, err := LogisticCells(cells, cellOf, y, trials, ones); err != nil {
			b.Fatal(err)
		}
	}
}

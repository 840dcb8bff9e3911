package stats

import (
	"math/rand/v2"
	"sync"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// suffFrame is a synthetic analysis frame held as columns, the way compare
// will hand it to ClusterSums: 1,000,000 rows in 10 teams, K = 20 columns
// (intercept, arm, baseline, 3 age bands, gender, living alone, 5
// diagnosis groups, 2 continuous covariates, 4 trust dummies, fidelity
// dose).
type suffFrame struct {
	cols    [][]float64
	y, w    []float64
	cluster []int // 0..9 in order of first appearance
}

const suffK = 20

var (
	suffOnce  sync.Once
	suffBench *suffFrame
)

func millionFrame() *suffFrame {
	suffOnce.Do(func() {
		const n, g = 1_000_000, 10
		rng := rand.New(rand.NewPCG(14, 1))
		f := &suffFrame{cols: make([][]float64, suffK), y: make([]float64, n), w: make([]float64, n), cluster: make([]int, n)}
		for j := range f.cols {
			f.cols[j] = make([]float64, n)
		}
		u := make([]float64, g)
		for c := range u {
			u[c] = rng.NormFloat64()
		}
		for i := 0; i < n; i++ {
			c := i * g / n
			f.cluster[i] = c
			f.cols[0][i] = 1
			f.cols[1][i] = float64(c % 2)
			f.cols[2][i] = 15 + 3*rng.NormFloat64()
			if a := rng.IntN(4); a > 0 {
				f.cols[2+a][i] = 1
			}
			if rng.Float64() < 0.5 {
				f.cols[6][i] = 1
			}
			if rng.Float64() < 0.3 {
				f.cols[7][i] = 1
			}
			if d := rng.IntN(6); d > 0 {
				f.cols[7+d][i] = 1
			}
			f.cols[13][i] = rng.NormFloat64()
			f.cols[14][i] = 40 + 12*rng.NormFloat64()
			if tr := c / 2; tr > 0 {
				f.cols[14+tr][i] = 1
			}
			f.cols[19][i] = float64(c%2) * rng.Float64()
			f.y[i] = 2 + 0.9*f.cols[1][i] + 0.9*f.cols[2][i] + 0.1*f.cols[14][i] + u[c] + 3*rng.NormFloat64()
			f.w[i] = 0.5 + rng.Float64()
		}
		suffBench = f
	})
	return suffBench
}

func (f *suffFrame) sums(b *testing.B, weighted bool) *ClusterSums {
	s, err := NewClusterSums(suffK, weighted)
	if err != nil {
		b.Fatal(err)
	}
	var w []float64
	if weighted {
		w = f.w
	}
	if err := s.AddColumns(f.cluster, f.cols, f.y, w); err != nil {
		b.Fatal(err)
	}
	return s
}

func (f *suffFrame) dense() *mat.Dense {
	n := len(f.y)
	x := mat.NewDense(n, suffK, nil)
	for j, c := range f.cols {
		x.SetCol(j, c)
	}
	return x
}

// BenchmarkSuffAccumulate: one pass over 1M rows × 20 columns into the
// per-team sums, unweighted and weighted.
func BenchmarkSuffAccumulate(b *testing.B) {
	f := millionFrame()
	for _, weighted := range []bool{false, true} {
		name := "unweighted"
		if weighted {
			name = "weighted"
		}
		b.Run(name, func(b *testing.B) {
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f.sums(b, weighted)
			}
		})
	}
}

// suffAllFits runs compare's fits from the sums: OLS with CR1 and CR2
// (primary), WLS with CR2 (weighted), the wild bootstrap with 9,999 draws
// and its test-inversion interval, and the REML random-intercept model.
func suffAllFits(b *testing.B, s, sw *ClusterSums) {
	fit, err := SuffOLS(s)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := fit.CR1Test(1, 0.95); err != nil {
		b.Fatal(err)
	}
	if _, err := fit.CR2(); err != nil {
		b.Fatal(err)
	}
	wfit, err := SuffOLS(sw)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := wfit.CR2(); err != nil {
		b.Fatal(err)
	}
	if _, err := SuffWildClusterBootstrap(s, 1, WildConfig{Draws: 9999, Level: 0.95}, rand.New(rand.NewPCG(1, 2))); err != nil {
		b.Fatal(err)
	}
	if _, err := SuffMixedREML(s); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSuffEverything: one weighted accumulation pass (whose
// unweighted view serves the OLS analyses) and every fit, at 1M rows,
// K = 20.
func BenchmarkSuffEverything(b *testing.B) {
	f := millionFrame()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sw := f.sums(b, true)
		suffAllFits(b, sw.Unweighted(), sw)
	}
}

// BenchmarkSuffFitsOnly: every fit from sums already accumulated.
func BenchmarkSuffFitsOnly(b *testing.B) {
	f := millionFrame()
	s, sw := f.sums(b, false), f.sums(b, true)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		suffAllFits(b, s, sw)
	}
}

// BenchmarkDenseEverythingK20 is the same work by the dense functions, for
// comparison (-bench DenseEverythingK20).
func BenchmarkDenseEverythingK20(b *testing.B) {
	f := millionFrame()
	x := f.dense()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fit, err := OLS(x, f.y, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := fit.CR1Test(f.cluster, 1, 0.95); err != nil {
			b.Fatal(err)
		}
		if _, err := fit.CR2(f.cluster); err != nil {
			b.Fatal(err)
		}
		wfit, err := OLS(x, f.y, f.w)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := wfit.CR2(f.cluster); err != nil {
			b.Fatal(err)
		}
		if _, err := WildClusterBootstrap(x, f.y, nil, f.cluster, 1, WildConfig{Draws: 9999, Level: 0.95}, rand.New(rand.NewPCG(1, 2))); err != nil {
			b.Fatal(err)
		}
		if _, err := MixedREML(x, f.y, f.cluster); err != nil {
			b.Fatal(err)
		}
	}
}

// propensityCols are the categorical columns of millionFrame used by the
// propensity model (intercept, age bands, gender, living alone, diagnosis).
var propensityCols = []int{0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

// BenchmarkSuffLogisticPatterns: the propensity model at 1M rows from
// covariate pattern counts (count + IRLS).
func BenchmarkSuffLogisticPatterns(b *testing.B) {
	f := millionFrame()
	row := make([]float64, len(propensityCols))
	arm := f.cols[1]
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pc, err := NewPatternCounts(len(propensityCols))
		if err != nil {
			b.Fatal(err)
		}
		for r := range f.y {
			for j, c := range propensityCols {
				row[j] = f.cols[c][r]
			}
			if _, err := pc.Add(row, arm[r]); err != nil {
				b.Fatal(err)
			}
		}
		if _, _, _, err := LogisticPatterns(pc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDenseLogisticMillion is Logistic on the same 1M rows, for
// comparison.
func BenchmarkDenseLogisticMillion(b *testing.B) {
	f := millionFrame()
	x := mat.NewDense(len(f.y), len(propensityCols), nil)
	for j, c := range propensityCols {
		x.SetCol(j, f.cols[c])
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, _, err := Logistic(x, f.cols[1]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSuffMillionK7 is the work of the dense benchmarks in
// bench_test.go (OLSMillion, CR2Million, CR2MillionWeighted,
// MixedMillion: 1M rows, K = 7) from one weighted accumulation pass.
func BenchmarkSuffMillionK7(b *testing.B) {
	x, y, w, cl := millionRows(1_000_000, 10, 1)
	n, k := x.Dims()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sw, err := NewClusterSums(k, true)
		if err != nil {
			b.Fatal(err)
		}
		for r := 0; r < n; r++ {
			if err := sw.Add(cl[r], x.RawRowView(r), y[r], w[r]); err != nil {
				b.Fatal(err)
			}
		}
		s := sw.Unweighted()
		for _, sums := range []*ClusterSums{s, sw} {
			fit, err := SuffOLS(sums)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := fit.CR2(); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := SuffMixedREML(s); err != nil {
			b.Fatal(err)
		}
	}
}

package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// millionRows builds a synthetic cluster-randomised data set: n rows in g
// clusters, columns intercept, arm (cluster level), a baseline covariate
// and four stratum dummies (cluster level), like the cpi ANCOVA.
func millionRows(n, g int, seed uint64) (*mat.Dense, []float64, []float64, []int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	const k = 7
	x := mat.NewDense(n, k, nil)
	y := make([]float64, n)
	w := make([]float64, n)
	cl := make([]int, n)
	u := make([]float64, g)
	for c := range u {
		u[c] = rng.NormFloat64()
	}
	raw := x.RawMatrix()
	for i := 0; i < n; i++ {
		c := i * g / n
		row := raw.Data[i*k : i*k+k]
		row[0] = 1
		row[1] = float64(c % 2)
		row[2] = 15 + 3*rng.NormFloat64()
		if s := c / 2; s > 0 {
			row[2+s] = 1
		}
		y[i] = 2 + 0.9*row[1] + 0.9*row[2] + u[c] + 3*rng.NormFloat64()
		w[i] = 0.5 + rng.Float64()
		cl[i] = c
	}
	return x, y, w, cl
}

func BenchmarkCR2Million(b *testing.B) {
	x, y, _, cl := millionRows(1_000_000, 10, 1)
	fit, err := OLS(x, y, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := fit.CR2(cl); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCR2MillionWeighted(b *testing.B) {
	x, y, w, cl := millionRows(1_000_000, 10, 1)
	fit, err := OLS(x, y, w)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := fit.CR2(cl); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOLSMillion(b *testing.B) {
	x, y, _, _ := millionRows(1_000_000, 10, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := OLS(x, y, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMixedMillion(b *testing.B) {
	x, y, _, cl := millionRows(1_000_000, 10, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := MixedREML(x, y, cl); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWildBootstrap9999(b *testing.B) {
	d := loadAncova(b)
	x := d.design(d.arm, d.yBase)
	for i := 0; i < b.N; i++ {
		if _, err := WildClusterBootstrap(x, d.yFu, nil, d.teamCode, 1, WildConfig{Draws: 9999, Level: 0.95}, rand.New(rand.NewPCG(1, 2))); err != nil {
			b.Fatal(err)
		}
	}
}

// imputeRows builds n participants in teams of 1,000 (n/1000 teams, arm
// alternating by team, 5 trusts), fixed effects intercept, arm, 4 trust
// dummies and 3 covariates, baseline and follow-up correlated 0.6 with ICC
// 0.05, 20% of follow-ups and 3% of baselines missing.
func imputeRows(n int, seed uint64) (*mat.Dense, [][]float64, []int) {
	rng := rand.New(rand.NewPCG(seed, 3))
	const k = 9
	g := n / 1000
	x := mat.NewDense(n, k, nil)
	yb := make([]float64, n)
	yf := make([]float64, n)
	team := make([]int, n)
	raw := x.RawMatrix()
	for i := 0; i < n; i++ {
		c := i * g / n
		row := raw.Data[i*k : i*k+k]
		row[0] = 1
		row[1] = float64(c % 2)
		if s := (c / 2) % 5; s > 0 {
			row[1+s] = 1
		}
		row[6] = float64(rng.IntN(2))
		row[7] = rng.NormFloat64()
		row[8] = float64(rng.IntN(3))
		e1, e2 := rng.NormFloat64(), rng.NormFloat64()
		yb[i] = 10 + row[7] + 3*e1
		yf[i] = 11 + row[1] + 0.5*row[7] + 3*(0.6*e1+0.8*e2)
		if rng.Float64() < 0.2 {
			yf[i] = math.NaN()
		}
		if rng.Float64() < 0.03 {
			yb[i] = math.NaN()
		}
		team[i] = c
	}
	return x, [][]float64{yb, yf}, team
}

func benchmarkImpute(b *testing.B, n int) {
	x, y, team := imputeRows(n, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, err := ImputeMultilevel(x, y, team, ImputeConfig{M: 50}, rand.New(rand.NewPCG(1, 2)), func(int, [][]float64) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImpute100k and BenchmarkImpute1M: M = 50 imputations with the
// default burn-in and thinning (1,181 Gibbs iterations), completed data
// handed to a no-op visitor.
func BenchmarkImpute100k(b *testing.B) { benchmarkImpute(b, 100_000) }
func BenchmarkImpute1M(b *testing.B)   { benchmarkImpute(b, 1_000_000) }

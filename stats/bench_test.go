package stats

import (
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

package compare

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/connectingpeople/cpi/schemas"
)

// ittBenchFrame is a national-scale itt_mi frame: n participants in 10
// teams (5 trusts, one team per arm in each), an outcome on 0–27 with a
// baseline, 20% of follow-ups and 3% of baselines missing, in random
// order of teams (as the warehouse's rows are).
func ittBenchFrame(s *schemas.Study, n int) *colFrame {
	rng := rand.New(rand.NewPCG(3, 5))
	f := &colFrame{strata: s.TrustCodes()}
	for j := range 10 {
		f.teams = append(f.teams, string(rune('a'+j)))
	}
	for i := range n {
		team := rng.IntN(10)
		f.rows = append(f.rows, int32(i))
		f.cluster = append(f.cluster, int32(team))
		f.arm = append(f.arm, float64(team%2))
		f.stratum = append(f.stratum, int32(team/2))
		b := 12 + 4*rng.NormFloat64()
		y := 0.6*b + 5 + float64(team%2) + 3*rng.NormFloat64()
		if rng.Float64() < 0.2 {
			y = math.NaN()
		}
		if rng.Float64() < 0.03 {
			b = math.NaN()
		}
		f.yBase, f.yFU = append(f.yBase, b), append(f.yFU, y)
	}
	return f
}

// BenchmarkITTMIMillion: itt_mi and itt_delta's fits of one outcome at
// 1,000,000 participants (M = 50, the default study's δ grid: the
// imputations and the fits at 0 and ±h), as compare runs them.
func BenchmarkITTMIMillion(b *testing.B) {
	s, err := schemas.Default()
	if err != nil {
		b.Fatal(err)
	}
	f := ittBenchFrame(s, 1_000_000)
	b.ResetTimer()
	for range b.N {
		c := &outcomeComparison{s: s, index: 0, wave: 1, waveName: s.Waves[1], outcome: s.Analysis.Outcomes[0], hasBase: true}
		if _, _, err := c.miPool(f, []float64{0}); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.miPool(f, []float64{-1, -0.5, 0, 0.5, 1}); err != nil {
			b.Fatal(err)
		}
	}
}

package compare

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// The method-choice simulation of cost_effectiveness (issue 16): studies
// like the cpi study, 5 trusts with one intervention and one control team
// each (5 clusters per arm), n participants per team drawn uniformly from
// [n/2, 3n/2] (n = 15, the bundled study's size, and n = 100).
//
//   - Follow-up cost = T_g·f_i·Z_i: f_i ~ lognormal(mean 1, σ 0.5) a
//     participant's frailty; T_g = τ_trust·τ_team the team's multiplier,
//     both lognormal with mean 1 (σ 0.2 and 0.3: team effects on costs);
//     Z_i zero with probability 0.2 (many zeros), else exponential
//     community costs with mean £800 (control) or £700 (intervention),
//     plus, with probability 0.06, an inpatient stay of 1 + Poisson(14)
//     days at £435 (a few long stays). So E[cost | arm] differs by
//     0.8·(700 − 800) = −£80 exactly.
//   - Baseline cost = T_g·f_i·Z0_i, Z0 the control arm's Z (3 months'
//     recall is left out: only the correlation matters).
//   - Utility u0 = 0.65 + 0.18·N; u1 = 0.3 + 0.55·u0 + 0.04·arm + v_trust
//   - v_team + 0.15·N, v ~ N(0, 0.03²) and N(0, 0.05²) (team effects on
//     QALYs); QALY = 0.5·(u0 + u1)/2 over six months, so the incremental
//     QALY is 0.25·0.04 = 0.01.
//
// True INB(λ) = 0.01λ + 80: £280 at λ = 20,000 and £380 at 30,000. Each
// study is analysed like cost_effectiveness (ceFitCR2 and ceBootstrap on
// the same frame); the table is the share of studies whose 95% interval
// covers the true INB.
//
// Short run (go test): 200 studies per n, B = 200. Long run
// (-compare.long): 2,000 studies per n, B = 1,000. The assertions (both
// runs): the mean estimate is within 4 Monte-Carlo SE of the truth for both
// n (the data-generating process and its truth agree), and cr2's coverage
// is at least 0.90 at both λ and n.
//
// Measured, long run (2,000 studies per n, B = 1,000, seeds 2027/r; Monte
// Carlo SE of a coverage near 0.95 is 0.005; 66 s CPU):
//
//	n/team  λ       cr2 coverage (width)  two_stage_bootstrap (width)
//	15      20,000  0.955 (2,234)         0.988 (2,445)
//	15      30,000  0.950 (2,551)         0.987 (2,793)
//	100     20,000  0.957 (1,441)         0.968 (1,367)
//	100     30,000  0.957 (1,756)         0.961 (1,616)
//
// Mean INB 290.2 and 387.7 at n = 15 (MC se 10 and 11), 277.5 and 376.3 at
// n = 100 (MC se 6 and 7.5): unbiased. 1.3% of replicates unestimable.
// The choice (economics.default_method, default cr2): cr2 covers at the
// nominal level at both sizes and both λ; the bootstrap over-covers with
// intervals 9% wider at the bundled study's size and is near nominal only
// with 100 per team. So cr2 is primary and the bootstrap a sensitivity
// analysis (and the cost-effectiveness plane's cloud).
func TestCostEffectivenessCoverage(t *testing.T) {
	studies, B := 200, 200
	if *ittLong {
		studies, B = 2000, 1000
	}
	lambdas := []float64{20000, 30000}
	truth := func(l float64) float64 { return 0.01*l + 80 }
	for _, n := range []int{15, 100} {
		start := time.Now()
		var cover [2][2]int // method × λ
		var width [2][2]float64
		var est [2]float64
		var est2 [2]float64
		failed := 0
		for r := range studies {
			f := ceSimFrame(rand.New(rand.NewPCG(2027, uint64(r))), n)
			point, err := ceFitCR2(f, lambdas, 0.95)
			if err != nil {
				t.Fatalf("n %d, study %d: %v", n, r, err)
			}
			boot, _, err := ceBootstrap(t.Context(), f, lambdas, func() []ceRow { return point }, B, uint64(r), 0.95, ceExactTeam)
			if err != nil {
				t.Fatal(err)
			}
			var nf int
			if _, err := fmt.Sscanf(boot[0].note, fmt.Sprintf("%d replicates, seed %d; %%d in which", B, r), &nf); err == nil {
				failed += nf
			}
			for k, l := range lambdas {
				tr := truth(l)
				est[k] += point[k].inb
				est2[k] += point[k].inb * point[k].inb
				for m, row := range []ceRow{point[k], boot[k]} {
					if row.inbLow <= tr && tr <= row.inbHigh {
						cover[m][k]++
					}
					width[m][k] += row.inbHigh - row.inbLow
				}
			}
		}
		N := float64(studies)
		t.Logf("n %d per team, %d studies, B %d (%v; %.2f%% of replicates unestimable)", n, studies, B, time.Since(start).Round(time.Millisecond), 100*float64(failed)/float64(studies*B))
		for k, l := range lambdas {
			m := est[k] / N
			sd := math.Sqrt(est2[k]/N - m*m)
			mcse := sd / math.Sqrt(N)
			t.Logf("  λ %.0f: true INB %.0f, mean estimate %.1f (MC se %.1f, SD %.0f); coverage cr2 %.3f (mean width %.0f), two_stage_bootstrap %.3f (mean width %.0f)",
				l, truth(l), m, mcse, sd, float64(cover[0][k])/N, width[0][k]/N, float64(cover[1][k])/N, width[1][k]/N)
			if math.Abs(m-truth(l)) > 4*mcse {
				t.Errorf("n %d, λ %.0f: mean INB %.1f, truth %.0f (MC se %.1f)", n, l, m, truth(l), mcse)
			}
			if c := float64(cover[0][k]) / N; c < 0.90 {
				t.Errorf("n %d, λ %.0f: cr2 coverage %.3f below 0.90", n, l, c)
			}
		}
	}
}

// ceSimFrame draws one study of the simulation as a cost_effectiveness
// frame: columns 1, arm, u_baseline, cost_baseline and four trust dummies.
func ceSimFrame(rng *rand.Rand, n int) *ceFrame {
	logn := func(sigma float64) float64 { return math.Exp(sigma*rng.NormFloat64() - sigma*sigma/2) }
	poisson := func(mean float64) int {
		l, k, p := math.Exp(-mean), 0, 1.0
		for {
			p *= rng.Float64()
			if p <= l {
				return k
			}
			k++
		}
	}
	z := func(arm int) float64 {
		if rng.Float64() < 0.2 {
			return 0
		}
		mean := [2]float64{800, 700}[arm]
		c := mean * rng.ExpFloat64()
		if rng.Float64() < 0.06 {
			c += float64(1+poisson(14)) * 435
		}
		return c
	}
	f := &ceFrame{cols: make([][]float64, 8), nClusters: 10, armTeams: [2]int{5, 5}}
	for tr := range 5 {
		tauTrust, vTrust := logn(0.2), 0.03*rng.NormFloat64()
		for arm := range 2 {
			g := 2*tr + arm
			tau, v := tauTrust*logn(0.3), vTrust+0.05*rng.NormFloat64()
			size := n/2 + rng.IntN(n+1)
			for range size {
				fr := logn(0.5)
				u0 := 0.65 + 0.18*rng.NormFloat64()
				u1 := 0.3 + 0.55*u0 + 0.04*float64(arm) + v + 0.15*rng.NormFloat64()
				f.cols[0] = append(f.cols[0], 1)
				f.cols[1] = append(f.cols[1], float64(arm))
				f.cols[2] = append(f.cols[2], u0)
				f.cols[3] = append(f.cols[3], tau*fr*z(0))
				for j := range 4 {
					d := 0.0
					if tr == j+1 {
						d = 1
					}
					f.cols[4+j] = append(f.cols[4+j], d)
				}
				f.cluster = append(f.cluster, g)
				f.cost = append(f.cost, tau*fr*z(arm))
				f.qaly = append(f.qaly, 0.5*(u0+u1)/2)
			}
		}
	}
	return f
}

// BenchmarkCostEffectivenessBootstrap times the two-stage bootstrap
// (B = 2,000) on simulated studies of 100,000 and 1,000,000 participants
// in 10 teams: the normal route for every team (ceExactTeam), and, at
// 100,000, the exact route (every participant drawn in every replicate).
//
//	go test ./pipeline/compare -run XXX -bench CostEffectivenessBootstrap -benchtime 1x
func BenchmarkCostEffectivenessBootstrap(b *testing.B) {
	for _, c := range []struct {
		name     string
		perTeam  int
		exactMax int
		B        int
	}{
		{"100k/normal", 10000, ceExactTeam, 2000},
		{"1M/normal", 100000, ceExactTeam, 2000},
		{"100k/exact/B=100", 10000, 1 << 30, 100},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := ceSimFrame(rand.New(rand.NewPCG(1, 1)), c.perTeam)
			lambdas := []float64{20000, 30000}
			point, err := ceFitCR2(f, lambdas, 0.95)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, _, err := ceBootstrap(b.Context(), f, lambdas, func() []ceRow { return point }, c.B, 1, 0.95, c.exactMax); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package pipeline

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/connectingpeople/cpi/pipeline/compare"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/stats"
)

var coverageLong = flag.Bool("coverage.long", false, "run the coverage simulation with 4000 studies instead of 400")

// coverageTestStudy generates one synthetic study shaped like the reference
// data (testdata/reference/ancova.csv): five trusts with an intervention
// and a control team each, 12–18 participants per team, a trust effect, a
// team random intercept with variance 1.2 and residual variance 8.7 (the
// REML estimates of the reference data, ICC ≈ 0.12), y_base ~ N(15, 4²) and
//
//	y_fu = 2 + effect·arm + 0.9·y_base + trust + team + e.
//
// It returns the data as the comparison reads it.
func coverageTestStudy(env warehouse.Env, rng *rand.Rand, effect float64) *compare.CompareData {
	const outcome = "rguk.total"
	d := &compare.CompareData{Base: map[string][]float64{}, Fu: map[string][]float64{}}
	for _, team := range env.Study.Teams {
		teamEffect := math.Sqrt(1.2) * rng.NormFloat64()
		arm := 0.0
		if team.Arm == env.Study.InterventionArm() {
			arm = 1
		}
		n := 12 + rng.IntN(7)
		for i := 0; i < n; i++ {
			yb := math.Round(15 + 4*rng.NormFloat64())
			yf := 2 + effect*arm + 0.9*yb + coverageTrustEffect(team.Trust) + teamEffect + math.Sqrt(8.7)*rng.NormFloat64()
			d.Parts = append(d.Parts, compare.CmpParticipant{Id: fmt.Sprintf("%s-P%03d", team.Code, i), Trust: team.Trust, Team: team.Code, Arm: team.Arm})
			d.Base[outcome] = append(d.Base[outcome], yb)
			d.Fu[outcome] = append(d.Fu[outcome], yf)
		}
	}
	return d
}

// coverageTrustEffect is a fixed effect per trust (the analysis conditions
// on trust, so its size does not matter to coverage).
func coverageTrustEffect(trust string) float64 {
	return map[string]float64{"TEWV": 0, "BDCT": -0.4, "EPUT": 1.5, "AWP": 0.3, "HPFT": 0.7}[trust]
}

// TestCoverageCR2 simulates many studies with a known arm effect and fits
// the primary model through the comparison's own frame and design code:
// the 95% CR2 interval (Satterthwaite df) must cover the true effect in 93–97%
// of studies. CR1 (t with G − 1 df) and naive OLS are logged for
// comparison (-v): with ten clusters and a team ICC of 0.12, naive OLS
// under-covers. 400 studies by default, 4000 with -coverage.long.
func TestCoverageCR2(t *testing.T) {
	env := compareTestEnv(t)
	studies := 400
	if *coverageLong {
		studies = 4000
	}
	const effect = 1.0
	var cover [3]int // cr2, cr1, ols
	var width [3]float64
	for k := 0; k < studies; k++ {
		rng := rand.New(rand.NewPCG(20181, uint64(k)))
		d := coverageTestStudy(env, rng, effect)
		f := compare.BuildFrame(env.Study, d, "rguk.total", true, nil)
		des := compare.LinearDesign(env.Study, f, compare.TermArm, f.Arm, true)
		fit, err := stats.OLS(des.X, f.YFU, nil)
		if err != nil {
			t.Fatalf("study %d: %v", k, err)
		}
		cr2, err := fit.CR2(f.Cluster)
		if err != nil {
			t.Fatalf("study %d: %v", k, err)
		}
		cr1, err := fit.CR1Test(f.Cluster, 1, 0.95)
		if err != nil {
			t.Fatalf("study %d: %v", k, err)
		}
		for i, ct := range []stats.CoefTest{cr2.Test(1, 0.95), cr1, fit.CoefTest(1, 0.95)} {
			if ct.CILow <= effect && effect <= ct.CIHigh {
				cover[i]++
			}
			width[i] += ct.CIHigh - ct.CILow
		}
	}
	pct := func(i int) float64 { return 100 * float64(cover[i]) / float64(studies) }
	for i, name := range []string{"CR2 (Satterthwaite df)", "CR1 (G-1 df)", "naive OLS"} {
		t.Logf("%d studies: %s covers the true effect in %.1f%%, mean CI width %.2f", studies, name, pct(i), width[i]/float64(studies))
	}
	if c := pct(0); c < 93 || c > 97 {
		t.Errorf("CR2 95%% interval covers the true effect in %.1f%% of %d studies, want 93–97%%", c, studies)
	}
}

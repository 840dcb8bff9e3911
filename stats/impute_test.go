package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// loadMIData reads mi_data.csv (blank cells are NaN).
func loadMIData(t testing.TB) *ancova {
	t.Helper()
	hdr, recs := readCSV(t, filepath.Join("mi", "mi_data.csv"))
	col := map[string]int{}
	for i, h := range hdr {
		col[h] = i
	}
	d := &ancova{}
	for _, r := range recs {
		d.trust = append(d.trust, r[col["trust"]])
		d.team = append(d.team, r[col["team"]])
		d.ageBand = append(d.ageBand, r[col["age_band"]])
		d.gender = append(d.gender, r[col["gender"]])
		d.diagnosis = append(d.diagnosis, r[col["diagnosis_group"]])
		d.arm = append(d.arm, atof(t, r[col["arm"]]))
		d.livingAlone = append(d.livingAlone, atof(t, r[col["living_alone"]]))
		d.yBase = append(d.yBase, atof(t, r[col["y_base"]]))
		d.yFu = append(d.yFu, atof(t, r[col["y_fu"]]))
	}
	d.teamCode, _ = Codes(d.team)
	return d
}

// imputationDesign is the imputation model's fixed effects, as the
// reference README's 2l.pan model: intercept, arm, trust dummies, age band,
// gender, living alone and diagnosis dummies.
func (d *ancova) imputationDesign() (*mat.Dense, []string) {
	names := []string{"(Intercept)", "arm"}
	cols := [][]float64{ones(len(d.arm)), d.arm}
	for _, l := range trustDummies {
		cols = append(cols, dummy(d.trust, l))
		names = append(names, "trust"+l)
	}
	for _, l := range []string{"25-34", "35-44", "45-54", "55-64", "65+"} {
		cols = append(cols, dummy(d.ageBand, l))
		names = append(names, "age"+l)
	}
	cols = append(cols, dummy(d.gender, "male"), d.livingAlone)
	names = append(names, "male", "living_alone")
	for _, l := range []string{"depression", "other", "psychosis"} {
		cols = append(cols, dummy(d.diagnosis, l))
		names = append(names, "diag"+l)
	}
	return columns(cols...), names
}

// rowsWhere returns the rows of x (and the values of the slices) where keep.
func rowsWhere(x *mat.Dense, keep []bool) *mat.Dense {
	_, k := x.Dims()
	var data []float64
	n := 0
	for i, ok := range keep {
		if ok {
			data = append(data, x.RawRowView(i)...)
			n++
		}
	}
	return mat.NewDense(n, k, data)
}

func pick[T any](v []T, keep []bool) []T {
	var out []T
	for i, ok := range keep {
		if ok {
			out = append(out, v[i])
		}
	}
	return out
}

// mcStats returns the mean of a chain and its Monte Carlo standard error
// by batch means (20 batches).
func mcStats(v []float64) (mean, mcse float64) {
	const nb = 20
	bs := len(v) / nb
	var bm [nb]float64
	for b := 0; b < nb; b++ {
		for _, x := range v[b*bs : (b+1)*bs] {
			bm[b] += x
		}
		bm[b] /= float64(bs)
		mean += bm[b]
	}
	mean /= nb
	var ss float64
	for _, x := range bm {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / (nb - 1) / nb)
}

// TestImputePosteriorAgainstREML runs the sampler on mi_data.csv for 4,000
// iterations after burn-in and compares the posterior means with REML fits
// of the same model by MixedREML (which matches lme4 1.1-31, see
// mixed_test.go):
//   - baseline block (y_base missing completely at random, so its observed
//     rows estimate it): B[:,base], Σ_bb and Ψ_bb against
//     lmer(y_base ~ X + (1 | team)) on the 152 rows with y_base;
//   - follow-up given baseline (y_fu missing at random given y_base and
//     arm, so the complete rows estimate the conditional model): the implied
//     γ = Σ_fb/Σ_bb, β_f − γβ_b and Σ_ff − γΣ_fb against
//     lmer(y_fu ~ X + y_base + (1 | team)) on the 123 complete rows.
//
// With a flat prior on B the fixed effects must agree within four Monte
// Carlo standard errors (batch means) plus a quarter of REML's standard
// error: the posterior mean averages over the variance components'
// uncertainty where REML plugs in its estimate, and the joint model also
// lets the 6 rows without y_base inform the baseline block through their
// follow-up (measured: at most 0.19 SE apart); residual variances within
// 10% (the Wishart prior and the posterior mean versus REML); the team
// variance, informed by 10 teams less 6 team-level fixed effects, within a
// factor 3 and inside its 95% posterior interval.
func TestImputePosteriorAgainstREML(t *testing.T) {
	d := loadMIData(t)
	x, names := d.imputationDesign()
	y := [][]float64{d.yBase, d.yFu}
	iters := 4000
	res, err := ImputeMultilevel(x, y, d.teamCode, ImputeConfig{M: iters, Thin: 1}, rand.New(rand.NewPCG(20271, 15)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Missing[0] != 6 || res.Missing[1] != 29 {
		t.Fatalf("missing cells %v, want [6 29]", res.Missing)
	}
	chain := func(f func(ImputeDraw) float64) []float64 {
		v := make([]float64, len(res.Draws))
		for i, dr := range res.Draws {
			v[i] = f(dr)
		}
		return v
	}
	quantile := func(v []float64, p float64) float64 {
		s := append([]float64(nil), v...)
		sortFloats(s)
		return s[int(p*float64(len(s)-1))]
	}

	// Baseline block.
	obsB := make([]bool, len(d.yBase))
	for i, v := range d.yBase {
		obsB[i] = !math.IsNaN(v)
	}
	fb, err := MixedREML(rowsWhere(x, obsB), pick(d.yBase, obsB), pick(d.teamCode, obsB))
	if err != nil {
		t.Fatal(err)
	}
	for j, n := range names {
		m, se := mcStats(chain(func(dr ImputeDraw) float64 { return dr.Beta.At(j, 0) }))
		t.Logf("baseline %s: posterior %.4f (MC se %.4f) REML %.4f (se %.4f)", n, m, se, fb.Coef[j], fb.StdError[j])
		if diff := math.Abs(m - fb.Coef[j]); diff > 4*se+0.25*fb.StdError[j] {
			t.Errorf("baseline %s: posterior mean %.4f (MC se %.4f), REML %.4f (se %.4f)", n, m, se, fb.Coef[j], fb.StdError[j])
		}
	}
	sbb := chain(func(dr ImputeDraw) float64 { return dr.Sigma.At(0, 0) })
	m, _ := mcStats(sbb)
	if math.Abs(m/fb.VarResidual-1) > 0.1 {
		t.Errorf("baseline residual variance: posterior mean %.4f, REML %.4f", m, fb.VarResidual)
	}
	pbb := chain(func(dr ImputeDraw) float64 { return dr.Psi.At(0, 0) })
	m, _ = mcStats(pbb)
	lo, hi := quantile(pbb, 0.025), quantile(pbb, 0.975)
	t.Logf("baseline: Σ_bb %.4f (REML %.4f); Ψ_bb mean %.4f [%.4f, %.4f] (REML %.4f)", mean(sbb), fb.VarResidual, m, lo, hi, fb.VarGroup)
	if !(fb.VarGroup >= lo && fb.VarGroup <= hi) || m > 3*fb.VarGroup+0.1 || m < fb.VarGroup/3 {
		t.Errorf("baseline team variance: posterior mean %.4f, 95%% [%.4f, %.4f]; REML %.4f", m, lo, hi, fb.VarGroup)
	}

	// Follow-up given baseline.
	both := make([]bool, len(d.yBase))
	for i := range both {
		both[i] = obsB[i] && !math.IsNaN(d.yFu[i])
	}
	xc := rowsWhere(x, both)
	n, k := xc.Dims()
	xf := mat.NewDense(n, k+1, nil)
	yb := pick(d.yBase, both)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			xf.Set(i, j, xc.At(i, j))
		}
		xf.Set(i, k, yb[i])
	}
	ff, err := MixedREML(xf, pick(d.yFu, both), pick(d.teamCode, both))
	if err != nil {
		t.Fatal(err)
	}
	gamma := func(dr ImputeDraw) float64 { return dr.Sigma.At(0, 1) / dr.Sigma.At(0, 0) }
	mg, seg := mcStats(chain(gamma))
	// γ is the within-team slope; REML's y_base coefficient also carries the
	// between-team association of the intercepts (Ψ_fb/Ψ_bb differs from
	// Σ_fb/Σ_bb), so half a standard error is allowed (measured 0.38).
	if diff := math.Abs(mg - ff.Coef[k]); diff > 4*seg+0.5*ff.StdError[k] {
		t.Errorf("follow-up on baseline slope: posterior mean %.4f (MC se %.4f), REML %.4f (se %.4f)", mg, seg, ff.Coef[k], ff.StdError[k])
	}
	for j, nm := range names {
		m, se := mcStats(chain(func(dr ImputeDraw) float64 { return dr.Beta.At(j, 1) - gamma(dr)*dr.Beta.At(j, 0) }))
		t.Logf("follow-up | baseline %s: posterior %.4f (MC se %.4f) REML %.4f (se %.4f)", nm, m, se, ff.Coef[j], ff.StdError[j])
		if diff := math.Abs(m - ff.Coef[j]); diff > 4*se+0.25*ff.StdError[j] {
			t.Errorf("follow-up | baseline %s: posterior mean %.4f (MC se %.4f), REML %.4f (se %.4f)", nm, m, se, ff.Coef[j], ff.StdError[j])
		}
	}
	cv := chain(func(dr ImputeDraw) float64 { return dr.Sigma.At(1, 1) - gamma(dr)*dr.Sigma.At(0, 1) })
	m, _ = mcStats(cv)
	if math.Abs(m/ff.VarResidual-1) > 0.1 {
		t.Errorf("follow-up | baseline residual variance: posterior mean %.4f, REML %.4f", m, ff.VarResidual)
	}
	t.Logf("follow-up | baseline: residual variance %.4f (REML %.4f), slope %.4f (REML %.4f), REML team variance %.4f", m, ff.VarResidual, mg, ff.Coef[k], ff.VarGroup)
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func sortFloats(v []float64) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

// TestImputeDeterministicAndTeamCodes checks that the same seed gives the
// same imputations, that observed cells are untouched, and that team codes
// that are a linear function of trust and arm (team = 2·trust + arm) cost
// no trust column: every fixed effect is drawn and finite.
func TestImputeDeterministicAndTeamCodes(t *testing.T) {
	d := loadMIData(t)
	x, names := d.imputationDesign()
	y := [][]float64{d.yBase, d.yFu}
	team := make([]int, len(d.arm))
	trustCode, _ := Codes(d.trust)
	for i := range team {
		team[i] = 2*trustCode[i] + int(d.arm[i])
	}
	run := func(seed uint64) ([][]float64, *Imputation) {
		var out [][]float64
		res, err := ImputeMultilevel(x, y, team, ImputeConfig{M: 3}, rand.New(rand.NewPCG(seed, 1)), func(m int, c [][]float64) error {
			for i := range c[0] {
				for j := range c {
					if !math.IsNaN(y[j][i]) && c[j][i] != y[j][i] {
						t.Fatalf("imputation %d changed observed cell (%d, %d)", m, i, j)
					}
					if math.IsNaN(c[j][i]) {
						t.Fatalf("imputation %d left cell (%d, %d) missing", m, i, j)
					}
				}
			}
			out = append(out, append(append([]float64(nil), c[0]...), c[1]...))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out, res
	}
	a, res := run(7)
	b, _ := run(7)
	c, _ := run(8)
	for m := range a {
		for i := range a[m] {
			if a[m][i] != b[m][i] {
				t.Fatalf("same seed, imputation %d differs at %d", m, i)
			}
		}
	}
	same := true
	for i := range a[0] {
		same = same && a[0][i] == c[0][i]
	}
	if same {
		t.Error("different seeds gave the same imputation")
	}
	if len(res.Draws) != 3 || res.Iter != DefaultBurnIn+2*DefaultThin+1 {
		t.Errorf("%d draws after %d iterations, want 3 after %d", len(res.Draws), res.Iter, DefaultBurnIn+2*DefaultThin+1)
	}
	for _, dr := range res.Draws {
		if r, c := dr.Beta.Dims(); r != len(names) || c != 2 {
			t.Fatalf("Beta is %d×%d, want %d×2", r, c, len(names))
		}
		for j, n := range names {
			if v := dr.Beta.At(j, 1); math.IsNaN(v) || math.IsInf(v, 0) {
				t.Errorf("fixed effect %s is %v", n, v)
			}
		}
	}
}

// TestImputeBoundsAndDelta imputes a bounded outcome (clipped to [10, 16],
// inside the observed range, so that clipping happens) and applies a delta
// adjustment to the intervention arm's imputed follow-ups.
func TestImputeBoundsAndDelta(t *testing.T) {
	d := loadMIData(t)
	x, _ := d.imputationDesign()
	y := [][]float64{d.yBase, d.yFu}
	cfg := ImputeConfig{M: 5, Lower: []float64{math.NaN(), 10}, Upper: []float64{math.NaN(), 16}}
	interv := make([]bool, len(d.arm))
	for i, a := range d.arm {
		interv[i] = a == 1
	}
	clipped := 0
	_, err := ImputeMultilevel(x, y, d.teamCode, cfg, rand.New(rand.NewPCG(3, 3)), func(m int, c [][]float64) error {
		before := append([]float64(nil), c[1]...)
		for i, v := range d.yFu {
			if math.IsNaN(v) {
				if c[1][i] < 10 || c[1][i] > 16 {
					t.Errorf("imputation %d row %d: %v outside [10, 16]", m, i, c[1][i])
				}
				if c[1][i] == 10 || c[1][i] == 16 {
					clipped++
				}
			}
		}
		if err := DeltaAdjust(c[1], d.yFu, interv, -2.5); err != nil {
			return err
		}
		for i := range before {
			want := before[i]
			if math.IsNaN(d.yFu[i]) && interv[i] {
				want -= 2.5
			}
			if c[1][i] != want {
				t.Fatalf("delta adjust row %d: %v, want %v", i, c[1][i], want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if clipped == 0 {
		t.Error("no imputed value reached a bound; the test does not exercise clipping")
	}
	if err := DeltaAdjust(make([]float64, 2), make([]float64, 3), make([]bool, 2), 1); err == nil {
		t.Error("DeltaAdjust with mismatched lengths: want an error")
	}
}

func TestImputeErrors(t *testing.T) {
	d := loadMIData(t)
	x, _ := d.imputationDesign()
	rng := rand.New(rand.NewPCG(1, 1))
	n := len(d.arm)
	constant := make([]float64, n)
	for i := range constant {
		constant[i] = 3
	}
	constant[0] = math.NaN()
	inf := append([]float64(nil), d.yFu...)
	inf[1] = math.Inf(1)
	oneTeam := make([]int, n)
	noIcpt := mat.DenseCopyOf(x)
	for i := 0; i < n; i++ {
		noIcpt.Set(i, 0, float64(i%2))
	}
	alias := mat.DenseCopyOf(x)
	for i := 0; i < n; i++ {
		alias.Set(i, 3, x.At(i, 0)-x.At(i, 2)-x.At(i, 4)-x.At(i, 5)-x.At(i, 6)) // trustEPUT = 1 − other trusts... rank-deficient
	}
	nanX, infX := mat.DenseCopyOf(x), mat.DenseCopyOf(x)
	nanX.Set(5, 1, math.NaN())
	infX.Set(7, 2, math.Inf(-1))
	for _, c := range []struct {
		name string
		x    *mat.Dense
		y    [][]float64
		team []int
		cfg  ImputeConfig
	}{
		{"constant outcome", x, [][]float64{d.yBase, constant}, d.teamCode, ImputeConfig{M: 2}},
		{"infinite value", x, [][]float64{d.yBase, inf}, d.teamCode, ImputeConfig{M: 2}},
		{"NaN in x", nanX, [][]float64{d.yBase, d.yFu}, d.teamCode, ImputeConfig{M: 2}},
		{"-Inf in x", infX, [][]float64{d.yBase, d.yFu}, d.teamCode, ImputeConfig{M: 2}},
		{"one team", x, [][]float64{d.yBase, d.yFu}, oneTeam, ImputeConfig{M: 2}},
		{"no intercept", noIcpt, [][]float64{d.yBase, d.yFu}, d.teamCode, ImputeConfig{M: 2}},
		{"aliased column", alias, [][]float64{d.yBase, d.yFu}, d.teamCode, ImputeConfig{M: 2}},
		{"no imputations", x, [][]float64{d.yBase, d.yFu}, d.teamCode, ImputeConfig{}},
		{"bad bounds", x, [][]float64{d.yBase, d.yFu}, d.teamCode, ImputeConfig{M: 2, Lower: []float64{1}}},
		{"short column", x, [][]float64{d.yBase, d.yFu[:10]}, d.teamCode, ImputeConfig{M: 2}},
	} {
		if _, err := ImputeMultilevel(c.x, c.y, c.team, c.cfg, rng, nil); err == nil {
			t.Errorf("%s: want an error", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
}

func acf(v []float64, lag int) float64 {
	m := mean(v)
	var num, den float64
	for i := range v {
		den += (v[i] - m) * (v[i] - m)
		if i+lag < len(v) {
			num += (v[i] - m) * (v[i+lag] - m)
		}
	}
	return num / den
}

// TestImputeMixing documents the choice of DefaultThin: on mi_data.csv,
// 20,000 successive draws have autocorrelation below 0.05 at lag
// DefaultThin for every parameter (measured: at most 0.02; the team
// covariance, the slowest, has about 0.75 at lag 1 and below 0.1 at lag
// 10). The
// Monte Carlo error of a lag-20 autocorrelation here is about 0.015.
func TestImputeMixing(t *testing.T) {
	d := loadMIData(t)
	x, _ := d.imputationDesign()
	res, err := ImputeMultilevel(x, [][]float64{d.yBase, d.yFu}, d.teamCode, ImputeConfig{M: 20000, Thin: 1}, rand.New(rand.NewPCG(5, 15)), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		f    func(ImputeDraw) float64
	}{
		{"arm (follow-up)", func(d ImputeDraw) float64 { return d.Beta.At(1, 1) }},
		{"Σ_bb", func(d ImputeDraw) float64 { return d.Sigma.At(0, 0) }},
		{"Σ_bf", func(d ImputeDraw) float64 { return d.Sigma.At(0, 1) }},
		{"Σ_ff", func(d ImputeDraw) float64 { return d.Sigma.At(1, 1) }},
		{"Ψ_bb", func(d ImputeDraw) float64 { return d.Psi.At(0, 0) }},
		{"Ψ_bf", func(d ImputeDraw) float64 { return d.Psi.At(0, 1) }},
		{"Ψ_ff", func(d ImputeDraw) float64 { return d.Psi.At(1, 1) }},
	} {
		v := make([]float64, len(res.Draws))
		for i, dr := range res.Draws {
			v[i] = c.f(dr)
		}
		a1, a10, aT := acf(v, 1), acf(v, 10), acf(v, DefaultThin)
		t.Logf("%s: autocorrelation lag 1 %.3f, lag 10 %.3f, lag %d %.3f", c.name, a1, a10, DefaultThin, aT)
		if math.Abs(aT) > 0.05 {
			t.Errorf("%s: autocorrelation %.3f at lag %d, want below 0.05", c.name, aT, DefaultThin)
		}
	}
}

// TestImputeDrawStatsMatchesRows checks the sampler's central device: for
// fixed parameters, the missing cells' share of the statistics drawn by
// drawStats has the same distribution as when the cells themselves are
// drawn (drawRows) and summed. Data: mi_data.csv with D = 3 columns
// (baseline, follow-up, and a third made-up wave) and every pattern present
// (one, two or all three cells missing; 4 patterns). Means and variances of several
// statistics over 4,000 draws each way agree within 4.5 Monte Carlo standard
// errors (means) and 12% (variances).
func TestImputeDrawStatsMatchesRows(t *testing.T) {
	d := loadMIData(t)
	x, _ := d.imputationDesign()
	n := len(d.arm)
	third := make([]float64, n)
	base := append([]float64(nil), d.yBase...)
	fu := append([]float64(nil), d.yFu...)
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range third {
		third[i] = 0.5*d.yBase[i] + 0.3*d.yFu[i] + rng.NormFloat64()
		switch i % 9 {
		case 1:
			third[i] = math.NaN()
		case 2:
			third[i], fu[i] = math.NaN(), math.NaN()
		case 4:
			third[i], fu[i], base[i] = math.NaN(), math.NaN(), math.NaN()
		}
	}
	n, kx := x.Dims()
	s, err := newImputer(n, kx, func(i int, dst []float64) { mat.Row(dst, i, x) }, [][]float64{base, fu, third}, d.teamCode, ImputeConfig{M: 1})
	if err != nil {
		t.Fatal(err)
	}
	all := false
	for _, p := range s.pats {
		all = all || len(p.obs) == 0
	}
	if len(s.pats) < 4 || !all {
		t.Fatalf("%d patterns (all-missing among them: %v), want at least 4 with it", len(s.pats), all)
	}
	k, D, g := s.k, s.d, s.g
	beta := make([]float64, k*D)
	u := make([]float64, g*D)
	for i := range beta {
		beta[i] = 0.3 * rng.NormFloat64()
	}
	for i := range u {
		u[i] = 0.3 * rng.NormFloat64()
	}
	sigma := []float64{1, 0.5, 0.3, 0.5, 1.2, 0.4, 0.3, 0.4, 0.9}
	work := make([]float64, 4*D*D+D)
	for p := range s.pats {
		if err := s.pats[p].prepare(sigma, D, work); err != nil {
			t.Fatal(err)
		}
	}
	// Statistics compared: xy, yy (upper), t of the first three teams.
	nStat := k*D + D*D + 3*D
	const reps = 4000
	viaStats := make([][]float64, nStat)
	viaRows := make([][]float64, nStat)
	collect := func(dst [][]float64, xy, yy, tt []float64) {
		i := 0
		for _, v := range xy {
			dst[i] = append(dst[i], v)
			i++
		}
		for _, v := range yy {
			dst[i] = append(dst[i], v)
			i++
		}
		for _, v := range tt[:3*D] {
			dst[i] = append(dst[i], v)
			i++
		}
	}
	xy := make([]float64, k*D)
	yy := make([]float64, D*D)
	tt := make([]float64, g*D)
	r1 := rand.New(rand.NewPCG(1, 1))
	for rep := 0; rep < reps; rep++ {
		copy(xy, s.xyc)
		copy(yy, s.yyc)
		copy(tt, s.tc)
		for p := range s.pats {
			s.drawStats(&s.pats[p], beta, u, r1, xy, yy, tt)
		}
		symFill(yy, D)
		collect(viaStats, xy, yy, tt)

		s.drawRows(beta, u, r1, nil)
		copy(xy, s.xyc)
		copy(yy, s.yyc)
		copy(tt, s.tc)
		for r := range s.inc {
			pt := &s.pats[s.pat[r]]
			z := s.z[r*D : r*D+D]
			miss := make([]bool, D)
			for _, c := range pt.mis {
				miss[c] = true
				tt[s.clsT[s.cls[r]]*D+c] += z[c]
				for a := 0; a < k; a++ {
					xy[a*D+c] += s.clsX[int(s.cls[r])*k+a] * z[c]
				}
			}
			for c := 0; c < D; c++ {
				for e := 0; e < D; e++ {
					if miss[c] || miss[e] {
						yy[c*D+e] += z[c] * z[e]
					}
				}
			}
		}
		collect(viaRows, xy, yy, tt)
	}
	for j := 0; j < nStat; j++ {
		ma, va := meanVar(viaStats[j])
		mb, vb := meanVar(viaRows[j])
		if va == 0 && vb == 0 {
			if ma != mb {
				t.Errorf("statistic %d: fixed value %g via statistics, %g via rows", j, ma, mb)
			}
			continue
		}
		se := math.Sqrt((va + vb) / reps)
		if math.Abs(ma-mb) > 4.5*se {
			t.Errorf("statistic %d: mean %.4f via statistics, %.4f via rows (se %.4f)", j, ma, mb, se)
		}
		if math.Abs(va/vb-1) > 0.12 {
			t.Errorf("statistic %d: variance %.4f via statistics, %.4f via rows", j, va, vb)
		}
	}
}

func meanVar(v []float64) (m, s2 float64) {
	m = mean(v)
	for _, x := range v {
		s2 += (x - m) * (x - m)
	}
	return m, s2 / float64(len(v)-1)
}

// TestImputeVisitOrderAndError: visit, run beside the sampler, is called
// with m = 0, 1, …, M−1 in order, never twice at once; its imputed cells,
// shifted by the visitor, are rewritten before the slices come back (the
// two sets of slices alternate), and the sets equal those of ImputeMultilevel
// with the same seed over ImputeMultilevelRows; an error from visit at m = 2
// stops the run with that error and no call after it.
func TestImputeVisitOrderAndError(t *testing.T) {
	d := loadMIData(t)
	x, _ := d.imputationDesign()
	y := [][]float64{d.yBase, d.yFu}
	var calls []int
	var inside atomic.Int32
	var sets [][]float64
	visit := func(m int, c [][]float64) error {
		if inside.Add(1) != 1 {
			t.Error("two visits at once")
		}
		defer inside.Add(-1)
		calls = append(calls, m)
		for i, v := range y[1] {
			if math.IsNaN(v) && c[1][i] > 1e6 {
				t.Errorf("set %d: row %d keeps the shift of an earlier visit", m, i)
			}
		}
		sets = append(sets, append([]float64(nil), c[1]...))
		for i, v := range y[1] {
			if math.IsNaN(v) {
				c[1][i] += 1e9 // must not reach a later set
			}
		}
		return nil
	}
	if _, err := ImputeMultilevel(x, y, d.teamCode, ImputeConfig{M: 5}, rand.New(rand.NewPCG(4, 4)), visit); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(calls, []int{0, 1, 2, 3, 4}) {
		t.Errorf("visits %v, want 0 to 4 in order", calls)
	}
	n, k := x.Dims()
	var rows [][]float64
	if _, err := ImputeMultilevelRows(n, k, func(i int, dst []float64) { mat.Row(dst, i, x) }, y, d.teamCode, ImputeConfig{M: 5}, rand.New(rand.NewPCG(4, 4)), func(_ int, c [][]float64) error {
		rows = append(rows, append([]float64(nil), c[1]...))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for m := range sets {
		if !slices.Equal(sets[m], rows[m]) {
			t.Errorf("set %d differs between the dense and the row-by-row design", m)
		}
	}
	stop := errors.New("stop")
	calls = nil
	_, err := ImputeMultilevel(x, y, d.teamCode, ImputeConfig{M: 5}, rand.New(rand.NewPCG(4, 4)), func(m int, _ [][]float64) error {
		calls = append(calls, m)
		if m == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !slices.Equal(calls, []int{0, 1, 2}) {
		t.Errorf("error %v after visits %v, want the visitor's after 0, 1, 2", err, calls)
	}
}

// TestImputeCompact: ImputeMultilevelCompact hands visit exactly the rows
// with a missing cell, in ascending order, with their observed values as
// given and their imputed values those of ImputeMultilevel's completed
// columns (same seed) bit for bit, clipped to the bounds; a shift the
// visitor adds to imputed values does not reach a later set.
func TestImputeCompact(t *testing.T) {
	d := loadMIData(t)
	x, _ := d.imputationDesign()
	y := [][]float64{d.yBase, d.yFu}
	n, k := x.Dims()
	var want []int
	for i := 0; i < n; i++ {
		if math.IsNaN(y[0][i]) || math.IsNaN(y[1][i]) {
			want = append(want, i)
		}
	}
	cfg := ImputeConfig{M: 4, Lower: []float64{0, 0}, Upper: []float64{27, 27}}
	var full [][][]float64
	if _, err := ImputeMultilevel(x, y, d.teamCode, cfg, rand.New(rand.NewPCG(8, 8)), func(_ int, c [][]float64) error {
		full = append(full, [][]float64{slices.Clone(c[0]), slices.Clone(c[1])})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sets := 0
	_, err := ImputeMultilevelCompact(n, k, func(i int, dst []float64) { mat.Row(dst, i, x) }, y, d.teamCode, cfg, rand.New(rand.NewPCG(8, 8)), func(m int, rows []int, values [][]float64) error {
		sets++
		if !slices.Equal(rows, want) {
			t.Fatalf("set %d: %d rows handed, want the %d with a missing cell", m, len(rows), len(want))
		}
		for c := range y {
			for r, i := range rows {
				v := values[c][r]
				switch {
				case !math.IsNaN(y[c][i]) && v != y[c][i]:
					t.Errorf("set %d: observed cell (%d, %d) is %v, want %v", m, i, c, v, y[c][i])
				case math.IsNaN(y[c][i]) && (v < 0 || v > 27 || v > 1e6):
					t.Errorf("set %d: imputed cell (%d, %d) = %v outside the bounds or shifted", m, i, c, v)
				case math.Float64bits(v) != math.Float64bits(full[m][c][i]):
					t.Errorf("set %d: cell (%d, %d) = %v, ImputeMultilevel's %v", m, i, c, v, full[m][c][i])
				}
				if math.IsNaN(y[c][i]) {
					values[c][r] += 1e9 // must not reach a later set
				}
			}
		}
		return nil
	})
	if err != nil || sets != cfg.M {
		t.Fatalf("%d sets, error %v; want %d", sets, err, cfg.M)
	}
}

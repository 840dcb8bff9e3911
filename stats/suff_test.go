package stats

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// tolSuff is the relative tolerance between a fit from ClusterSums and the
// dense fit on the same rows (issue 14: "results equal today's to 1e-10
// relative").
const tolSuff = 1e-10

// sumsOf accumulates the rows of x, y (and w when not nil) by cluster label,
// numbering the clusters in order of first appearance as Codes does.
func sumsOf(t testing.TB, x *mat.Dense, y, w []float64, labels []int) *ClusterSums {
	t.Helper()
	n, k := x.Dims()
	codes, _, _ := groupIndex(labels)
	s, err := NewClusterSums(k, w != nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := s.Add(codes[i], x.RawRowView(i), y[i], weightAt(w, i)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// simRows simulates a cluster-controlled study: n rows in g teams (trust =
// team/2, arm = team%2, rows assigned to teams at random with unequal
// probabilities), columns intercept, arm, baseline (mean 15), age band (3
// dummies), gender, one more covariate and the trust dummies (each
// identified by a single pair of teams). The response has a team effect.
func simRows(n, g int, seed uint64) (x *mat.Dense, y, w []float64, labels []int) {
	rng := rand.New(rand.NewPCG(seed, 99))
	trusts := (g + 1) / 2
	k := 8 + trusts - 1
	x = mat.NewDense(n, k, nil)
	y = make([]float64, n)
	w = make([]float64, n)
	labels = make([]int, n)
	u := make([]float64, g)
	for c := range u {
		u[c] = 0.7 * rng.NormFloat64()
	}
	for i := 0; i < n; i++ {
		c := int(float64(g) * math.Pow(rng.Float64(), 1.3)) // unequal team sizes
		if i < g {
			c = g - 1 - i // every team present; first appearances reversed
		}
		row := x.RawRowView(i)
		row[0] = 1
		row[1] = float64(c % 2)
		row[2] = 15 + 3*rng.NormFloat64()
		if a := rng.IntN(4); a > 0 {
			row[2+a] = 1
		}
		if rng.Float64() < 0.55 {
			row[6] = 1
		}
		row[7] = rng.ExpFloat64()
		if tr := c / 2; tr > 0 {
			row[7+tr] = 1
		}
		y[i] = 2 + 0.4*row[1] + 0.9*row[2] - 0.3*row[4] + 0.5*row[7] + u[c] + 3*rng.NormFloat64()
		w[i] = 0.5 + rng.Float64()
		labels[i] = 1000 + 7*c
	}
	return x, y, w, labels
}

// relErr is |got − want| / |want| (0 when equal, also for 0 and NaN pairs).
func relErr(got, want float64) float64 {
	if got == want || (math.IsNaN(got) && math.IsNaN(want)) {
		return 0
	}
	return math.Abs(got-want) / math.Abs(want)
}

func checkClose(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if e := relErr(got, want); !(e <= tol) {
		t.Errorf("%s = %.17g, dense gives %.17g (rel. diff %.2g, tol %g)", name, got, want, e, tol)
	}
}

// checkSuffMatchesDense compares every least-squares fit from the sums with
// the dense fit on the same rows: coefficients, classical, CR1 and CR2
// standard errors, Satterthwaite df, t tests' p-values and confidence
// limits. cols maps the suff fit's columns to the dense design's (the dense
// design holds only the kept columns of a rank-deficient one); columns
// before from are not compared.
func checkSuffMatchesDense(t *testing.T, name string, xs *mat.Dense, xd *mat.Dense, y, w []float64, labels []int, cols []int, from int, tol float64) *SuffFit {
	t.Helper()
	dense, err := OLS(xd, y, w)
	if err != nil {
		t.Fatalf("%s: dense: %v", name, err)
	}
	sf, err := SuffOLS(sumsOf(t, xs, y, w, labels))
	if err != nil {
		t.Fatalf("%s: suff: %v", name, err)
	}
	if sf.Rank != len(cols) || sf.DFResid != dense.DFResid {
		t.Fatalf("%s: rank %d, df %d; dense %d, %d", name, sf.Rank, sf.DFResid, len(cols), dense.DFResid)
	}
	checkClose(t, name+" sigma", sf.Sigma, dense.Sigma, tol)
	checkClose(t, name+" r2", sf.RSquared, dense.RSquared, tol)
	dcr2, err := dense.CR2(labels)
	if err != nil {
		t.Fatal(err)
	}
	scr2, err := sf.CR2()
	if err != nil {
		t.Fatal(err)
	}
	dv1, err := dense.VCovCR1(labels)
	if err != nil {
		t.Fatal(err)
	}
	sv1, err := sf.VCovCR1()
	if err != nil {
		t.Fatal(err)
	}
	for a, j := range cols {
		if a < from {
			continue
		}
		checkClose(t, name+" coef", sf.Coef[j], dense.Coef[a], tol)
		dt, st := dense.CoefTest(a, 0.95), sf.CoefTest(j, 0.95)
		checkTests(t, name+" classical", st, dt, tol)
		d1, err := dense.CR1Test(labels, a, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		s1, err := sf.CR1Test(j, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		checkTests(t, name+" cr1", s1, d1, tol)
		checkTests(t, name+" cr2", scr2.Test(j, 0.95), dcr2.Test(a, 0.95), tol)
		for b, i := range cols {
			if b < from {
				continue
			}
			// Off-diagonal terms relative to √(V_aa V_bb).
			scale := math.Sqrt(dcr2.VCov.At(a, a) * dcr2.VCov.At(b, b))
			if d := math.Abs(scr2.VCov.At(j, i) - dcr2.VCov.At(a, b)); d > tol*scale {
				t.Errorf("%s cr2 V[%d,%d] = %v, dense %v", name, j, i, scr2.VCov.At(j, i), dcr2.VCov.At(a, b))
			}
			scale = math.Sqrt(dv1.At(a, a) * dv1.At(b, b))
			if d := math.Abs(sv1.At(j, i) - dv1.At(a, b)); d > tol*scale {
				t.Errorf("%s cr1 V[%d,%d] = %v, dense %v", name, j, i, sv1.At(j, i), dv1.At(a, b))
			}
		}
	}
	return sf
}

func checkTests(t *testing.T, name string, got, want CoefTest, tol float64) {
	t.Helper()
	checkClose(t, name+" estimate", got.Estimate, want.Estimate, tol)
	checkClose(t, name+" se", got.StdError, want.StdError, tol)
	checkClose(t, name+" df", got.DF, want.DF, tol)
	checkClose(t, name+" p", got.PValue, want.PValue, tol)
	// A confidence limit near zero is a difference of nearly equal terms:
	// compare it relative to the standard error.
	for _, c := range [][2]float64{{got.CILow, want.CILow}, {got.CIHigh, want.CIHigh}} {
		if d := math.Abs(c[0] - c[1]); !(d <= tol*math.Max(math.Abs(c[1]), want.StdError)) {
			t.Errorf("%s ci limit = %.17g, dense gives %.17g (diff %.2g, tol %g × max(|limit|, se))", name, c[0], c[1], d, tol)
		}
	}
}

// TestSuffMatchesDense: 10,000 simulated rows in 10 teams, unweighted and
// weighted, every fit from the sums against the dense fit to 1e-10.
func TestSuffMatchesDense(t *testing.T) {
	x, y, w, labels := simRows(10_000, 10, 1)
	_, k := x.Dims()
	for _, wt := range [][]float64{nil, w} {
		name := "ols"
		if wt != nil {
			name = "wls"
		}
		sf := checkSuffMatchesDense(t, name, x, x, y, wt, labels, allCols(k), 0, tolSuff)
		if len(sf.Aliased) != 0 || sf.Cond > 1e4 {
			t.Errorf("%s: aliased %v, cond %g", name, sf.Aliased, sf.Cond)
		}
	}
}

// TestSuffSmallClusters: a team with a single row, a team-specific dummy
// (a zero eigenvalue in G_g, handled by the pseudo-inverse) and tiny teams
// with n_g < K.
func TestSuffSmallClusters(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	sizes := []int{1, 7, 3, 12, 5, 9, 4, 1, 30, 2}
	var rows [][]float64
	var y, w []float64
	var labels []int
	for g, s := range sizes {
		for r := 0; r < s; r++ {
			row := []float64{1, float64(g % 2), rng.NormFloat64(), rng.NormFloat64() + float64(g), 0}
			if g == 3 {
				row[4] = 1
			}
			rows = append(rows, row)
			y = append(y, rng.NormFloat64()+row[2])
			w = append(w, 0.3+2*rng.Float64())
			labels = append(labels, g)
		}
	}
	x := mat.NewDense(len(rows), 5, nil)
	for i, r := range rows {
		x.SetRow(i, r)
	}
	for _, wt := range [][]float64{nil, w} {
		checkSuffMatchesDense(t, "small", x, x, y, wt, labels, allCols(5), 0, tolSuff)
	}
}

// TestSuffRankDeficient: exactly aliased columns (a zero column, a copy of
// a later-dropped combination of the trust dummies, a rescaled column) are
// dropped the way R's lm drops later aliased columns; the rest of the fit
// equals the dense fit without them.
func TestSuffRankDeficient(t *testing.T) {
	x, y, w, labels := simRows(2000, 10, 2)
	n, k := x.Dims()
	// Extra columns: 2·baseline − arm (aliased), zeros (aliased), a fresh
	// covariate (kept) and 2 − Σ trust dummies (aliased: a combination of
	// the intercept and the dummies).
	extra := [][]float64{make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)}
	for i := 0; i < n; i++ {
		extra[0][i] = 2*x.At(i, 2) - x.At(i, 1)
		extra[2][i] = math.Sin(float64(i))
		s := 2.0
		for j := 8; j < k; j++ {
			s -= x.At(i, j)
		}
		extra[3][i] = s
	}
	xs := mat.NewDense(n, k+4, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			xs.Set(i, j, x.At(i, j))
		}
		for e := range extra {
			xs.Set(i, k+e, extra[e][i])
		}
	}
	wantAliased := []int{k, k + 1, k + 3}
	kept := append(allCols(k), k+2)
	xd := mat.NewDense(n, len(kept), nil)
	for a, j := range kept {
		xd.SetCol(a, mat.Col(nil, j, xs))
	}
	for _, wt := range [][]float64{nil, w} {
		sf := checkSuffMatchesDense(t, "rank deficient", xs, xd, y, wt, labels, kept, 0, tolSuff)
		if !equalInts(sf.Aliased, wantAliased) {
			t.Errorf("aliased %v, want %v", sf.Aliased, wantAliased)
		}
		for _, j := range wantAliased {
			if !math.IsNaN(sf.Coef[j]) || !math.IsNaN(sf.Bread.At(j, j)) {
				t.Errorf("aliased column %d: coef %v, bread %v; want NaN", j, sf.Coef[j], sf.Bread.At(j, j))
			}
		}
		if _, err := sf.CR1Test(k, 0.95); err == nil {
			t.Error("CR1Test of an aliased column: no error")
		}
		if _, err := SuffWildClusterBootstrap(sumsOf(t, xs, y, wt, labels), k+1, WildConfig{Draws: 9}, rand.New(rand.NewPCG(1, 1))); err == nil {
			t.Error("wild bootstrap of an aliased column: no error")
		}
	}
	if _, err := SuffMixedREML(sumsOf(t, xs, y, nil, labels)); err == nil {
		t.Error("mixed model with aliased columns: no error")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSuffIllConditioned: a covariate offset far from zero (a date in days
// since 1900, say: mean 4e4, sd 3) gives cond(X) ≈ 1e4 with the intercept;
// the shifted sums and the centred basis remove it, so the fits agree to
// 1e-10 with the dense QR of the equivalent centred design (the dense QR of
// the offset design is itself off by ~1e-7: ε·cond(X)² in (X'X)⁻¹). A
// nearly collinear pair of covariates (scaled cond(X'X) ≈ 3e7) is
// intrinsic: the normal equations lose ε·cond(X)² against the QR's
// ε·cond(X), measured 1.5e-8 here, checked at 1e-7, and Cond says so.
// Collinearity beyond the rank tolerance is an alias.
func TestSuffIllConditioned(t *testing.T) {
	x0, y, w, labels := simRows(5000, 10, 3)
	n, k := x0.Dims()
	rng := rand.New(rand.NewPCG(8, 8))
	x := mat.NewDense(n, k, nil)
	x.Copy(x0)
	for i := 0; i < n; i++ {
		x.Set(i, 2, 40000+x0.At(i, 2)) // offset covariate
	}
	// The dense QR of the offset design carries ε·cond(X)² ≈ 1e-8 in
	// (X'X)⁻¹ itself, so the dense reference is the design with the offset
	// removed, x − 40000, which is exact in floating point and has the same
	// column space: every coefficient but the intercept is the same
	// parameter, with the same CR2 contrast.
	xd := mat.NewDense(n, k, nil)
	xd.Copy(x)
	for i := 0; i < n; i++ {
		xd.Set(i, 2, x.At(i, 2)-40000)
	}
	for _, wt := range [][]float64{nil, w} {
		sf := checkSuffMatchesDense(t, "offset", x, xd, y, wt, labels, allCols(k), 1, tolSuff)
		t.Logf("offset covariate: scaled cond(X'X) in the centred basis %.3g", sf.Cond)
		dc, err := OLS(xd, y, wt)
		if err != nil {
			t.Fatal(err)
		}
		checkClose(t, "offset intercept", sf.Coef[0], dc.Coef[0]-40000*dc.Coef[2], tolSuff)
		du, err := OLS(x, y, wt)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := du.VCovCR1(labels)
		vc, _ := dc.VCovCR1(labels)
		t.Logf("dense CR1 se of the baseline coefficient, offset vs centred design: rel. diff %.2g", relErr(math.Sqrt(v.At(2, 2)), math.Sqrt(vc.At(2, 2))))
	}

	xc := mat.NewDense(n, k+1, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			xc.Set(i, j, x0.At(i, j))
		}
		xc.Set(i, k, x0.At(i, 7)+1e-3*rng.NormFloat64()) // nearly collinear with column 7
	}
	for _, wt := range [][]float64{nil, w} {
		sf := checkSuffMatchesDense(t, "collinear pair", xc, xc, y, wt, labels, allCols(k+1), 0, 1e-7)
		if sf.Cond < 1e6 {
			t.Errorf("cond %g, expected the ill-conditioning to show (> 1e6)", sf.Cond)
		}
		t.Logf("nearly collinear pair: scaled cond(X'X) %.3g", sf.Cond)
	}

	// Collinear to 1e-9: aliased by the rank check, as lm would.
	for i := 0; i < n; i++ {
		xc.Set(i, k, x0.At(i, 7)+1e-9*rng.NormFloat64())
	}
	sf, err := SuffOLS(sumsOf(t, xc, y, nil, labels))
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(sf.Aliased, []int{k}) {
		t.Errorf("aliased %v, want [%d]", sf.Aliased, k)
	}
}

// TestSuffWildMatchesDense: the bootstrap from the sums draws the same
// weights and gives the same p-value (a count, so exactly) and interval
// limits (bisection to 1e-10 standard errors, so 1e-9 relative).
func TestSuffWildMatchesDense(t *testing.T) {
	x, y, w, labels := simRows(10_000, 10, 4)
	for _, wt := range [][]float64{nil, w} {
		for _, j := range []int{1, 2} {
			cfg := WildConfig{Draws: 999, Level: 0.95}
			d, err := WildClusterBootstrap(x, y, wt, labels, j, cfg, rand.New(rand.NewPCG(3, 3)))
			if err != nil {
				t.Fatal(err)
			}
			s, err := SuffWildClusterBootstrap(sumsOf(t, x, y, wt, labels), j, cfg, rand.New(rand.NewPCG(3, 3)))
			if err != nil {
				t.Fatal(err)
			}
			if s.PValue != d.PValue || s.Draws != d.Draws {
				t.Errorf("column %d weighted=%v: p %v, dense %v", j, wt != nil, s.PValue, d.PValue)
			}
			checkClose(t, "wild estimate", s.Estimate, d.Estimate, tolSuff)
			checkClose(t, "wild se", s.StdError, d.StdError, tolSuff)
			checkClose(t, "wild t", s.T, d.T, tolSuff)
			checkClose(t, "wild ci low", s.CILow, d.CILow, 1e-9)
			checkClose(t, "wild ci high", s.CIHigh, d.CIHigh, 1e-9)
		}
	}
}

// TestSuffMixedMatchesDense: the REML random-intercept model from the sums
// against MixedREML on the same 10,000 rows.
func TestSuffMixedMatchesDense(t *testing.T) {
	x, y, _, labels := simRows(10_000, 10, 5)
	d, err := MixedREML(x, y, labels)
	if err != nil {
		t.Fatal(err)
	}
	s, err := SuffMixedREML(sumsOf(t, x, y, nil, labels))
	if err != nil {
		t.Fatal(err)
	}
	checkMixed(t, s, d, tolSuff)
}

func checkMixed(t *testing.T, s, d *MixedFit, tol float64) {
	t.Helper()
	if s.Boundary != d.Boundary || s.Groups != d.Groups || s.N != d.N {
		t.Errorf("boundary/groups/n %v %d %d, dense %v %d %d", s.Boundary, s.Groups, s.N, d.Boundary, d.Groups, d.N)
	}
	for j := range d.Coef {
		checkClose(t, "mixed coef", s.Coef[j], d.Coef[j], tol)
		checkClose(t, "mixed se", s.StdError[j], d.StdError[j], tol)
	}
	checkClose(t, "mixed var group", s.VarGroup, d.VarGroup, tol)
	checkClose(t, "mixed var residual", s.VarResidual, d.VarResidual, tol)
	checkClose(t, "mixed theta", s.Theta, d.Theta, tol)
	checkClose(t, "mixed reml", s.REMLCriterion, d.REMLCriterion, tol)
}

// TestSuffAgainstR runs the fits from the sums on the R reference data
// (testdata/reference, R 4.2 with sandwich, clubSandwich and lme4) with the
// reference tests' tolerances.
func TestSuffAgainstR(t *testing.T) {
	ref := loadReference(t)
	d := loadAncova(t)
	x := d.design(d.arm, d.yBase)
	sf, err := SuffOLS(sumsOf(t, x, d.yFu, nil, d.teamCode))
	if err != nil {
		t.Fatal(err)
	}
	for j, name := range ancovaNames {
		checkRel(t, "coef "+name, sf.Coef[j], ref.OLS.Coef[name], tolEst)
		checkRel(t, "se "+name, sf.CoefTest(j, 0.95).StdError, ref.OLS.SE[name], tolEst)
	}
	checkRel(t, "df_residual", float64(sf.DFResid), ref.OLS.DFResidual, 0)
	checkRel(t, "sigma", sf.Sigma, ref.OLS.Sigma, tolEst)
	checkRel(t, "r_squared", sf.RSquared, ref.OLS.RSquared, tolEst)
	cr1, err := sf.CR1Test(1, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	checkCoefTest(t, "cr1", cr1, ref.CR1)
	cr2, err := sf.CR2()
	if err != nil {
		t.Fatal(err)
	}
	checkCoefTest(t, "cr2 arm", cr2.Test(1, 0.95), ref.CR2.refCoefTest)
	for j, name := range ancovaNames {
		checkRel(t, "cr2 se "+name, math.Sqrt(cr2.VCov.At(j, j)), ref.CR2.AllSE[name], tolEst)
		checkRel(t, "cr2 df "+name, cr2.DF[j], ref.CR2.AllDF[name], tolDF)
	}

	change := make([]float64, len(d.yFu))
	for i := range change {
		change[i] = d.yFu[i] - d.yBase[i]
	}
	cases := []struct {
		name string
		x    *mat.Dense
		y, w []float64
		want refCoefTest
	}{
		{"change cr2", d.design(d.arm), change, nil, ref.ChangeCR2},
		{"fidelity_dose cr2", d.design(d.highFid, d.yBase), d.yFu, nil, ref.FidelityCR2},
		{"weighted cr2", x, d.yFu, d.ateWeights(t), ref.WeightedCR2},
	}
	for _, c := range cases {
		sf, err := SuffOLS(sumsOf(t, c.x, c.y, c.w, d.teamCode))
		if err != nil {
			t.Fatal(err)
		}
		cr2, err := sf.CR2()
		if err != nil {
			t.Fatal(err)
		}
		checkCoefTest(t, c.name, cr2.Test(1, 0.95), c.want)
	}

	mf, err := SuffMixedREML(sumsOf(t, x, d.yFu, nil, d.teamCode))
	if err != nil {
		t.Fatal(err)
	}
	checkRel(t, "var_team", mf.VarGroup, ref.Mixed.VarTeam, tolREML)
	checkRel(t, "var_residual", mf.VarResidual, ref.Mixed.VarResidual, tolREML)
	checkRel(t, "icc", mf.ICC, ref.Mixed.ICC, tolREML)
	checkRel(t, "reml_criterion", mf.REMLCriterion, ref.Mixed.REMLCriterion, tolEst)
	checkRel(t, "mixed estimate", mf.Coef[1], ref.Mixed.Estimate, tolEst)
	checkRel(t, "mixed std_error", mf.StdError[1], ref.Mixed.StdError, tolEst)
	dm, err := MixedREML(x, d.yFu, d.teamCode)
	if err != nil {
		t.Fatal(err)
	}
	checkMixed(t, mf, dm, tolSuff)

	// The wild bootstrap on the reference data, as TestWildBootstrapReference.
	cfg := WildConfig{Draws: 9999, Level: 0.95}
	dw, err := WildClusterBootstrap(x, d.yFu, nil, d.teamCode, 1, cfg, rand.New(rand.NewPCG(20181, 1)))
	if err != nil {
		t.Fatal(err)
	}
	sw, err := SuffWildClusterBootstrap(sumsOf(t, x, d.yFu, nil, d.teamCode), 1, cfg, rand.New(rand.NewPCG(20181, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if sw.PValue != dw.PValue {
		t.Errorf("wild p %v, dense %v", sw.PValue, dw.PValue)
	}
	checkClose(t, "wild ci low", sw.CILow, dw.CILow, 1e-9)
	checkClose(t, "wild ci high", sw.CIHigh, dw.CIHigh, 1e-9)
}

// TestSuffAccumulation: AddColumns, Add and Merge of two halves give the
// same sums; data problems are errors.
func TestSuffAccumulation(t *testing.T) {
	x, y, w, labels := simRows(3000, 10, 6)
	n, k := x.Dims()
	codes, _, _ := groupIndex(labels)
	cols := make([][]float64, k)
	for j := range cols {
		cols[j] = mat.Col(nil, j, x)
	}
	a, _ := NewClusterSums(k, true)
	if err := a.AddColumns(codes, cols, y, w); err != nil {
		t.Fatal(err)
	}
	b, _ := NewClusterSums(k, true)
	c, _ := NewClusterSums(k, true)
	for _, p := range []*ClusterSums{b, c} {
		if err := p.SetShift(x.RawRowView(5), y[5]); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		dst := b
		if i%3 == 0 {
			dst = c
		}
		if err := dst.Add(codes[i], x.RawRowView(i), y[i], w[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Merge(c); err != nil {
		t.Fatal(err)
	}
	if err := b.Merge(a); err == nil {
		t.Error("merge of sums with different shifts: no error")
	}
	fa, err := SuffOLS(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := SuffOLS(b)
	if err != nil {
		t.Fatal(err)
	}
	for j := range fa.Coef {
		checkClose(t, "merged coef", fb.Coef[j], fa.Coef[j], 1e-12)
	}
	checkClose(t, "merged r2", fb.RSquared, fa.RSquared, 1e-12)

	// The unweighted view of weighted sums is the unweighted sums.
	un, _ := NewClusterSums(k, false)
	if err := un.AddColumns(codes, cols, y, nil); err != nil {
		t.Fatal(err)
	}
	fu, err := SuffOLS(un)
	if err != nil {
		t.Fatal(err)
	}
	fv, err := SuffOLS(a.Unweighted())
	if err != nil {
		t.Fatal(err)
	}
	cu, _ := fu.CR2()
	cv, _ := fv.CR2()
	for j := range fu.Coef {
		checkClose(t, "unweighted view coef", fv.Coef[j], fu.Coef[j], 1e-12)
		checkClose(t, "unweighted view cr2 df", cv.DF[j], cu.DF[j], 1e-12)
	}

	s, _ := NewClusterSums(2, true)
	for _, bad := range []struct {
		c    int
		x    []float64
		y, w float64
	}{
		{0, []float64{1, math.NaN()}, 1, 1},
		{0, []float64{1, 2}, math.Inf(1), 1},
		{0, []float64{1, 2}, 1, 0},
		{-1, []float64{1, 2}, 1, 1},
		{1 << 30, []float64{1, 2}, 1, 1},
		{0, []float64{1}, 1, 1},
	} {
		if err := s.Add(bad.c, bad.x, bad.y, bad.w); err == nil {
			t.Errorf("Add(%v): no error", bad)
		}
	}
	if s.N() != 0 {
		t.Errorf("%d rows after rejected adds", s.N())
	}
	if _, err := SuffOLS(s); err == nil {
		t.Error("SuffOLS of empty sums: no error")
	}
	one, _ := NewClusterSums(2, false)
	for i := 0; i < 10; i++ {
		_ = one.Add(0, []float64{1, float64(i)}, float64(i*i), 1)
	}
	f, err := SuffOLS(one)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.CR2(); err == nil {
		t.Error("CR2 with one cluster: no error")
	}
	if _, err := SuffMixedREML(one); err == nil {
		t.Error("mixed model with one group: no error")
	}
}

// TestLogisticPatternsMatchesDense: the propensity model from covariate
// pattern counts equals Logistic on the rows, on 10,000 simulated rows with
// categorical covariates (64 patterns) and on the R reference data (a
// continuous covariate: one pattern per row), where it must also match R
// (glm) with the reference tolerances.
func TestLogisticPatternsMatchesDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 1))
	const n = 10_000
	x := mat.NewDense(n, 8, nil)
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
		if d := rng.IntN(3); d > 0 {
			row[5+d] = 1
		}
		eta := -0.3 + 0.4*row[1] - 0.2*row[3] + 0.5*row[4] - 0.6*row[5] + 0.3*row[7]
		if rng.Float64() < 1/(1+math.Exp(-eta)) {
			arm[i] = 1
		}
	}
	check := func(name string, x *mat.Dense, arm []float64, tol float64) []float64 {
		t.Helper()
		n, k := x.Dims()
		dc, dps, ddev, err := Logistic(x, arm)
		if err != nil {
			t.Fatal(err)
		}
		pc, _ := NewPatternCounts(k)
		pat := make([]int, n)
		for i := 0; i < n; i++ {
			if pat[i], err = pc.Add(x.RawRowView(i), arm[i]); err != nil {
				t.Fatal(err)
			}
		}
		sc, sps, sdev, err := LogisticPatterns(pc)
		if err != nil {
			t.Fatal(err)
		}
		for j := range dc {
			checkClose(t, name+" coef", sc[j], dc[j], tol)
		}
		for i := range dps {
			checkClose(t, name+" fitted", sps[pat[i]], dps[i], tol)
		}
		checkClose(t, name+" deviance", sdev, ddev, tol)
		t.Logf("%s: %d rows, %d patterns", name, n, pc.Len())
		return sc
	}
	check("simulated", x, arm, tolSuff)

	ref := loadReference(t)
	d := loadAncova(t)
	names, cols := d.propensityColumns()
	coef := check("reference", columns(cols...), d.arm, tolSuff)
	for j, name := range names {
		checkRel(t, "propensity "+name, coef[j], ref.Propensity.Coef[name], tolEst)
	}

	pc, _ := NewPatternCounts(2)
	if _, err := pc.Add([]float64{1, 0}, 0.5); err == nil {
		t.Error("y = 0.5: no error")
	}
	if _, err := pc.Add([]float64{1, math.NaN()}, 1); err == nil {
		t.Error("NaN covariate: no error")
	}
	_, _ = pc.Add([]float64{1, 0}, 1)
	_, _ = pc.Add([]float64{1, 0}, 1)
	if _, _, _, err := LogisticPatterns(pc); err == nil {
		t.Error("no variation in y: no error")
	}
	_, _ = pc.Add([]float64{1, 0}, 0)
	if _, _, _, err := LogisticPatterns(pc); err == nil {
		t.Error("one pattern for two coefficients: no error")
	}
}

// TestPatternCountsAddRows: rows grouped by the caller and added with
// AddRows give the same patterns, in the same order, and the same fit, bit
// for bit, as the rows added one by one.
func TestPatternCountsAddRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 1))
	const n = 5_000
	one, _ := NewPatternCounts(3)
	grouped, _ := NewPatternCounts(3)
	type group struct{ trials, ones float64 }
	var order []string
	groups := map[string]*group{}
	rows := map[string][]float64{}
	for i := 0; i < n; i++ {
		a, b := float64(rng.IntN(2)), float64(rng.IntN(5))
		x := []float64{1, a, b}
		y := 0.0
		if rng.Float64() < 1/(1+math.Exp(0.3-0.5*a+0.2*b)) {
			y = 1
		}
		if _, err := one.Add(x, y); err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprint(x)
		g, ok := groups[key]
		if !ok {
			g = &group{}
			groups[key] = g
			rows[key] = x
			order = append(order, key)
		}
		g.trials++
		g.ones += y
	}
	for i, key := range order {
		c, err := grouped.AddRows(rows[key], groups[key].trials, groups[key].ones)
		if err != nil || c != i {
			t.Fatalf("AddRows: pattern %d, %v; want %d", c, err, i)
		}
	}
	c1, f1, d1, err1 := LogisticPatterns(one)
	c2, f2, d2, err2 := LogisticPatterns(grouped)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if d1 != d2 || fmt.Sprint(c1) != fmt.Sprint(c2) || fmt.Sprint(f1) != fmt.Sprint(f2) {
		t.Errorf("grouped fit differs: deviance %v vs %v, coef %v vs %v", d1, d2, c1, c2)
	}
	for _, bad := range [][2]float64{{0, 0}, {1.5, 1}, {2, 3}, {2, -1}, {math.NaN(), 0}} {
		if _, err := grouped.AddRows([]float64{1, 0, 0}, bad[0], bad[1]); err == nil {
			t.Errorf("AddRows(%v trials, %v ones): no error", bad[0], bad[1])
		}
	}
}

// TestSuffCR2Contrast: the CR2 test of β₂ − β₇ from the sums equals the
// dense CR2 test of the coefficient of x₂ in the reparameterised design
// with x₇ replaced by x₂ + x₇ (same column space, and that coefficient is
// β₂ − β₇), whose Satterthwaite df is the contrast's. A unit contrast is
// the coefficient's own test.
func TestSuffCR2Contrast(t *testing.T) {
	x, y, w, labels := simRows(10_000, 10, 9)
	n, k := x.Dims()
	xr := mat.NewDense(n, k, nil)
	xr.Copy(x)
	for i := 0; i < n; i++ {
		xr.Set(i, 7, x.At(i, 2)+x.At(i, 7))
	}
	for _, wt := range [][]float64{nil, w} {
		sf, err := SuffOLS(sumsOf(t, x, y, wt, labels))
		if err != nil {
			t.Fatal(err)
		}
		l := make([]float64, k)
		l[2], l[7] = 1, -1
		got, err := sf.CR2Contrast(l, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		dense, err := OLS(xr, y, wt)
		if err != nil {
			t.Fatal(err)
		}
		dcr2, err := dense.CR2(labels)
		if err != nil {
			t.Fatal(err)
		}
		checkTests(t, "contrast", got, dcr2.Test(2, 0.95), tolSuff)

		cr2, err := sf.CR2()
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range []int{0, 1, 2} {
			e := make([]float64, k)
			e[j] = 1
			got, err := sf.CR2Contrast(e, 0.95)
			if err != nil {
				t.Fatal(err)
			}
			checkTests(t, "unit contrast", got, cr2.Test(j, 0.95), 1e-12)
		}
	}
}

// TestMixedHugeGroups: with very large groups and group-level columns (arm,
// trust dummies), X'V⁻¹X becomes numerically singular at the top of the θ
// grid (n_gψ ≈ 1e12 or more removes the between-group information); the
// grid must stop there instead of failing the fit, as it did on 1,000,000
// rows in 10 teams. The sums are those of a small data set replicated 1e8
// times (groups of ~1e10 rows).
func TestMixedHugeGroups(t *testing.T) {
	x, y, _, labels := simRows(2000, 10, 11)
	s := sumsOf(t, x, y, nil, labels)
	const rep = 1e8
	m := &mixedSums{n: int(rep) * s.rows, k: s.k, xtx: mat.NewSymDense(s.k, nil), xty: make([]float64, s.k)}
	for _, c := range s.clusters(allCols(s.k), false) {
		m.xtx.AddSym(m.xtx, c.xx)
		for j := range m.xty {
			m.xty[j] += rep * c.xy[j]
		}
		m.yty += rep * c.yy
		m.ng = append(m.ng, rep*float64(c.n))
		sx := make([]float64, s.k)
		for j, v := range c.sx {
			sx[j] = rep * v
		}
		m.sg = append(m.sg, sx)
		m.tg = append(m.tg, rep*c.sy)
	}
	m.xtx.ScaleSym(rep, m.xtx)
	if _, err := m.eval(1e8); err == nil {
		t.Fatal("X'V⁻¹X at θ = 1e4 is not singular: the test does not exercise the grid stop")
	}
	fit, err := m.fit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !(fit.Theta > 0 && fit.Theta < 1e3) || fit.Boundary {
		t.Errorf("theta %v, boundary %v", fit.Theta, fit.Boundary)
	}
}

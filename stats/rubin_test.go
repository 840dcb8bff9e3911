package stats

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// The multiple-imputation reference: R 4.2.2, mice 3.15.0, pan 1.6,
// clubSandwich 0.5.8, broom 1.0.3; see ../testdata/reference/mi/README.md.
// Tolerances (relative) are the ones that README states.
const (
	tolPool   = 1e-10 // pooling arithmetic from R's per-imputation numbers
	tolFitOLS = 1e-10 // per-imputation OLS estimates and variances
	tolFitCR2 = 1e-8  // per-imputation CR2 estimate, variance, SE, df; end-to-end pooled figures
	tolEndP   = 1e-6  // end-to-end p-values and confidence limits
)

// jnum reads a JSON number, or the string "Inf".
type jnum float64

func (j *jnum) UnmarshalJSON(b []byte) error {
	if string(b) == `"Inf"` {
		*j = jnum(math.Inf(1))
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*j = jnum(f)
	return nil
}

type refMicePool struct {
	M            int     `json:"m"`
	QBar         float64 `json:"qbar"`
	UBar         float64 `json:"ubar"`
	B            float64 `json:"b"`
	T            float64 `json:"t"`
	StdError     float64 `json:"std_error"`
	DFCom        float64 `json:"dfcom"`
	DF           float64 `json:"df"`
	RIV          float64 `json:"riv"`
	Lambda       float64 `json:"lambda"`
	FMI          float64 `json:"fmi"`
	DFPR726      float64 `json:"df_mice_pr726"`
	Intermediate struct {
		LambdaFloored float64 `json:"lambda_floored"`
		DFOld         float64 `json:"df_old"`
		DFObs         float64 `json:"df_obs"`
		DFPR726       float64 `json:"df_mice_pr726"`
	} `json:"intermediate"`
	PerImputation struct {
		Estimate []float64 `json:"estimate"`
		Variance []float64 `json:"variance"`
	} `json:"per_imputation"`
	AllTerms map[string]struct {
		QBar   float64 `json:"qbar"`
		UBar   float64 `json:"ubar"`
		B      float64 `json:"b"`
		T      float64 `json:"t"`
		DF     float64 `json:"df"`
		RIV    float64 `json:"riv"`
		Lambda float64 `json:"lambda"`
		FMI    float64 `json:"fmi"`
	} `json:"all_terms"`
	BAllTerms map[string]float64 `json:"b_all_terms"`
}

type refCR2Pool struct {
	PerImputation struct {
		Estimate []float64 `json:"estimate"`
		Variance []float64 `json:"variance"`
		StdError []float64 `json:"std_error"`
		DF       []float64 `json:"df_satterthwaite"`
		PValue   []float64 `json:"p_value_satterthwaite"`
	} `json:"per_imputation"`
	M              int     `json:"m"`
	QBar           float64 `json:"qbar"`
	UBar           float64 `json:"ubar"`
	B              float64 `json:"b"`
	T              float64 `json:"t"`
	StdError       float64 `json:"std_error"`
	RIV            float64 `json:"riv"`
	Lambda         float64 `json:"lambda"`
	DFCom          float64 `json:"df_com"`
	DFM            jnum    `json:"df_m"`
	DFObs          float64 `json:"df_obs"`
	DF             float64 `json:"df"`
	TStat          float64 `json:"t_stat"`
	PValue         float64 `json:"p_value"`
	CILow          float64 `json:"ci_low"`
	CIHigh         float64 `json:"ci_high"`
	FMI            float64 `json:"fmi"`
	FMIMiceFormula float64 `json:"fmi_mice_formula"`
}

type miReference struct {
	Imputation struct {
		Standardisation struct {
			YBaseMean float64 `json:"y_base_mean"`
			YBaseSD   float64 `json:"y_base_sd"`
			YFuMean   float64 `json:"y_fu_mean"`
			YFuSD     float64 `json:"y_fu_sd"`
		} `json:"standardisation"`
	} `json:"imputation"`
	MicePool refMicePool `json:"mice_pool"`
	CR2Pool  refCR2Pool  `json:"cr2_pool"`
	EdgeB0   struct {
		IDs      []int       `json:"ids"`
		NObs     int         `json:"n_obs"`
		MicePool refMicePool `json:"mice_pool"`
		CR2Pool  refCR2Pool  `json:"cr2_pool"`
	} `json:"edge_b_zero"`
}

func loadMIReference(t testing.TB) *miReference {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(refDir, "mi", "mi_expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r miReference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// miCompleted is mi_completed.csv: M completed copies of mi_data.csv.
type miCompleted struct {
	m    int
	sets []*ancova // one per imputation, rows in .id order
	ids  [][]int
}

func loadMICompleted(t testing.TB) *miCompleted {
	t.Helper()
	hdr, recs := readCSV(t, filepath.Join("mi", "mi_completed.csv"))
	col := map[string]int{}
	for i, h := range hdr {
		col[h] = i
	}
	out := &miCompleted{}
	for _, r := range recs {
		imp, err := strconv.Atoi(r[col[".imp"]])
		if err != nil {
			t.Fatal(err)
		}
		for len(out.sets) < imp {
			out.sets = append(out.sets, &ancova{})
			out.ids = append(out.ids, nil)
		}
		d := out.sets[imp-1]
		id, err := strconv.Atoi(r[col[".id"]])
		if err != nil {
			t.Fatal(err)
		}
		out.ids[imp-1] = append(out.ids[imp-1], id)
		d.trust = append(d.trust, r[col["trust"]])
		d.team = append(d.team, r[col["team"]])
		d.arm = append(d.arm, atof(t, r[col["arm"]]))
		d.yBase = append(d.yBase, atof(t, r[col["y_base"]]))
		d.yFu = append(d.yFu, atof(t, r[col["y_fu"]]))
	}
	for _, d := range out.sets {
		d.teamCode, _ = Codes(d.team)
	}
	out.m = len(out.sets)
	return out
}

// subset returns the rows of d whose 1-based .id is in ids.
func (d *ancova) subset(rowIDs, ids []int) *ancova {
	keep := map[int]bool{}
	for _, id := range ids {
		keep[id] = true
	}
	s := &ancova{}
	for i, id := range rowIDs {
		if !keep[id] {
			continue
		}
		s.trust = append(s.trust, d.trust[i])
		s.team = append(s.team, d.team[i])
		s.arm = append(s.arm, d.arm[i])
		s.yBase = append(s.yBase, d.yBase[i])
		s.yFu = append(s.yFu, d.yFu[i])
	}
	s.teamCode, _ = Codes(s.team)
	return s
}

func checkMicePool(t *testing.T, name string, got Pooled, want refMicePool, tol float64, bZero bool) {
	t.Helper()
	checkRel(t, name+" qbar", got.QBar, want.QBar, tol)
	checkRel(t, name+" ubar", got.UBar, want.UBar, tol)
	checkRel(t, name+" t", got.T, want.T, tol)
	if want.StdError != 0 { // not given for the b = 0 case
		checkRel(t, name+" std_error", math.Sqrt(got.T), want.StdError, tol)
	}
	if bZero {
		if math.Abs(got.B) > 1e-12*got.UBar || got.B != 0 {
			t.Errorf("%s b = %g, want exactly 0", name, got.B)
		}
		if got.RIV != 0 || got.Lambda != 0 || got.FMI != 0 {
			t.Errorf("%s riv, lambda, fmi = %g, %g, %g; want 0", name, got.RIV, got.Lambda, got.FMI)
		}
		// No floor on λ: mice ≥ 3.19's df; mice 3.15 is the same formula at λ = 1e-4.
		checkRel(t, name+" df (mice >= 3.19)", got.DF, want.DFPR726, tol)
		checkRel(t, name+" fmi (mice formula, df without floor)", got.FMIMice, 2/(want.DFPR726+3), tol)
		_, obs, df := BarnardRubinDF(want.Intermediate.LambdaFloored, got.M, got.DFCom)
		checkRel(t, name+" df (mice 3.15, floored)", df, want.DF, tol)
		checkRel(t, name+" df_obs (mice 3.15, floored)", obs, want.Intermediate.DFObs, tol)
		return
	}
	checkRel(t, name+" b", got.B, want.B, tol)
	checkRel(t, name+" riv", got.RIV, want.RIV, tol)
	checkRel(t, name+" lambda", got.Lambda, want.Lambda, tol)
	checkRel(t, name+" df", got.DF, want.DF, tol)
	checkRel(t, name+" fmi (mice formula)", got.FMIMice, want.FMI, tol)
	checkRel(t, name+" fmi (cpi: lambda)", got.FMI, want.Lambda, tol)
	if want.Intermediate.DFOld != 0 {
		checkRel(t, name+" df_old", got.DFM, want.Intermediate.DFOld, tol)
		checkRel(t, name+" df_obs", got.DFObs, want.Intermediate.DFObs, tol)
		checkRel(t, name+" df (mice >= 3.19)", got.DF, want.Intermediate.DFPR726, tol)
	}
}

func checkCR2Pool(t *testing.T, name string, got Pooled, want refCR2Pool, tol, tolP float64) {
	t.Helper()
	checkRel(t, name+" qbar", got.QBar, want.QBar, tol)
	checkRel(t, name+" ubar", got.UBar, want.UBar, tol)
	if want.B == 0 {
		if got.B != 0 {
			t.Errorf("%s b = %g, want exactly 0", name, got.B)
		}
	} else {
		checkRel(t, name+" b", got.B, want.B, tol)
	}
	checkRel(t, name+" t", got.T, want.T, tol)
	checkRel(t, name+" riv", got.RIV, want.RIV, tol)
	checkRel(t, name+" lambda", got.Lambda, want.Lambda, tol)
	checkRel(t, name+" fmi", got.FMI, want.FMI, tol)
	checkRel(t, name+" fmi (mice formula)", got.FMIMice, want.FMIMiceFormula, tol)
	checkRel(t, name+" df_com", got.DFCom, want.DFCom, tol)
	if math.IsInf(float64(want.DFM), 1) != math.IsInf(got.DFM, 1) {
		t.Errorf("%s df_m = %g, R gives %g", name, got.DFM, float64(want.DFM))
	} else if !math.IsInf(got.DFM, 1) {
		checkRel(t, name+" df_m", got.DFM, float64(want.DFM), tol)
	}
	checkRel(t, name+" df_obs", got.DFObs, want.DFObs, tol)
	checkRel(t, name+" df", got.DF, want.DF, tol)
	ct := got.Test(0.95)
	checkRel(t, name+" std_error", ct.StdError, want.StdError, tol)
	checkRel(t, name+" t_stat", ct.T, want.TStat, tol)
	checkRel(t, name+" p_value", ct.PValue, want.PValue, tolP)
	checkRel(t, name+" ci_low", ct.CILow, want.CILow, tolP)
	checkRel(t, name+" ci_high", ct.CIHigh, want.CIHigh, tolP)
}

// TestRubinAgainstMice pools R's per-imputation OLS numbers and compares
// every step with mice::pool (mice 3.15.0) to 1e-10.
func TestRubinAgainstMice(t *testing.T) {
	ref := loadMIReference(t)
	mp := ref.MicePool
	got, err := Rubin(mp.PerImputation.Estimate, mp.PerImputation.Variance, mp.DFCom)
	if err != nil {
		t.Fatal(err)
	}
	checkMicePool(t, "mice_pool arm", got, mp, tolPool, false)
}

// TestRubinCR2AgainstRecipe pools R's per-imputation CR2 numbers
// (clubSandwich 0.5.8) by Pustejovsky's recipe, to 1e-10; p-value and CI
// limits use R's pt/qt through TTwoSided/TQuantile, also 1e-10.
func TestRubinCR2AgainstRecipe(t *testing.T) {
	ref := loadMIReference(t)
	for _, c := range []struct {
		name string
		want refCR2Pool
	}{{"cr2_pool", ref.CR2Pool}, {"edge_b_zero cr2_pool", ref.EdgeB0.CR2Pool}} {
		pi := c.want.PerImputation
		got, err := RubinCR2(pi.Estimate, pi.Variance, pi.DF)
		if err != nil {
			t.Fatal(err)
		}
		checkCR2Pool(t, c.name, got, c.want, tolPool, tolPool)
	}
}

// TestMIEndToEnd reads mi_completed.csv, fits each completed set with OLS
// and CR2 and pools: per-imputation OLS to 1e-10 and CR2 pieces to 1e-8
// (clubSandwich 0.5.8), the pooled figures of mice::pool and of the CR2
// recipe to 1e-8 (p-values and CI limits 1e-6), all terms, and the b = 0
// edge case.
func TestMIEndToEnd(t *testing.T) {
	ref := loadMIReference(t)
	mc := loadMICompleted(t)
	if mc.m != ref.MicePool.M {
		t.Fatalf("%d imputations in the CSV, %d in the JSON", mc.m, ref.MicePool.M)
	}
	run := func(name string, sets []*ancova, withBase bool, mp refMicePool, cp refCR2Pool, bZero bool) {
		var q [][]float64
		var u []mat.Symmetric
		var cr2s []*CR2Result
		dfCom := 0.0
		for i, d := range sets {
			var x *mat.Dense
			if withBase {
				x = d.design(d.arm, d.yBase)
			} else {
				x = d.design(d.arm)
			}
			fit, err := OLS(x, d.yFu, nil)
			if err != nil {
				t.Fatal(err)
			}
			dfCom = float64(fit.DFResid)
			q = append(q, fit.Coef)
			u = append(u, fit.VCov())
			if mp.PerImputation.Estimate != nil {
				checkRel(t, name+" ols estimate", fit.Coef[1], mp.PerImputation.Estimate[i], tolFitOLS)
				checkRel(t, name+" ols variance", fit.VCov().At(1, 1), mp.PerImputation.Variance[i], tolFitOLS)
			}
			cr2, err := fit.CR2(d.teamCode)
			if err != nil {
				t.Fatal(err)
			}
			cr2s = append(cr2s, cr2)
			pi := cp.PerImputation
			checkRel(t, name+" cr2 estimate", cr2.Coef[1], pi.Estimate[i], tolFitCR2)
			checkRel(t, name+" cr2 variance", cr2.VCov.At(1, 1), pi.Variance[i], tolFitCR2)
			checkRel(t, name+" cr2 std_error", math.Sqrt(cr2.VCov.At(1, 1)), pi.StdError[i], tolFitCR2)
			checkRel(t, name+" cr2 df", cr2.DF[1], pi.DF[i], tolFitCR2)
			checkRel(t, name+" cr2 p (Satterthwaite)", cr2.Test(1, 0.95).PValue, pi.PValue[i], tolEndP)
		}
		checkRel(t, name+" dfcom", dfCom, mp.DFCom, 0)
		pv, err := RubinVector(q, u, dfCom)
		if err != nil {
			t.Fatal(err)
		}
		checkMicePool(t, name+" mice_pool arm", pv.Terms[1], mp, tolFitCR2, bZero)
		names := ancovaNames
		if !withBase {
			names = []string{"(Intercept)", "arm", "trustBDCT", "trustEPUT", "trustAWP", "trustHPFT"}
		}
		for j, n := range names {
			if bZero {
				if pv.Terms[j].B != 0 || pv.B.At(j, j) != 0 || mp.BAllTerms[n] != 0 {
					t.Errorf("%s b[%s] = %g (matrix %g), R %g: want exactly 0", name, n, pv.Terms[j].B, pv.B.At(j, j), mp.BAllTerms[n])
				}
				continue
			}
			w, ok := mp.AllTerms[n]
			if !ok {
				t.Fatalf("no all_terms entry %q", n)
			}
			g := pv.Terms[j]
			checkRel(t, name+" "+n+" qbar", g.QBar, w.QBar, tolFitCR2)
			checkRel(t, name+" "+n+" ubar", g.UBar, w.UBar, tolFitCR2)
			checkRel(t, name+" "+n+" b", g.B, w.B, tolFitCR2)
			checkRel(t, name+" "+n+" t", g.T, w.T, tolFitCR2)
			checkRel(t, name+" "+n+" df", g.DF, w.DF, tolFitCR2)
			checkRel(t, name+" "+n+" riv", g.RIV, w.RIV, tolFitCR2)
			checkRel(t, name+" "+n+" lambda", g.Lambda, w.Lambda, tolFitCR2)
			checkRel(t, name+" "+n+" fmi (mice)", g.FMIMice, w.FMI, tolFitCR2)
			checkRel(t, name+" "+n+" T matrix diagonal", pv.T.At(j, j), w.T, tolFitCR2)
		}
		got, err := PoolCR2(cr2s, 1)
		if err != nil {
			t.Fatal(err)
		}
		checkCR2Pool(t, name+" cr2_pool", got, cp, tolFitCR2, tolEndP)
	}
	run("ancova", mc.sets, true, ref.MicePool, ref.CR2Pool, false)

	var sub []*ancova
	for i, d := range mc.sets {
		sub = append(sub, d.subset(mc.ids[i], ref.EdgeB0.IDs))
	}
	if len(sub[0].arm) != ref.EdgeB0.NObs {
		t.Fatalf("b = 0 subset has %d rows, R %d", len(sub[0].arm), ref.EdgeB0.NObs)
	}
	run("edge_b_zero", sub, false, ref.EdgeB0.MicePool, ref.EdgeB0.CR2Pool, true)
}

func TestRubinErrors(t *testing.T) {
	if _, err := Rubin([]float64{1}, []float64{1}, 10); err == nil {
		t.Error("one imputation: want an error")
	}
	if _, err := Rubin([]float64{1, 2}, []float64{1}, 10); err == nil {
		t.Error("mismatched lengths: want an error")
	}
	if _, err := Rubin([]float64{1, math.NaN()}, []float64{1, 1}, 10); err == nil {
		t.Error("NaN estimate: want an error")
	}
	if _, err := Rubin([]float64{1, 1}, []float64{0, 0}, 10); err == nil {
		t.Error("zero total variance: want an error")
	}
	if _, err := RubinCR2([]float64{1, 2}, []float64{1, 1}, []float64{4, math.NaN()}); err == nil {
		t.Error("NaN df: want an error")
	}
	// Normal reference: ν_com = +Inf gives Rubin's (1987) df.
	p, err := Rubin([]float64{1, 2, 3}, []float64{1, 1, 1}, math.Inf(1))
	if err != nil {
		t.Fatal(err)
	}
	checkRel(t, "df with dfcom = Inf", p.DF, p.DFM, 0)
}

// TestSatterthwaiteMIDF: hand-computed values of
// 1/ν = (1 − λ)²/ν_com + λ²/(M − 1), and its limits (b = 0 gives ν_com,
// ν_com = +Inf gives Rubin's ν_m); RubinCR2Satterthwaite keeps RubinCR2's
// q̄, ū, b, t and λ on R's reference numbers and changes only the df.
func TestSatterthwaiteMIDF(t *testing.T) {
	for _, c := range []struct {
		lambda float64
		m      int
		dfCom  float64
		dfU    float64
		df     float64
	}{
		{0.2, 21, 4, 6.25, 1 / 0.162},          // 0.64/4 + 0.04/20
		{0.5, 11, 10, 40, 1 / (0.025 + 0.025)}, // 0.25/10 + 0.25/10
		{0, 50, 4.25, 4.25, 4.25},
		{0.3, 31, math.Inf(1), math.Inf(1), 30 / 0.09},
	} {
		dfU, df := SatterthwaiteMIDF(c.lambda, c.m, c.dfCom)
		checkRel(t, "dfU", dfU, c.dfU, 1e-14)
		checkRel(t, "df", df, c.df, 1e-14)
	}
	ref := loadMIReference(t)
	pi := ref.CR2Pool.PerImputation
	br, err := RubinCR2(pi.Estimate, pi.Variance, pi.DF)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := RubinCR2Satterthwaite(pi.Estimate, pi.Variance, pi.DF)
	if err != nil {
		t.Fatal(err)
	}
	if sw.QBar != br.QBar || sw.UBar != br.UBar || sw.B != br.B || sw.T != br.T || sw.Lambda != br.Lambda || sw.DFCom != br.DFCom || sw.DFM != br.DFM {
		t.Errorf("Satterthwaite pooling %+v differs from RubinCR2 %+v outside the df", sw, br)
	}
	l := br.Lambda
	checkRel(t, "df", sw.DF, 1/((1-l)*(1-l)/br.DFCom+l*l/float64(br.M-1)), 1e-14)
	if !(sw.DF > br.DFCom && br.DF < br.DFCom) {
		t.Errorf("df %v (Barnard–Rubin %v) around df_com %v", sw.DF, br.DF, br.DFCom)
	}
}

package stats

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// The reference numbers were computed with R 4.2 (stats, sandwich 3.0-2,
// clubSandwich 0.5.8, lme4 1.1-31, psych 2.2.9); see
// ../testdata/reference/README.md and the notes in expected.json.

const refDir = "../testdata/reference"

// Tolerances (relative) stated in the reference README.
const (
	tolEst  = 1e-8 // estimates, standard errors, weights, alpha
	tolDF   = 1e-6 // Satterthwaite df, p-values, confidence limits
	tolREML = 1e-5 // REML variance components
)

type refCoefTest struct {
	Estimate float64 `json:"estimate"`
	StdError float64 `json:"std_error"`
	DF       float64 `json:"df"`
	PValue   float64 `json:"p_value"`
	CILow    float64 `json:"ci_low"`
	CIHigh   float64 `json:"ci_high"`
}

type reference struct {
	NObs      int `json:"n_obs"`
	NClusters int `json:"n_clusters"`
	OLS       struct {
		Coef       map[string]float64 `json:"coef"`
		SE         map[string]float64 `json:"se"`
		DFResidual float64            `json:"df_residual"`
		Sigma      float64            `json:"sigma"`
		RSquared   float64            `json:"r_squared"`
	} `json:"ols"`
	CR1 refCoefTest `json:"cr1"`
	CR2 struct {
		refCoefTest
		AllSE map[string]float64 `json:"all_se"`
		AllDF map[string]float64 `json:"all_df"`
	} `json:"cr2"`
	PartialEta2 float64     `json:"partial_eta2"`
	HedgesG     float64     `json:"hedges_g"`
	ChangeCR2   refCoefTest `json:"change_cr2"`
	FidelityCR2 refCoefTest `json:"fidelity_dose_cr2"`
	WeightedCR2 refCoefTest `json:"weighted_cr2"`
	Mixed       struct {
		Estimate      float64            `json:"estimate"`
		StdError      float64            `json:"std_error"`
		VarTeam       float64            `json:"var_team"`
		VarResidual   float64            `json:"var_residual"`
		ICC           float64            `json:"icc"`
		REMLCriterion float64            `json:"reml_criterion"`
		Fixef         map[string]float64 `json:"fixef"`
	} `json:"mixed"`
	Propensity struct {
		Coef          map[string]float64 `json:"coef"`
		Deviance      float64            `json:"deviance"`
		WeightsFirst5 []float64          `json:"weights_first5"`
		WeightsSum    float64            `json:"weights_sum"`
		WeightsMax    float64            `json:"weights_max"`
	} `json:"propensity"`
	Balance map[string]struct {
		Unweighted float64 `json:"smd_unweighted"`
		Weighted   float64 `json:"smd_weighted"`
	} `json:"balance"`
	Alpha struct {
		N             int                `json:"n"`
		Items         int                `json:"items"`
		Alpha         float64            `json:"alpha"`
		CILow         float64            `json:"ci_low_feldt"`
		CIHigh        float64            `json:"ci_high_feldt"`
		ItemTotalDrop map[string]float64 `json:"item_total_r_drop"`
	} `json:"alpha"`
	ICC struct {
		ICC2      float64 `json:"icc2_1"`
		ICC2Lower float64 `json:"icc2_1_lower"`
		ICC2Upper float64 `json:"icc2_1_upper"`
		ICC3      float64 `json:"icc3_1"`
	} `json:"icc"`
}

func loadReference(t testing.TB) *reference {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(refDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// readCSV returns the header and the records of a reference CSV file.
func readCSV(t testing.TB, name string) ([]string, [][]string) {
	t.Helper()
	f, err := os.Open(filepath.Join(refDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs[0], recs[1:]
}

func atof(t testing.TB, s string) float64 {
	t.Helper()
	if s == "NA" || s == "" {
		return math.NaN()
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// ancova is ancova.csv in columns.
type ancova struct {
	trust, team, ageBand, gender, diagnosis []string
	arm, livingAlone, yBase, yFu, highFid   []float64
	teamCode                                []int
}

func loadAncova(t testing.TB) *ancova {
	t.Helper()
	hdr, recs := readCSV(t, "ancova.csv")
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
		d.highFid = append(d.highFid, atof(t, r[col["high_fidelity"]]))
	}
	d.teamCode, _ = Codes(d.team)
	return d
}

// Column names of the ANCOVA design, in R's order (notes.trust_coding).
var ancovaNames = []string{"(Intercept)", "arm", "y_base", "trustBDCT", "trustEPUT", "trustAWP", "trustHPFT"}

var trustDummies = []string{"BDCT", "EPUT", "AWP", "HPFT"} // TEWV is the reference

func dummy(x []string, level string) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		if v == level {
			out[i] = 1
		}
	}
	return out
}

// design builds [1, first, second..., trust dummies] with treatment contrasts.
func (d *ancova) design(cols ...[]float64) *mat.Dense {
	n := len(d.arm)
	all := [][]float64{ones(n)}
	all = append(all, cols...)
	for _, l := range trustDummies {
		all = append(all, dummy(d.trust, l))
	}
	return columns(all...)
}

func ones(n int) []float64 {
	o := make([]float64, n)
	for i := range o {
		o[i] = 1
	}
	return o
}

func columns(cols ...[]float64) *mat.Dense {
	n := len(cols[0])
	x := mat.NewDense(n, len(cols), nil)
	for j, c := range cols {
		for i, v := range c {
			x.Set(i, j, v)
		}
	}
	return x
}

func closeRel(got, want, tol float64) bool {
	if got == want {
		return true
	}
	return math.Abs(got-want) <= tol*math.Abs(want)
}

func checkRel(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if !closeRel(got, want, tol) {
		t.Errorf("%s = %.15g, R gives %.15g (rel. diff %.2g, tol %g)", name, got, want, math.Abs(got-want)/math.Abs(want), tol)
	}
}

func checkCoefTest(t *testing.T, name string, got CoefTest, want refCoefTest) {
	t.Helper()
	checkRel(t, name+" estimate", got.Estimate, want.Estimate, tolEst)
	checkRel(t, name+" std_error", got.StdError, want.StdError, tolEst)
	checkRel(t, name+" df", got.DF, want.DF, tolDF)
	checkRel(t, name+" p_value", got.PValue, want.PValue, tolDF)
	checkRel(t, name+" ci_low", got.CILow, want.CILow, tolDF)
	checkRel(t, name+" ci_high", got.CIHigh, want.CIHigh, tolDF)
}

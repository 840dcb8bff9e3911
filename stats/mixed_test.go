package stats

import (
	"math/rand/v2"
	"testing"
)

func TestMixedAgainstR(t *testing.T) {
	ref := loadReference(t)
	d := loadAncova(t)
	fit, err := MixedREML(d.design(d.arm, d.yBase), d.yFu, d.teamCode)
	if err != nil {
		t.Fatal(err)
	}
	if fit.Boundary {
		t.Error("Boundary set, R's team variance is positive")
	}
	checkRel(t, "var_team", fit.VarGroup, ref.Mixed.VarTeam, tolREML)
	checkRel(t, "var_residual", fit.VarResidual, ref.Mixed.VarResidual, tolREML)
	checkRel(t, "icc", fit.ICC, ref.Mixed.ICC, tolREML)
	checkRel(t, "reml_criterion", fit.REMLCriterion, ref.Mixed.REMLCriterion, tolEst)
	checkRel(t, "estimate", fit.Coef[1], ref.Mixed.Estimate, tolEst)
	checkRel(t, "std_error", fit.StdError[1], ref.Mixed.StdError, tolEst)
	for j, name := range ancovaNames {
		checkRel(t, "fixef "+name, fit.Coef[j], ref.Mixed.Fixef[name], tolEst)
	}
	t.Logf("theta %.12g var_team %.12g (R %.12g) var_res %.12g (R %.12g) crit %.12g (R %.12g)", fit.Theta, fit.VarGroup, ref.Mixed.VarTeam, fit.VarResidual, ref.Mixed.VarResidual, fit.REMLCriterion, ref.Mixed.REMLCriterion)
}

// TestMixedBoundary builds data whose OLS residuals sum to exactly zero in
// every group (group-centred covariate and noise), so the REML estimate of
// the group variance is 0 and the fixed effects must equal OLS.
func TestMixedBoundary(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const g, m = 8, 12
	n := g * m
	x := make([]float64, n)
	y := make([]float64, n)
	group := make([]int, n)
	for c := 0; c < g; c++ {
		var sx, se float64
		e := make([]float64, m)
		for i := 0; i < m; i++ {
			x[c*m+i] = rng.NormFloat64()
			e[i] = rng.NormFloat64()
			sx += x[c*m+i]
			se += e[i]
		}
		for i := 0; i < m; i++ {
			x[c*m+i] -= sx / m
			y[c*m+i] = 2 + 0.5*x[c*m+i] + e[i] - se/m
			group[c*m+i] = c
		}
	}
	X := columns(ones(n), x)
	fit, err := MixedREML(X, y, group)
	if err != nil {
		t.Fatal(err)
	}
	if !fit.Boundary || fit.VarGroup != 0 {
		t.Fatalf("Boundary = %v, VarGroup = %v; want true, 0", fit.Boundary, fit.VarGroup)
	}
	ols, err := OLS(X, y, nil)
	if err != nil {
		t.Fatal(err)
	}
	for j := range ols.Coef {
		checkRel(t, "boundary fixef", fit.Coef[j], ols.Coef[j], 1e-12)
		checkRel(t, "boundary se", fit.StdError[j], ols.CoefTest(j, 0.95).StdError, 1e-12)
	}
	checkRel(t, "boundary residual variance", fit.VarResidual, ols.Sigma*ols.Sigma, 1e-12)
}

package stats

import (
	"math"
	"testing"
)

func TestOLSAgainstR(t *testing.T) {
	ref := loadReference(t)
	d := loadAncova(t)
	if len(d.arm) != ref.NObs {
		t.Fatalf("%d rows, expected.json says %d", len(d.arm), ref.NObs)
	}
	fit, err := OLS(d.design(d.arm, d.yBase), d.yFu, nil)
	if err != nil {
		t.Fatal(err)
	}
	for j, name := range ancovaNames {
		checkRel(t, "coef "+name, fit.Coef[j], ref.OLS.Coef[name], tolEst)
		checkRel(t, "se "+name, fit.CoefTest(j, 0.95).StdError, ref.OLS.SE[name], tolEst)
	}
	checkRel(t, "df_residual", float64(fit.DFResid), ref.OLS.DFResidual, 0)
	checkRel(t, "sigma", fit.Sigma, ref.OLS.Sigma, tolEst)
	checkRel(t, "r_squared", fit.RSquared, ref.OLS.RSquared, tolEst)
}

func TestCR1AgainstR(t *testing.T) {
	ref := loadReference(t)
	d := loadAncova(t)
	fit, err := OLS(d.design(d.arm, d.yBase), d.yFu, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fit.CR1Test(d.teamCode, 1, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	checkCoefTest(t, "cr1", got, ref.CR1)
}

func TestCR2AgainstR(t *testing.T) {
	ref := loadReference(t)
	d := loadAncova(t)
	fit, err := OLS(d.design(d.arm, d.yBase), d.yFu, nil)
	if err != nil {
		t.Fatal(err)
	}
	cr2, err := fit.CR2(d.teamCode)
	if err != nil {
		t.Fatal(err)
	}
	checkCoefTest(t, "cr2 arm", cr2.Test(1, 0.95), ref.CR2.refCoefTest)
	for j, name := range ancovaNames {
		checkRel(t, "cr2 se "+name, math.Sqrt(cr2.VCov.At(j, j)), ref.CR2.AllSE[name], tolEst)
		checkRel(t, "cr2 df "+name, cr2.DF[j], ref.CR2.AllDF[name], tolDF)
	}
}

func TestCR2ChangeAndFidelityAgainstR(t *testing.T) {
	ref := loadReference(t)
	d := loadAncova(t)
	change := make([]float64, len(d.yFu))
	for i := range change {
		change[i] = d.yFu[i] - d.yBase[i]
	}
	fit, err := OLS(d.design(d.arm), change, nil)
	if err != nil {
		t.Fatal(err)
	}
	cr2, err := fit.CR2(d.teamCode)
	if err != nil {
		t.Fatal(err)
	}
	checkCoefTest(t, "change cr2", cr2.Test(1, 0.95), ref.ChangeCR2)

	fit, err = OLS(d.design(d.highFid, d.yBase), d.yFu, nil)
	if err != nil {
		t.Fatal(err)
	}
	cr2, err = fit.CR2(d.teamCode)
	if err != nil {
		t.Fatal(err)
	}
	checkCoefTest(t, "fidelity_dose cr2", cr2.Test(1, 0.95), ref.FidelityCR2)
}

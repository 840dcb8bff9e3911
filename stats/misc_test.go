package stats

import (
	"testing"

	"gonum.org/v1/gonum/mat"
)

func TestEffectSizesAgainstR(t *testing.T) {
	ref := loadReference(t)
	d := loadAncova(t)
	fit, err := OLS(d.design(d.arm, d.yBase), d.yFu, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := HedgesG(fit.Coef[1], d.yFu, d.arm)
	if err != nil {
		t.Fatal(err)
	}
	checkRel(t, "hedges_g", g, ref.HedgesG, tolEst)
	ct := fit.CoefTest(1, 0.95)
	checkRel(t, "partial_eta2", PartialEta2(ct.T, float64(fit.DFResid)), ref.PartialEta2, tolEst)
}

func TestAlphaAgainstR(t *testing.T) {
	ref := loadReference(t)
	hdr, recs := readCSV(t, "alpha.csv")
	items := make([][]float64, len(hdr))
	for _, r := range recs {
		for i := range hdr {
			items[i] = append(items[i], atof(t, r[i]))
		}
	}
	a, err := CronbachAlpha(items)
	if err != nil {
		t.Fatal(err)
	}
	if a.N != ref.Alpha.N || a.Items != ref.Alpha.Items {
		t.Errorf("n = %d, items = %d; R: %d, %d", a.N, a.Items, ref.Alpha.N, ref.Alpha.Items)
	}
	checkRel(t, "alpha", a.Alpha, ref.Alpha.Alpha, tolEst)
	checkRel(t, "alpha ci_low_feldt", a.CILow, ref.Alpha.CILow, tolDF)
	checkRel(t, "alpha ci_high_feldt", a.CIHigh, ref.Alpha.CIHigh, tolDF)
	for i, name := range hdr {
		checkRel(t, "r.drop "+name, a.ItemRestCorr[i], ref.Alpha.ItemTotalDrop[name], tolEst)
	}
}

func TestICCAgainstR(t *testing.T) {
	ref := loadReference(t)
	_, recs := readCSV(t, "icc.csv")
	m := mat.NewDense(len(recs), len(recs[0]), nil)
	for i, r := range recs {
		for j, v := range r {
			m.Set(i, j, atof(t, v))
		}
	}
	r, err := ICC(m, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	checkRel(t, "icc2_1", r.ICC2, ref.ICC.ICC2, tolEst)
	checkRel(t, "icc2_1_lower", r.ICC2Lower, ref.ICC.ICC2Lower, tolDF)
	checkRel(t, "icc2_1_upper", r.ICC2Upper, ref.ICC.ICC2Upper, tolDF)
	checkRel(t, "icc3_1", r.ICC3, ref.ICC.ICC3, tolEst)
}

package compare

import (
	"math"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/stats"
)

// TestEdgeAliasedMixedWild: with a constant baseline (aliased with the
// intercept), the mixed model and the wild cluster bootstrap drop the
// column as R does (lme4 "fixed-effect model matrix is rank deficient so
// dropping 1 column", and lm before the bootstrap) and name it by
// covariate ("y_baseline"), never by position; their estimates equal the
// same fits of the design without that column (REML to 1e-9; the wild
// bootstrap's estimate, SE and p-value exactly, with the same seed).
func TestEdgeAliasedMixedWild(t *testing.T) {
	c, f := edgeComparison(t, func(f *colFrame) {
		for i := range f.yBase {
			f.yBase[i] = 12
		}
	})
	x := newColDesign(f, TermArm, f.arm, false).dense()
	const want = "aliased and dropped as R's lm does (coefficient NA): y_baseline"

	rows, _ := c.analyse(mixedAnalysis{})
	if len(rows) != 2 || rows[0].method != "reml" || !strings.Contains(rows[0].note, want) || strings.Contains(rows[0].note, "column") {
		t.Fatalf("mixed rows: %+v", rows)
	}
	mf, err := stats.MixedREML(x, f.yFU, f.clusterInts())
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(rows[0].estimate - mf.Coef[1]); !(d <= 1e-9*math.Abs(mf.Coef[1])) {
		t.Errorf("mixed estimate %v, without the baseline %v", rows[0].estimate, mf.Coef[1])
	}
	if d := math.Abs(rows[1].effectSize - mf.ICC); !(d <= 1e-9) {
		t.Errorf("mixed ICC %v, without the baseline %v", rows[1].effectSize, mf.ICC)
	}

	rows, _ = c.analyse(wildAnalysis{})
	if len(rows) != 1 || rows[0].method != "wild_webb" || !strings.Contains(rows[0].note, want) || strings.Contains(rows[0].note, "column") {
		t.Fatalf("wild rows: %+v", rows)
	}
	fr := &fitRows{c: c}
	wr, err := stats.WildClusterBootstrap(x, f.yFU, nil, f.clusterInts(), 1, fr.wildConfig(), fr.rng())
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].estimate != wr.Estimate || math.Abs(rows[0].stdError-wr.StdError) > 1e-12*wr.StdError || rows[0].pVal != wr.PValue {
		t.Errorf("wild %v (se %v, p %v), without the baseline %v (se %v, p %v)", rows[0].estimate, rows[0].stdError, rows[0].pVal, wr.Estimate, wr.StdError, wr.PValue)
	}
}

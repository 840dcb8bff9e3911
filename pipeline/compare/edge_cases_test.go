package compare

import (
	"math"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/stats"
)

// edgeComparison is an outcome comparison whose complete-case frame (the
// population of primary, mixed, wild_bootstrap, change) is the complete
// rows of the MI reference data (123 participants, 10 teams, 5 trusts),
// changed by edit before the analyses see it.
func edgeComparison(t *testing.T, edit func(f *colFrame)) (*outcomeComparison, *colFrame) {
	t.Helper()
	c := miTestComparison(t, 5)
	f, _ := miTestFrame(t, c.s)
	g := &colFrame{strata: f.strata, teams: f.teams}
	for i := range f.rows {
		if math.IsNaN(f.yFU[i]) || math.IsNaN(f.yBase[i]) {
			continue
		}
		g.rows = append(g.rows, f.rows[i])
		g.yFU = append(g.yFU, f.yFU[i])
		g.yBase = append(g.yBase, f.yBase[i])
		g.arm = append(g.arm, f.arm[i])
		g.stratum = append(g.stratum, f.stratum[i])
		g.cluster = append(g.cluster, f.cluster[i])
	}
	if edit != nil {
		edit(g)
	}
	c.frames = map[string]*colFrame{"": g}
	return c, g
}

func allNull(t *testing.T, rows []effectRow, wantNote string) {
	t.Helper()
	if len(rows) == 0 {
		t.Fatal("no rows")
	}
	for _, r := range rows {
		if !math.IsNaN(r.estimate) || !math.IsNaN(r.stdError) || !math.IsNaN(r.pVal) {
			t.Errorf("%s/%s: estimate %v, se %v, p %v; want null", r.analysis, r.method, r.estimate, r.stdError, r.pVal)
		}
		if !strings.Contains(r.note, wantNote) {
			t.Errorf("%s/%s: note %q, want it to contain %q", r.analysis, r.method, r.note, wantNote)
		}
	}
}

// TestEdgeConstantOutcome: a constant outcome gives null estimates and a
// note from every OLS and mixed analysis (not p-values of rounding noise),
// and so does an outcome the model fits exactly (residuals all 0).
func TestEdgeConstantOutcome(t *testing.T) {
	for _, a := range []Analysis{primaryAnalysis{}, mixedAnalysis{}, changeAnalysis{}} {
		c, _ := edgeComparison(t, func(f *colFrame) {
			for i := range f.yFU {
				f.yFU[i] = 7
				f.yBase[i] = 7
			}
		})
		rows, _ := c.analyse(a)
		allNull(t, rows, "the response is constant")
	}
	// y = 2 + 3·arm + 0.5·y_base + trust effects, exactly.
	c, _ := edgeComparison(t, func(f *colFrame) {
		for i := range f.yFU {
			f.yFU[i] = 2 + 3*f.arm[i] + 0.5*f.yBase[i] + float64(f.stratum[i])
		}
	})
	rows, _ := c.analyse(primaryAnalysis{})
	allNull(t, rows, "fits the response exactly")
	if len(rows) != 2 {
		t.Errorf("%d rows, want cr2 and cr1", len(rows))
	}
}

// TestEdgeInformativeClusters: with the trusts rearranged so that only the
// first trust has teams of both arms (the other intervention teams in one
// trust, the other control teams in another), the arm is identified by a
// single pair of teams once trusts are absorbed: every analysis refuses
// with a note counting 1 and 1 informative teams, although 5 teams per arm
// pass the plain count. With two trusts having both arms it is fitted.
func TestEdgeInformativeClusters(t *testing.T) {
	rearrange := func(keep int) func(f *colFrame) {
		return func(f *colFrame) {
			// Trusts 0 … keep−1 keep their teams; the other intervention
			// teams go to trust keep, the other control teams to keep+1.
			for i := range f.stratum {
				if int(f.stratum[i]) < keep {
					continue
				}
				if f.arm[i] == 1 {
					f.stratum[i] = int32(keep)
				} else {
					f.stratum[i] = int32(keep + 1)
				}
			}
			f.strata = f.strata[:keep+2]
		}
	}
	for _, a := range []Analysis{primaryAnalysis{}, changeAnalysis{}, mixedAnalysis{}} {
		c, f := edgeComparison(t, rearrange(1))
		if one, zero := newTeamGroups(f, f.arm).clustersByLevel(len(f.teams)); one != 5 || zero != 5 {
			t.Fatalf("%d and %d teams per arm, want 5 and 5", one, zero)
		}
		rows, _ := c.analyse(a)
		allNull(t, rows, "too few informative clusters")
		allNull(t, rows, "1 intervention teams and 1 control teams")
	}
	c, _ := edgeComparison(t, rearrange(2))
	rows, _ := c.analyse(primaryAnalysis{})
	if math.IsNaN(rows[0].estimate) {
		t.Errorf("two informative pairs: %q", rows[0].note)
	}
}

// TestEdgeAliasedNamed: a constant baseline is aliased with the intercept;
// as R's lm does, it is dropped and named ("y_baseline", never "column
// 2"), and the estimate and CR2 standard error are those of the model
// without it, y ~ arm + trust, fitted independently.
func TestEdgeAliasedNamed(t *testing.T) {
	c, f := edgeComparison(t, func(f *colFrame) {
		for i := range f.yBase {
			f.yBase[i] = 12
		}
	})
	rows, _ := c.analyse(primaryAnalysis{})
	cr2 := rows[0]
	if cr2.method != "cr2" || !strings.Contains(cr2.note, "aliased and dropped as R's lm does (coefficient NA): y_baseline") || strings.Contains(cr2.note, "column") {
		t.Fatalf("cr2 row: %+v", cr2)
	}
	x := newColDesign(f, TermArm, f.arm, false).dense()
	fit, err := stats.OLS(x, f.yFU, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := fit.CR2(f.clusterInts())
	if err != nil {
		t.Fatal(err)
	}
	want := res.Test(1, 0.95)
	if math.Abs(cr2.estimate-want.Estimate) > 1e-9*math.Abs(want.Estimate) || math.Abs(cr2.stdError-want.StdError) > 1e-9*want.StdError ||
		math.Abs(cr2.df-want.DF) > 1e-8*want.DF {
		t.Errorf("cr2 %v (se %v, df %v); without the baseline %v (se %v, df %v)", cr2.estimate, cr2.stdError, cr2.df, want.Estimate, want.StdError, want.DF)
	}
}

// TestEdgePositivityNote: a covariate level present in one arm only is
// named with the arm that has it; levels present in both arms, or in
// neither, and numeric covariates are not.
func TestEdgePositivityNote(t *testing.T) {
	bal := []balanceRow{
		{covariate: "gender=female", nI: 30, nC: 28},
		{covariate: "gender=other", nI: 0, nC: 2},
		{covariate: "diagnosis_group=psychosis", nI: 4, nC: 0},
		{covariate: "diagnosis_group=unknown", nI: 0, nC: 0},
		{covariate: "y_baseline", nI: 60, nC: 0},
	}
	got := positivityNote(bal, []string{"intervention", "control"})
	want := "positivity: gender=other only in control, diagnosis_group=psychosis only in intervention"
	if got != want {
		t.Errorf("note %q, want %q", got, want)
	}
	if got := positivityNote(bal[:1], []string{"intervention", "control"}); got != "" {
		t.Errorf("balanced levels: note %q", got)
	}
}

// TestEdgeMixedICCRow: the mixed analysis writes its ICC as a number, on a
// row of its own (term icc, effect_size_type icc, estimate null), equal to
// the ICC of the dense REML fit of the same design.
func TestEdgeMixedICCRow(t *testing.T) {
	c, f := edgeComparison(t, nil)
	rows, _ := c.analyse(mixedAnalysis{})
	if len(rows) != 2 || rows[0].term != TermArm || rows[1].term != TermICC {
		t.Fatalf("rows %+v", rows)
	}
	icc := rows[1]
	fit, err := stats.MixedREML(newColDesign(f, TermArm, f.arm, true).dense(), f.yFU, f.clusterInts())
	if err != nil {
		t.Fatal(err)
	}
	if icc.effectSizeType != "icc" || !math.IsNaN(icc.estimate) || math.Abs(icc.effectSize-fit.ICC) > 1e-6 || !(fit.ICC > 0 && fit.ICC < 1) {
		t.Errorf("icc row %+v; dense REML ICC %v", icc, fit.ICC)
	}
	if icc.method != "reml" || icc.nObs != len(f.rows) || icc.nClusters != 10 {
		t.Errorf("icc row: method %s, n %d, clusters %d", icc.method, icc.nObs, icc.nClusters)
	}
}

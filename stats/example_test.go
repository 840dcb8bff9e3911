package stats_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/connectingpeople/cpi/stats"
	"gonum.org/v1/gonum/mat"
)

// A cluster-randomised comparison: four teams, arm at team level, one
// baseline covariate; CR2 standard error with Satterthwaite df.
func ExampleFit_CR2() {
	// Columns: intercept, arm, baseline.
	x := mat.NewDense(12, 3, []float64{
		1, 1, 10, 1, 1, 12, 1, 1, 14,
		1, 1, 11, 1, 1, 13, 1, 1, 15,
		1, 0, 10, 1, 0, 12, 1, 0, 14,
		1, 0, 11, 1, 0, 13, 1, 0, 15,
	})
	y := []float64{12, 15, 16, 12, 14, 18, 10, 11, 14, 11, 12, 13}
	team := []int{1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4}

	fit, err := stats.OLS(x, y, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	cr2, err := fit.CR2(team)
	if err != nil {
		fmt.Println(err)
		return
	}
	ct := cr2.Test(1, 0.95)
	fmt.Printf("arm %.3f, CR2 SE %.3f, df %.2f, p %.3f\n", ct.Estimate, ct.StdError, ct.DF, ct.PValue)
	// Output:
	// arm 2.667, CR2 SE 0.438, df 2.00, p 0.026
}

func ExampleCronbachAlpha() {
	items := [][]float64{
		{4, 3, 5, 2, 4, 3},
		{4, 2, 5, 3, 4, 2},
		{5, 3, 4, 2, 5, 3},
	}
	a, err := stats.CronbachAlpha(items)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("alpha %.3f (Feldt 95%% CI %.3f to %.3f), n = %d\n", a.Alpha, a.CILow, a.CIHigh, a.N)
	// Output:
	// alpha 0.889 (Feldt 95% CI 0.529 to 0.983), n = 6
}

func ExampleWildClusterBootstrap() {
	rng := rand.New(rand.NewPCG(2018, 1))
	const teams, per = 10, 20
	x := mat.NewDense(teams*per, 2, nil)
	y := make([]float64, teams*per)
	team := make([]int, teams*per)
	for i := range y {
		g := i / per
		arm := float64(g % 2)
		x.Set(i, 0, 1)
		x.Set(i, 1, arm)
		y[i] = 1 + 0.8*arm + 0.3*float64(g%3) + rng.NormFloat64()
		team[i] = g
	}
	res, err := stats.WildClusterBootstrap(x, y, nil, team, 1,
		stats.WildConfig{Draws: 999, Level: 0.95}, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("estimate %.2f, p %.3f, CI [%.2f, %.2f]\n", res.Estimate, res.PValue, res.CILow, res.CIHigh)
	// Output:
	// estimate 0.74, p 0.017, CI [0.17, 1.30]
}

// The same comparison from per-team sums: rows are added one at a time
// (from a stream, say) and never kept; the fit equals ExampleFit_CR2's.
func ExampleSuffOLS() {
	rows := [][]float64{
		{1, 1, 10}, {1, 1, 12}, {1, 1, 14},
		{1, 1, 11}, {1, 1, 13}, {1, 1, 15},
		{1, 0, 10}, {1, 0, 12}, {1, 0, 14},
		{1, 0, 11}, {1, 0, 13}, {1, 0, 15},
	}
	y := []float64{12, 15, 16, 12, 14, 18, 10, 11, 14, 11, 12, 13}
	team := []int{0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3} // numbered 0..G−1, see Codes

	sums, err := stats.NewClusterSums(3, false)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, x := range rows {
		if err := sums.Add(team[i], x, y[i], 1); err != nil {
			fmt.Println(err)
			return
		}
	}
	fit, err := stats.SuffOLS(sums)
	if err != nil {
		fmt.Println(err)
		return
	}
	cr2, err := fit.CR2()
	if err != nil {
		fmt.Println(err)
		return
	}
	ct := cr2.Test(1, 0.95)
	fmt.Printf("arm %.3f, CR2 SE %.3f, df %.2f, p %.3f\n", ct.Estimate, ct.StdError, ct.DF, ct.PValue)
	// Output:
	// arm 2.667, CR2 SE 0.438, df 2.00, p 0.026
}

// Multiple imputation as itt_mi does it: impute baseline and follow-up
// jointly with a random team intercept, fit the ANCOVA with CR2 to each
// completed data set and pool by Rubin's rules with the recipe's df.
func ExampleImputeMultilevel() {
	// 10 teams of 12 in 5 trusts, one team per arm in each trust;
	// follow-up missing for one participant in six.
	rng := rand.New(rand.NewPCG(1, 2))
	n := 120
	xImp := mat.NewDense(n, 6, nil) // intercept, arm, 4 trust dummies
	x := mat.NewDense(n, 7, nil)    // intercept, arm, baseline, 4 trust dummies
	base := make([]float64, n)
	fu := make([]float64, n)
	team := make([]int, n)
	for i := 0; i < n; i++ {
		tm := i / 12
		arm, trust := float64(tm%2), tm/2
		team[i] = tm
		xImp.Set(i, 0, 1)
		xImp.Set(i, 1, arm)
		x.Set(i, 0, 1)
		x.Set(i, 1, arm)
		if trust > 0 {
			xImp.Set(i, 1+trust, 1)
			x.Set(i, 2+trust, 1)
		}
		base[i] = 20 + 4*rng.NormFloat64()
		fu[i] = 5 + 2*arm + 0.7*base[i] + 3*rng.NormFloat64()
		if i%6 == 3 {
			fu[i] = math.NaN()
		}
	}
	var fits []*stats.CR2Result
	_, err := stats.ImputeMultilevel(xImp, [][]float64{base, fu}, team, stats.ImputeConfig{M: 20}, rand.New(rand.NewPCG(20271, 1)),
		func(m int, completed [][]float64) error {
			for i := 0; i < n; i++ {
				x.Set(i, 2, completed[0][i])
			}
			fit, err := stats.OLS(x, completed[1], nil)
			if err != nil {
				return err
			}
			cr2, err := fit.CR2(team)
			if err != nil {
				return err
			}
			fits = append(fits, cr2)
			return nil
		})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := stats.PoolCR2(fits, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	ct := p.Test(0.95)
	fmt.Printf("m %d, arm %.2f, SE %.2f, df %.2f, fmi %.3f\n", p.M, ct.Estimate, ct.StdError, ct.DF, p.FMI)
	// Output:
	// m 20, arm 1.89, SE 0.51, df 2.38, fmi 0.184
}

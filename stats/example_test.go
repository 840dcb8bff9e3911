package stats_test

import (
	"fmt"
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

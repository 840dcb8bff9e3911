package stats

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// alphaAccumulate adds rows[r] for every r in order.
func alphaAccumulate(k int, rows [][]float64) *AlphaAccumulator {
	a := NewAlphaAccumulator(k)
	for _, r := range rows {
		a.Add(r)
	}
	return a
}

// alphaColumns turns rows into CronbachAlpha's item columns.
func alphaColumns(k int, rows [][]float64) [][]float64 {
	cols := make([][]float64, k)
	for _, r := range rows {
		for i, v := range r {
			cols[i] = append(cols[i], v)
		}
	}
	return cols
}

// The accumulator against psych::alpha on testdata/reference/alpha.csv
// (the numbers TestAlphaAgainstR checks CronbachAlpha against).
func TestAlphaAccumulatorAgainstR(t *testing.T) {
	ref := loadReference(t)
	hdr, recs := readCSV(t, "alpha.csv")
	a := NewAlphaAccumulator(len(hdr))
	row := make([]float64, len(hdr))
	for _, r := range recs {
		for i := range hdr {
			row[i] = atof(t, r[i])
		}
		a.Add(row) // Add copies what it needs: row is reused
	}
	got, err := a.Result(0.95)
	if err != nil {
		t.Fatal(err)
	}
	if got.N != ref.Alpha.N || got.Items != ref.Alpha.Items || a.N() != 240 || a.Items() != 7 {
		t.Errorf("n = %d, items = %d; R: %d, %d", got.N, got.Items, ref.Alpha.N, ref.Alpha.Items)
	}
	checkRel(t, "alpha", got.Alpha, ref.Alpha.Alpha, tolEst)
	checkRel(t, "alpha ci_low_feldt", got.CILow, ref.Alpha.CILow, tolDF)
	checkRel(t, "alpha ci_high_feldt", got.CIHigh, ref.Alpha.CIHigh, tolDF)
	for i, name := range hdr {
		checkRel(t, "r.drop "+name, got.ItemRestCorr[i], ref.Alpha.ItemTotalDrop[name], tolEst)
	}
	// Another level: the 90% interval lies inside the 95% one.
	n90, err := a.Result(0.90)
	if err != nil {
		t.Fatal(err)
	}
	if !(n90.Alpha == got.Alpha && n90.CILow > got.CILow && n90.CIHigh < got.CIHigh) {
		t.Errorf("90%% interval %v..%v not inside the 95%% one %v..%v", n90.CILow, n90.CIHigh, got.CILow, got.CIHigh)
	}
}

// The accumulator against CronbachAlpha (two-pass, from the columns) on
// random scales: small integer codes as in the instruments (0/1, 0–4, 1–5,
// −2…2, with NaN for missing answers), and continuous items with a mean far
// from zero (where a one-pass sum of squares without the shift would lose
// most of its digits).
func TestAlphaAccumulatorMatchesCronbachAlpha(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	type scale struct {
		k, n     int
		lo, hi   int
		missing  float64 // probability of a NaN
		offset   float64 // continuous: items offset + N(trait, 1)
		continuo bool
	}
	scales := []scale{
		{k: 27, n: 3000, lo: 0, hi: 1, missing: 0.01},
		{k: 7, n: 500, lo: 1, hi: 5, missing: 0.05},
		{k: 15, n: 2000, lo: 0, hi: 4},
		{k: 3, n: 3, lo: 1, hi: 3},
		{k: 2, n: 50, lo: -2, hi: 2},
		{k: 5, n: 1000, continuo: true, offset: 1e6},
		{k: 4, n: 200, continuo: true, offset: -3.5},
	}
	for si, sc := range scales {
		rows := make([][]float64, sc.n)
		for i := range rows {
			trait := r.NormFloat64()
			rows[i] = make([]float64, sc.k)
			for j := range rows[i] {
				var v float64
				if sc.continuo {
					v = sc.offset + trait + r.NormFloat64()
				} else {
					// Correlated codes: the trait shifts every item.
					x := float64(sc.lo) + (float64(sc.hi-sc.lo)+1)*(0.5+0.3*trait+0.25*r.NormFloat64())
					v = math.Max(float64(sc.lo), math.Min(float64(sc.hi), math.Floor(x)))
				}
				if r.Float64() < sc.missing {
					v = math.NaN()
				}
				rows[i][j] = v
			}
		}
		want, err := CronbachAlpha(alphaColumns(sc.k, rows))
		if err != nil {
			t.Fatalf("scale %d: %v", si, err)
		}
		a := alphaAccumulate(sc.k, rows)
		got, err := a.Result(0.95)
		if err != nil {
			t.Fatalf("scale %d: %v", si, err)
		}
		tol := 1e-12
		if sc.continuo {
			tol = 1e-9
		}
		if got.N != want.N || got.Items != want.Items {
			t.Errorf("scale %d: n %d items %d, CronbachAlpha %d %d", si, got.N, got.Items, want.N, want.Items)
		}
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"alpha", got.Alpha, want.Alpha}, {"ci_low", got.CILow, want.CILow}, {"ci_high", got.CIHigh, want.CIHigh}} {
			if !closeRel(c.got, c.want, tol) {
				t.Errorf("scale %d: %s %.17g, CronbachAlpha %.17g", si, c.name, c.got, c.want)
			}
		}
		for i := range got.ItemRestCorr {
			if !closeRel(got.ItemRestCorr[i], want.ItemRestCorr[i], tol) {
				t.Errorf("scale %d item %d: r.drop %.17g, CronbachAlpha %.17g", si, i, got.ItemRestCorr[i], want.ItemRestCorr[i])
			}
		}
		if sc.continuo {
			continue
		}
		// Integer codes: every sum is exact, so the rows' order and
		// splitting the rows over merged accumulators change nothing, to
		// the bit.
		perm := r.Perm(len(rows))
		shuffled := make([][]float64, len(rows))
		for i, p := range perm {
			shuffled[i] = rows[p]
		}
		a2 := alphaAccumulate(sc.k, shuffled)
		cut1, cut2 := len(rows)/3, 2*len(rows)/3
		merged := NewAlphaAccumulator(sc.k)
		for _, part := range [][][]float64{nil, rows[:cut1], rows[cut1:cut2], nil, rows[cut2:]} {
			if err := merged.Merge(alphaAccumulate(sc.k, part)); err != nil {
				t.Fatal(err)
			}
		}
		for name, b := range map[string]*AlphaAccumulator{"shuffled": a2, "merged": merged} {
			res, err := b.Result(0.95)
			if err != nil {
				t.Fatalf("scale %d %s: %v", si, name, err)
			}
			same := res.Alpha == got.Alpha && res.CILow == got.CILow && res.CIHigh == got.CIHigh && res.N == got.N
			for i := range res.ItemRestCorr {
				same = same && res.ItemRestCorr[i] == got.ItemRestCorr[i]
			}
			if !same {
				t.Errorf("scale %d %s: %+v, in order %+v", si, name, res, got)
			}
		}
	}
}

// alphaExact is alpha of integer-coded rows in exact rational arithmetic:
// k/(k−1) · (C_TT − Σ C_ii) / C_TT with C_ij = n·Σx_i x_j − Σx_i·Σx_j.
func alphaExact(k int, rows [][]float64) float64 {
	n := big.NewInt(int64(len(rows)))
	sum := make([]*big.Int, k)
	cross := make([][]*big.Int, k)
	for i := range sum {
		sum[i] = new(big.Int)
		cross[i] = make([]*big.Int, k)
		for j := range cross[i] {
			cross[i][j] = new(big.Int)
		}
	}
	for _, r := range rows {
		for i := range r {
			sum[i].Add(sum[i], big.NewInt(int64(r[i])))
			for j := range r {
				cross[i][j].Add(cross[i][j], big.NewInt(int64(r[i])*int64(r[j])))
			}
		}
	}
	cTT, cii := new(big.Int), new(big.Int)
	for i := 0; i < k; i++ {
		for j := 0; j < k; j++ {
			c := new(big.Int).Mul(n, cross[i][j])
			c.Sub(c, new(big.Int).Mul(sum[i], sum[j]))
			cTT.Add(cTT, c)
			if i == j {
				cii.Add(cii, c)
			}
		}
	}
	a := new(big.Rat).SetFrac(new(big.Int).Sub(cTT, cii), cTT)
	a.Mul(a, big.NewRat(int64(k), int64(k-1)))
	f, _ := a.Float64()
	return f
}

// With integer codes the accumulator's alpha is within a few ulps of the
// exact value, also when alpha is near zero (independent items), where
// 1 − Σs²/s_T² cancels most digits.
func TestAlphaAccumulatorExact(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for trial := 0; trial < 40; trial++ {
		k := 2 + r.IntN(26)
		n := 3 + r.IntN(5000)
		hi := 1 + r.IntN(4)
		dep := r.Float64() // 0: independent items
		rows := make([][]float64, n)
		for i := range rows {
			trait := r.IntN(hi + 1)
			rows[i] = make([]float64, k)
			for j := range rows[i] {
				if r.Float64() < dep {
					rows[i][j] = float64(trait)
				} else {
					rows[i][j] = float64(r.IntN(hi + 1))
				}
			}
		}
		exact := alphaExact(k, rows)
		got, err := alphaAccumulate(k, rows).Result(0.95)
		if err != nil {
			continue // a constant total (tiny n)
		}
		ulp := math.Abs(math.Nextafter(exact, math.Inf(1)) - exact)
		if math.Abs(got.Alpha-exact) > 4*ulp {
			t.Errorf("trial %d (k %d, n %d): alpha %.17g, exact %.17g (%.1f ulp)", trial, k, n, got.Alpha, exact, math.Abs(got.Alpha-exact)/ulp)
		}
	}
}

// A scale of 0/1 items where one item never varies: alpha is defined, the
// constant item's correlation is NaN (as CronbachAlpha gives it).
func TestAlphaAccumulatorConstantItem(t *testing.T) {
	rows := [][]float64{{1, 0, 1}, {1, 1, 1}, {1, 1, 0}, {1, 0, 0}, {1, 1, 1}}
	want, err := CronbachAlpha(alphaColumns(3, rows))
	if err != nil {
		t.Fatal(err)
	}
	got, err := alphaAccumulate(3, rows).Result(0.95)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(got.ItemRestCorr[0]) || !math.IsNaN(want.ItemRestCorr[0]) {
		t.Errorf("constant item: r.drop %v, CronbachAlpha %v; want NaN", got.ItemRestCorr[0], want.ItemRestCorr[0])
	}
	// By hand: items 2 and 3 have variance 0.3 each (n−1 = 4), item 1 none;
	// the total 2,3,2,1,3 has variance 0.7: α = 3/2 · (1 − 0.6/0.7) = 3/14.
	// (CronbachAlpha's 1 − 6/7 loses a few bits to cancellation.)
	if !closeRel(got.Alpha, 3.0/14, 1e-15) || !closeRel(want.Alpha, 3.0/14, 1e-14) {
		t.Errorf("alpha %v, CronbachAlpha %v, by hand 3/14", got.Alpha, want.Alpha)
	}
}

func TestAlphaAccumulatorErrors(t *testing.T) {
	three := [][]float64{{1, 2}, {2, 3}, {3, 3}}
	if _, err := alphaAccumulate(1, [][]float64{{1}, {2}, {3}}).Result(0.95); err == nil {
		t.Error("one item: no error")
	}
	if _, err := alphaAccumulate(2, three[:2]).Result(0.95); err == nil {
		t.Error("two cases: no error")
	}
	// NaN rows do not count as cases.
	a := alphaAccumulate(2, append([][]float64{{math.NaN(), 1}, {1, math.NaN()}}, three[:2]...))
	if _, err := a.Result(0.95); err == nil || a.N() != 2 {
		t.Errorf("two complete cases of four rows: n %d, err %v", a.N(), err)
	}
	// Items that move against each other: the total is constant.
	if _, err := alphaAccumulate(2, [][]float64{{1, 3}, {2, 2}, {3, 1}}).Result(0.95); err == nil {
		t.Error("constant total: no error")
	}
	for _, level := range []float64{0, 1, -0.5, math.NaN()} {
		if _, err := alphaAccumulate(2, three).Result(level); err == nil {
			t.Errorf("level %v: no error", level)
		}
	}
	if err := NewAlphaAccumulator(2).Merge(NewAlphaAccumulator(3)); err == nil {
		t.Error("merging 3 items into 2: no error")
	}
	if _, err := NewAlphaAccumulator(0).Result(0.95); err == nil {
		t.Error("no items: no error")
	}
	defer func() {
		if recover() == nil {
			t.Error("Add of a row of the wrong length did not panic")
		}
	}()
	NewAlphaAccumulator(2).Add([]float64{1, 2, 3})
}

package stats

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// groupedRows simulates a trial's design [intercept, arm, baseline, trust
// dummies, dose] over n rows in g teams (trust = team/2): every column but
// the baseline (column 2) is constant within a team, except that with
// split the rows of team 3 are split between two trusts (two groups in
// one cluster). dose is 0 or 1, or 0.3·team when odd (a constant not at 0
// or 1).
func groupedRows(n, g int, split, odd bool, seed uint64) (rows [][]float64, y, w []float64, cluster []int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	trusts := (g + 1) / 2
	k := 3 + trusts - 1 + 1
	u := make([]float64, g)
	for c := range u {
		u[c] = rng.NormFloat64()
	}
	for i := 0; i < n; i++ {
		c := int(float64(g) * math.Pow(rng.Float64(), 1.3))
		tr := c / 2
		if split && c == 3 && rng.IntN(3) == 0 {
			tr = 0
		}
		r := make([]float64, k)
		r[0], r[1], r[2] = 1, float64(c%2), 150+30*rng.NormFloat64()
		if tr > 0 {
			r[2+tr] = 1
		}
		r[k-1] = float64(c % 3 % 2)
		if odd {
			r[k-1] = 0.3 * float64(c)
		}
		rows = append(rows, r)
		y = append(y, 20+0.4*r[1]+0.9*r[2]+u[c]+3*rng.NormFloat64())
		w = append(w, 0.5+rng.Float64())
		cluster = append(cluster, c)
	}
	return rows, y, w, cluster
}

// groupsOf numbers the rows' groups (cluster and every column but vary) in
// order of first appearance.
func groupsOf(rows [][]float64, cluster []int, vary int) (group []int32, gcl []int, first []int) {
	index := map[string]int32{}
	for i, r := range rows {
		key := []byte{byte(cluster[i])}
		for j, v := range r {
			if j != vary {
				key = append(key, byte(v*10))
			}
		}
		gi, ok := index[string(key)]
		if !ok {
			gi = int32(len(gcl))
			index[string(key)] = gi
			gcl = append(gcl, cluster[i])
			first = append(first, i)
		}
		group = append(group, gi)
	}
	return group, gcl, first
}

// TestAddGroupedMatchesAdd: sums from per-group moments equal Add of every
// row — to the bit for teams that are one group each with constant
// columns at 0 or 1, to 1e-12 otherwise — and so do the fits (SuffOLS,
// CR1, CR2 with Satterthwaite df, the wild bootstrap, SuffMixedREML) to
// 1e-10, weighted and unweighted, with and without a varying column.
func TestAddGroupedMatchesAdd(t *testing.T) {
	for _, tc := range []struct {
		name              string
		split, odd, noVar bool
		weighted          bool
	}{
		{name: "teams"},
		{name: "teams weighted", weighted: true},
		{name: "split odd", split: true, odd: true},
		{name: "split odd weighted", split: true, odd: true, weighted: true},
		{name: "no varying column", noVar: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, y, w, cluster := groupedRows(5000, 10, tc.split, tc.odd, 3)
			k := len(rows[0])
			vary := 2
			if tc.noVar {
				for i, r := range rows {
					r[2] = float64(cluster[i] * cluster[i] % 7) // constant in a team, not 0/1
				}
				vary = -1
			}
			var ww []float64
			if tc.weighted {
				ww = w
			}
			a, _ := NewClusterSums(k, tc.weighted)
			for i, r := range rows {
				if err := a.Add(cluster[i], r, y[i], weightAt(ww, i)); err != nil {
					t.Fatal(err)
				}
			}
			group, gcl, first := groupsOf(rows, cluster, vary)
			v := make([]float64, len(rows))
			for i, r := range rows {
				v[i] = r[2]
			}
			b, _ := NewClusterSums(k, tc.weighted)
			err := b.AddGrouped(group, gcl, func(g int, buf []float64) { copy(buf, rows[first[g]]) }, vary, v, y, ww)
			if err != nil {
				t.Fatal(err)
			}
			if a.N() != b.N() {
				t.Fatalf("rows %d, want %d", b.N(), a.N())
			}
			exact := !tc.split && !tc.odd && !tc.noVar
			tol := 1e-12
			if exact {
				tol = 0
			}
			for j := range a.constant {
				if a.constant[j] != b.constant[j] || a.first[j] != b.first[j] {
					t.Errorf("column %d: constant %v first %v, want %v %v", j, b.constant[j], b.first[j], a.constant[j], a.first[j])
				}
			}
			for c, ac := range a.cl {
				bc := b.cl[c]
				ac.flush()
				bc.flush()
				if ac.n != bc.n {
					t.Errorf("cluster %d: n %d, want %d", c, bc.n, ac.n)
				}
				cmp := func(what string, got, want []float64) {
					for i := range want {
						if e := relErr(got[i], want[i]); e > tol && math.Abs(got[i]-want[i]) > 1e-300 {
							t.Errorf("cluster %d %s[%d]: %v, want %v (rel %.2g)", c, what, i, got[i], want[i], e)
						}
					}
				}
				cmp("zz", bc.zz, ac.zz)
				cmp("sz", bc.sz, ac.sz)
				cmp("sw", []float64{bc.sw, bc.sw2}, []float64{ac.sw, ac.sw2})
				if tc.weighted {
					cmp("zwz", bc.zwz, ac.zwz)
					cmp("zw2z", bc.zw2z, ac.zw2z)
					cmp("swz", bc.swz, ac.swz)
					cmp("sw2z", bc.sw2z, ac.sw2z)
				}
			}
			fa, err := SuffOLS(a)
			if err != nil {
				t.Fatal(err)
			}
			fb, err := SuffOLS(b)
			if err != nil {
				t.Fatal(err)
			}
			for j := range fa.Coef {
				checkClose(t, "coef", fb.Coef[j], fa.Coef[j], 1e-10)
			}
			checkClose(t, "r2", fb.RSquared, fa.RSquared, 1e-10)
			t1a, err := fa.CR1Test(1, 0.95)
			if err != nil {
				t.Fatal(err)
			}
			t1b, _ := fb.CR1Test(1, 0.95)
			checkClose(t, "cr1 se", t1b.StdError, t1a.StdError, 1e-10)
			ca, err := fa.CR2()
			if err != nil {
				t.Fatal(err)
			}
			cb, err := fb.CR2()
			if err != nil {
				t.Fatal(err)
			}
			for j := range fa.Coef {
				ta, tb := ca.Test(j, 0.95), cb.Test(j, 0.95)
				checkClose(t, "cr2 se", tb.StdError, ta.StdError, 1e-10)
				checkClose(t, "cr2 df", tb.DF, ta.DF, 1e-10)
			}
			cfg := WildConfig{Draws: 999, Level: 0.95}
			wa, err := SuffWildClusterBootstrap(a, 1, cfg, rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			wb, err := SuffWildClusterBootstrap(b, 1, cfg, rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, "wild p", wb.PValue, wa.PValue, 1e-10)
			checkClose(t, "wild ci low", wb.CILow, wa.CILow, 1e-10)
			if !tc.weighted && !tc.split {
				ma, err := SuffMixedREML(a)
				if err != nil {
					t.Fatal(err)
				}
				mb, err := SuffMixedREML(b)
				if err != nil {
					t.Fatal(err)
				}
				for j := range ma.Coef {
					checkClose(t, "reml coef", mb.Coef[j], ma.Coef[j], 1e-10)
					checkClose(t, "reml se", mb.StdError[j], ma.StdError[j], 1e-10)
				}
				checkClose(t, "icc", mb.ICC, ma.ICC, 1e-10)
			}
		})
	}
}

// TestAddGroupedErrors: a bad value anywhere adds nothing.
func TestAddGroupedErrors(t *testing.T) {
	row := func(g int, buf []float64) { buf[0], buf[1] = 1, float64(g) }
	group := []int32{0, 1, 1}
	v := []float64{1, 2, 3}
	for _, bad := range []struct {
		name    string
		group   []int32
		cluster []int
		v, y, w []float64
	}{
		{"nan y", group, []int{0, 1}, v, []float64{1, math.NaN(), 2}, []float64{1, 1, 1}},
		{"inf v", group, []int{0, 1}, []float64{1, math.Inf(1), 2}, []float64{1, 2, 3}, []float64{1, 1, 1}},
		{"zero weight", group, []int{0, 1}, v, []float64{1, 2, 3}, []float64{1, 0, 1}},
		{"bad group", []int32{0, 2, 1}, []int{0, 1}, v, []float64{1, 2, 3}, []float64{1, 1, 1}},
		{"short group", group[:2], []int{0, 1}, v, []float64{1, 2, 3}, []float64{1, 1, 1}},
		{"bad cluster", group, []int{0, -1}, v, []float64{1, 2, 3}, []float64{1, 1, 1}},
		{"short v", group, []int{0, 1}, v[:2], []float64{1, 2, 3}, []float64{1, 1, 1}},
	} {
		s, _ := NewClusterSums(3, true)
		if err := s.AddGrouped(bad.group, bad.cluster, row, 2, bad.v, bad.y, bad.w); err == nil {
			t.Errorf("%s: no error", bad.name)
		}
		if s.N() != 0 || len(s.cl) != 0 {
			t.Errorf("%s: %d rows added", bad.name, s.N())
		}
	}
}

// BenchmarkAddGrouped and BenchmarkAddGroupedRows accumulate the same
// 1,000,000 rows (10 teams, K = 9, a varying baseline) from per-team
// moments and row by row.
func BenchmarkAddGrouped(b *testing.B) {
	benchGrouped(b, true)
}

func BenchmarkAddGroupedRows(b *testing.B) {
	benchGrouped(b, false)
}

func benchGrouped(b *testing.B, grouped bool) {
	for _, weighted := range []bool{false, true} {
		name := "unweighted"
		if weighted {
			name = "weighted"
		}
		b.Run(name, func(b *testing.B) {
			rows, y, w, cluster := groupedRows(1_000_000, 10, false, false, 5)
			group, gcl, first := groupsOf(rows, cluster, 2)
			v := make([]float64, len(rows))
			for i, r := range rows {
				v[i] = r[2]
			}
			k := len(rows[0])
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				s, _ := NewClusterSums(k, weighted)
				var err error
				if grouped {
					err = s.AddGrouped(group, gcl, func(g int, buf []float64) { copy(buf, rows[first[g]]) }, 2, v, y, w)
				} else {
					for i, r := range rows {
						if err = s.Add(cluster[i], r, y[i], w[i]); err != nil {
							break
						}
					}
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestGroupMomentsShared: moments taken once (NewGroupMoments) and added to
// the sums of two designs constant over the same groups — the trial's
// [intercept, arm, baseline, trusts, dose] and a per-trust layout with the
// baseline last — are AddGrouped's sums of each, bit for bit (every
// cluster's cross-products, counts, constant columns and shift), weighted
// and not, and with a baseline of 1 in row 0 (shifted by 0). Moments that
// do not fit the sums are an error that adds nothing.
func TestGroupMomentsShared(t *testing.T) {
	for _, tc := range []struct {
		name     string
		weighted bool
		one      bool
	}{{"unweighted", false, false}, {"weighted", true, false}, {"baseline 1 first", false, true}} {
		rows, y, w, cluster := groupedRows(3000, 10, true, false, 11)
		if tc.one {
			rows[0][2] = 1
		}
		group, gcl, first := groupsOf(rows, cluster, 2)
		v := make([]float64, len(rows))
		for i, r := range rows {
			v[i] = r[2]
		}
		var ww []float64
		if tc.weighted {
			ww = w
		}
		k := len(rows[0])
		// The second layout: the columns reversed, so the baseline is
		// column k−3 and the intercept last.
		rev := func(g int, buf []float64) {
			for j, x := range rows[first[g]] {
				buf[k-1-j] = x
			}
		}
		m, err := NewGroupMoments(group, len(gcl), v, y, ww)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []struct {
			row  func(g int, buf []float64)
			vary int
		}{{func(g int, buf []float64) { copy(buf, rows[first[g]]) }, 2}, {rev, k - 3}} {
			want, _ := NewClusterSums(k, tc.weighted)
			if err := want.AddGrouped(group, gcl, d.row, d.vary, v, y, ww); err != nil {
				t.Fatal(err)
			}
			got, _ := NewClusterSums(k, tc.weighted)
			if err := got.AddMoments(m, gcl, d.row, d.vary); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s, varying column %d: the moments' sums differ from AddGrouped's", tc.name, d.vary)
			}
		}
	}
	rows, y, w, cluster := groupedRows(500, 6, false, false, 12)
	group, gcl, first := groupsOf(rows, cluster, 2)
	v := make([]float64, len(rows))
	for i, r := range rows {
		v[i] = r[2]
	}
	row := func(g int, buf []float64) { copy(buf, rows[first[g]]) }
	k := len(rows[0])
	m, err := NewGroupMoments(group, len(gcl), v, y, nil)
	if err != nil {
		t.Fatal(err)
	}
	shifted, _ := NewClusterSums(k, false)
	if err := shifted.Add(0, rows[1], y[1]+1, 1); err != nil {
		t.Fatal(err)
	}
	weighted, _ := NewClusterSums(k, true)
	for _, bad := range []struct {
		name    string
		s       *ClusterSums
		cluster []int
		vary    int
	}{
		{"other shift", shifted, gcl, 2},
		{"weighted sums", weighted, gcl, 2},
		{"no varying column", nil, gcl, -1},
		{"varying column out of range", nil, gcl, k},
		{"clusters", nil, gcl[1:], 2},
		{"bad cluster", nil, append([]int{-1}, gcl[1:]...), 2},
	} {
		s := bad.s
		if s == nil {
			s, _ = NewClusterSums(k, false)
		}
		n := s.N()
		if err := s.AddMoments(m, bad.cluster, row, bad.vary); err == nil || s.N() != n {
			t.Errorf("%s: error %v, %d rows added", bad.name, err, s.N()-n)
		}
	}
	if _, err := NewGroupMoments(group, len(gcl), v, y, w[:3]); err == nil {
		t.Error("short weights: no error")
	}
	bad := append([]int32(nil), group...)
	bad[7] = int32(len(gcl))
	if _, err := NewGroupMoments(bad, len(gcl), v, y, nil); err == nil {
		t.Error("a group out of range: no error")
	}
}

package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// denseCR2 is a direct transcription of clubSandwich's CR2 and
// Satterthwaite computations (vcov_CR with target = I, get_S_array /
// get_P_array), forming the n_g×n_g and N-dimensional objects explicitly. It
// is only for checking the low-rank implementation on small data.
func denseCR2(x *mat.Dense, y, w []float64, cl []int) (vc *mat.Dense, df []float64) {
	n, k := x.Dims()
	if w == nil {
		w = ones(n)
	}
	W := mat.NewDiagDense(n, w)
	var xtw, xtwx mat.Dense
	xtw.Mul(x.T(), W)
	xtwx.Mul(&xtw, x)
	var M mat.Dense
	if err := M.Inverse(&xtwx); err != nil {
		panic(err)
	}
	var beta, xtwy mat.VecDense
	xtwy.MulVec(&xtw, mat.NewVecDense(n, y))
	beta.MulVec(&M, &xtwy)
	var fitted mat.VecDense
	fitted.MulVec(x, &beta)
	e := make([]float64, n)
	for i := range e {
		e[i] = y[i] - fitted.AtVec(i)
	}
	// H = X M X'W, S = X'W²X.
	var H, tmp mat.Dense
	tmp.Mul(x, &M)
	H.Mul(&tmp, &xtw)
	var S mat.Dense
	var w2 mat.Dense
	w2.Mul(W, W)
	var xtw2 mat.Dense
	xtw2.Mul(x.T(), &w2)
	S.Mul(&xtw2, x)
	var MSM mat.Dense
	MSM.Mul(&M, &S)
	MSM.Mul(&MSM, &M)

	codes, G, _ := groupIndex(cl)
	rows := make([][]int, G)
	for i, c := range codes {
		rows[c] = append(rows[c], i)
	}
	A := make([]*mat.Dense, G)
	meat := mat.NewDense(k, k, nil)
	for g, r := range rows {
		ng := len(r)
		Gg := mat.NewDense(ng, ng, nil)
		for a, i := range r {
			for b, j := range r {
				v := -H.At(i, j) - H.At(j, i)
				for p := 0; p < k; p++ {
					for q := 0; q < k; q++ {
						v += x.At(i, p) * MSM.At(p, q) * x.At(j, q)
					}
				}
				if a == b {
					v++
				}
				Gg.Set(a, b, v)
			}
		}
		var es mat.EigenSym
		if !es.Factorize(mat.NewSymDense(ng, mat.DenseCopyOf(Gg).RawMatrix().Data), true) {
			panic("eigen")
		}
		vals := es.Values(nil)
		var V mat.Dense
		es.VectorsTo(&V)
		A[g] = mat.NewDense(ng, ng, nil)
		for a := 0; a < ng; a++ {
			for b := 0; b < ng; b++ {
				s := 0.0
				for l, lv := range vals {
					if lv > 1e-12 {
						s += V.At(a, l) * V.At(b, l) / math.Sqrt(lv)
					}
				}
				A[g].Set(a, b, s)
			}
		}
		// u_g = X_g'W_g A_g e_g.
		u := make([]float64, k)
		for a, i := range r {
			ae := 0.0
			for b, j := range r {
				ae += A[g].At(a, b) * e[j]
			}
			for p := 0; p < k; p++ {
				u[p] += x.At(i, p) * w[i] * ae
			}
		}
		for p := 0; p < k; p++ {
			for q := 0; q < k; q++ {
				meat.Set(p, q, meat.At(p, q)+u[p]*u[q])
			}
		}
	}
	vc = mat.NewDense(k, k, nil)
	vc.Mul(&M, meat)
	vc.Mul(vc, &M)

	df = make([]float64, k)
	for c := 0; c < k; c++ {
		// s_g (N-vector) = (I − H)'_{·,g} p_g, p_g = A_g W_g X_g M e_c.
		svec := make([][]float64, G)
		for g, r := range rows {
			ng := len(r)
			v := make([]float64, ng)
			for a, i := range r {
				for p := 0; p < k; p++ {
					v[a] += w[i] * x.At(i, p) * M.At(p, c)
				}
			}
			pg := make([]float64, ng)
			for a := range r {
				for b := range r {
					pg[a] += A[g].At(a, b) * v[b]
				}
			}
			s := make([]float64, n)
			for jj := 0; jj < n; jj++ {
				for a, i := range r {
					ih := -H.At(i, jj)
					if i == jj {
						ih++
					}
					s[jj] += ih * pg[a]
				}
			}
			svec[g] = s
		}
		var tr, ss float64
		for g := 0; g < G; g++ {
			for h := 0; h < G; h++ {
				p := 0.0
				for i := 0; i < n; i++ {
					p += svec[g][i] * svec[h][i]
				}
				if g == h {
					tr += p
				}
				ss += p * p
			}
		}
		df[c] = tr * tr / ss
	}
	return vc, df
}

// TestCR2LowRankMatchesDense checks the low-rank CR2 against the dense
// transcription on small, awkward designs: tiny clusters (n_g < 2K), a
// cluster-specific dummy (a zero eigenvalue in G_g, handled by the
// pseudo-inverse), weighted and unweighted.
func TestCR2LowRankMatchesDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sizes := []int{3, 7, 2, 12, 5, 9, 4, 6}
	var n int
	for _, s := range sizes {
		n += s
	}
	x := mat.NewDense(n, 5, nil)
	y := make([]float64, n)
	w := make([]float64, n)
	cl := make([]int, n)
	i := 0
	for g, s := range sizes {
		for r := 0; r < s; r++ {
			x.Set(i, 0, 1)
			x.Set(i, 1, float64(g%2))
			x.Set(i, 2, rng.NormFloat64())
			x.Set(i, 3, rng.NormFloat64()+float64(g))
			if g == 3 {
				x.Set(i, 4, 1) // a dummy for cluster 3 alone
			}
			y[i] = rng.NormFloat64() + x.At(i, 2)
			w[i] = 0.3 + 2*rng.Float64()
			cl[i] = 100 + g*7 // arbitrary labels
			i++
		}
	}
	for _, wt := range [][]float64{nil, w} {
		fit, err := OLS(x, y, wt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fit.CR2(cl)
		if err != nil {
			t.Fatal(err)
		}
		wantV, wantDF := denseCR2(x, y, wt, cl)
		for a := 0; a < 5; a++ {
			for b := 0; b < 5; b++ {
				if !closeRel(got.VCov.At(a, b), wantV.At(a, b), 1e-9) && math.Abs(got.VCov.At(a, b)-wantV.At(a, b)) > 1e-12 {
					t.Errorf("weighted=%v V[%d,%d] = %v, dense %v", wt != nil, a, b, got.VCov.At(a, b), wantV.At(a, b))
				}
			}
			if !closeRel(got.DF[a], wantDF[a], 1e-8) {
				t.Errorf("weighted=%v df[%d] = %v, dense %v", wt != nil, a, got.DF[a], wantDF[a])
			}
		}
	}
}

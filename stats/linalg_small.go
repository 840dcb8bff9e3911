package stats

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"
)

// Small dense helpers for the imputer's Gibbs sampler: row-major n×n
// matrices in plain slices, so that an iteration allocates nothing.

// cholLower overwrites the lower triangle of the n×n symmetric matrix a
// with its Cholesky factor L (a = LL') and zeroes the upper triangle. It
// returns the index of the first non-positive pivot, or −1 on success.
func cholLower(a []float64, n int) int {
	for j := 0; j < n; j++ {
		s := a[j*n+j]
		for k := 0; k < j; k++ {
			s -= a[j*n+k] * a[j*n+k]
		}
		if !(s > 0) {
			return j
		}
		d := math.Sqrt(s)
		a[j*n+j] = d
		for i := j + 1; i < n; i++ {
			t := a[i*n+j]
			for k := 0; k < j; k++ {
				t -= a[i*n+k] * a[j*n+k]
			}
			a[i*n+j] = t / d
		}
		for k := j + 1; k < n; k++ {
			a[j*n+k] = 0
		}
	}
	return -1
}

// cholSolve solves LL'x = b in place (b becomes x).
func cholSolve(l []float64, n int, b []float64) {
	for i := 0; i < n; i++ {
		s := b[i]
		for k := 0; k < i; k++ {
			s -= l[i*n+k] * b[k]
		}
		b[i] = s / l[i*n+i]
	}
	lowerTransSolve(l, n, b)
}

// lowerTransSolve solves L'x = b in place.
func lowerTransSolve(l []float64, n int, b []float64) {
	for i := n - 1; i >= 0; i-- {
		s := b[i]
		for k := i + 1; k < n; k++ {
			s -= l[k*n+i] * b[k]
		}
		b[i] = s / l[i*n+i]
	}
}

// invSPD writes the inverse of the n×n symmetric positive definite a into
// dst (a is left unchanged; work has n*n+n elements). It reports false when
// a is not positive definite.
func invSPD(dst, a []float64, n int, work []float64) bool {
	l := work[:n*n]
	copy(l, a[:n*n])
	if cholLower(l, n) >= 0 {
		return false
	}
	e := work[n*n : n*n+n]
	for j := 0; j < n; j++ {
		for i := range e {
			e[i] = 0
		}
		e[j] = 1
		cholSolve(l, n, e)
		for i := 0; i < n; i++ {
			dst[i*n+j] = e[i]
		}
	}
	for i := 0; i < n; i++ { // exact symmetry
		for j := i + 1; j < n; j++ {
			v := (dst[i*n+j] + dst[j*n+i]) / 2
			dst[i*n+j], dst[j*n+i] = v, v
		}
	}
	return true
}

// drawInvWishart draws Σ ~ W⁻¹(ν, S) (density ∝ |Σ|^{−(ν+d+1)/2}
// exp(−tr(SΣ⁻¹)/2)) into dst by Bartlett's decomposition of Σ⁻¹ ~ W(ν, S⁻¹):
// with S⁻¹ = LL' and A lower triangular, A_ii = √χ²(ν − i), A_ij ~ N(0, 1)
// below the diagonal, Σ⁻¹ = LAA'L'. work has 4d²+d elements. It reports
// false when S is not positive definite.
func drawInvWishart(dst []float64, nu float64, s []float64, d int, rng *rand.Rand, work []float64) bool {
	sinv := work[:d*d]
	if !invSPD(sinv, s, d, work[d*d:2*d*d+d]) {
		return false
	}
	l := sinv
	if cholLower(l, d) >= 0 {
		return false
	}
	a := work[2*d*d+d : 3*d*d+d]
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			switch {
			case j < i:
				a[i*d+j] = rng.NormFloat64()
			case j == i:
				a[i*d+j] = math.Sqrt(distuv.Gamma{Alpha: (nu - float64(i)) / 2, Beta: 0.5, Src: rng}.Rand())
			default:
				a[i*d+j] = 0
			}
		}
	}
	// la = L A (lower triangular), W = la la'.
	la := work[3*d*d+d : 4*d*d+d]
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			var t float64
			for k := j; k <= i; k++ {
				t += l[i*d+k] * a[k*d+j]
			}
			la[i*d+j] = t
		}
	}
	w := work[:d*d] // sinv no longer needed
	for i := 0; i < d; i++ {
		for j := 0; j <= i; j++ {
			var t float64
			for k := 0; k <= j; k++ {
				t += la[i*d+k] * la[j*d+k]
			}
			w[i*d+j], w[j*d+i] = t, t
		}
	}
	wcopy := make([]float64, d*d)
	copy(wcopy, w)
	return invSPD(dst, wcopy, d, work[d*d:2*d*d+d])
}

package stats

// Clone returns an independent copy of the sums: rows added to either
// afterwards do not reach the other. With SetShift (or the first row)
// fixed before the rows common to several models are added, a clone lets
// each model add only its own rows: multiple imputation sums the observed
// rows once and adds each completed data set's imputed rows to a clone
// (O(G·K²) to copy, whatever the number of rows). The fits of a clone with
// rows r added equal, bit for bit, the fits of sums built from all rows in
// the same order (unless the original was fitted before it was cloned: a
// fit flushes the partial block sums), and agree with any other order to
// rounding.
func (s *ClusterSums) Clone() *ClusterSums {
	if s == nil {
		return nil
	}
	c := *s
	c.cl = make([]*clusterAcc, len(s.cl))
	for i, a := range s.cl {
		if a != nil {
			c.cl[i] = a.clone()
		}
	}
	c.first = append([]float64(nil), s.first...)
	c.constant = append([]bool(nil), s.constant...)
	c.shift = append([]float64(nil), s.shift...)
	c.zt = make([]float64, len(s.zt))
	return &c
}

// CopyFrom makes s equal to o (same columns and weighting), reusing s's
// storage where it can: Clone without allocating in a loop.
func (s *ClusterSums) CopyFrom(o *ClusterSums) {
	cl := s.cl[:0]
	for i, a := range o.cl {
		var dst *clusterAcc
		if i < len(s.cl) {
			dst = s.cl[i]
		}
		switch {
		case a == nil:
			dst = nil
		case dst == nil || len(dst.zz) != len(a.zz) || (dst.zwz == nil) != (a.zwz == nil):
			dst = a.clone()
		default:
			dst.copyFrom(a)
		}
		cl = append(cl, dst)
	}
	zt := s.zt
	first, constant, shift := s.first, s.constant, s.shift
	*s = *o
	s.cl = cl
	s.first = append(first[:0], o.first...)
	s.constant = append(constant[:0], o.constant...)
	s.shift = append(shift[:0], o.shift...)
	if len(zt) != len(o.zt) {
		zt = make([]float64, len(o.zt))
	}
	s.zt = zt
}

func (a *clusterAcc) clone() *clusterAcc {
	c := *a
	cp := func(x []float64) []float64 {
		if x == nil {
			return nil
		}
		return append([]float64(nil), x...)
	}
	c.zz, c.zwz, c.zw2z = cp(a.zz), cp(a.zwz), cp(a.zw2z)
	c.sz, c.swz, c.sw2z = cp(a.sz), cp(a.swz), cp(a.sw2z)
	c.pzz, c.pzwz, c.pzw2z = cp(a.pzz), cp(a.pzwz), cp(a.pzw2z)
	c.psz, c.pswz, c.psw2z = cp(a.psz), cp(a.pswz), cp(a.psw2z)
	return &c
}

func (a *clusterAcc) copyFrom(o *clusterAcc) {
	zz, zwz, zw2z, sz, swz, sw2z := a.zz, a.zwz, a.zw2z, a.sz, a.swz, a.sw2z
	pzz, pzwz, pzw2z, psz, pswz, psw2z := a.pzz, a.pzwz, a.pzw2z, a.psz, a.pswz, a.psw2z
	*a = *o
	a.zz, a.zwz, a.zw2z = append(zz[:0], o.zz...), appendOrNil(zwz, o.zwz), appendOrNil(zw2z, o.zw2z)
	a.sz, a.swz, a.sw2z = append(sz[:0], o.sz...), appendOrNil(swz, o.swz), appendOrNil(sw2z, o.sw2z)
	a.pzz, a.pzwz, a.pzw2z = append(pzz[:0], o.pzz...), appendOrNil(pzwz, o.pzwz), appendOrNil(pzw2z, o.pzw2z)
	a.psz, a.pswz, a.psw2z = append(psz[:0], o.psz...), appendOrNil(pswz, o.pswz), appendOrNil(psw2z, o.psw2z)
}

func appendOrNil(dst, src []float64) []float64 {
	if src == nil {
		return nil
	}
	return append(dst[:0], src...)
}

package pipeline

import "strconv"

// Complementary is how a count is shown that is hidden only so that a small
// one cannot be recovered by subtraction (it may be large: it is not "<5").
const Complementary = "[c]"

// SuppressCounts applies disclosure control to counts that add up to total
// (DESIGN §10): a count from 1 to min-1 is shown as "<min"; if exactly one
// count of the group is suppressed, the smallest other non-zero count is
// suppressed too, so that the suppressed one cannot be recovered by
// subtracting the others from the total; that one is shown as "[c]" since
// it is not small. The total itself is suppressed when
// it is below min. Zero is shown as 0 (no one to disclose).
// It returns the shown counts and the shown total.
func SuppressCounts(counts []int64, total int64, min int) ([]string, string) {
	label := "<" + strconv.Itoa(min)
	out := make([]string, len(counts))
	small := func(n int64) bool { return n > 0 && n < int64(min) }
	suppressed := 0
	for i, n := range counts {
		if small(n) {
			out[i] = label
			suppressed++
		} else {
			out[i] = strconv.FormatInt(n, 10)
		}
	}
	if suppressed == 1 {
		next := -1
		for i, n := range counts {
			if n > 0 && !small(n) && (next < 0 || n < counts[next]) {
				next = i
			}
		}
		if next >= 0 {
			out[next] = Complementary
		}
	}
	shownTotal := strconv.FormatInt(total, 10)
	if small(total) {
		shownTotal = label
	}
	return out, shownTotal
}

// SuppressCount shows one count on its own: "<min" when from 1 to min-1.
func SuppressCount(n int64, min int) string {
	if n > 0 && n < int64(min) {
		return "<" + strconv.Itoa(min)
	}
	return strconv.FormatInt(n, 10)
}

// DisclosableSizes decides how each of a report's sample sizes is shown:
// two sizes that differ by 1 to min-1 would disclose that many people by
// subtraction (say, dropped from one analysis for a missing covariate), so
// both are shown as "[c]"; a small size itself as "<min"; others as is.
func DisclosableSizes(ns []int64, min int) map[int64]string {
	out := map[int64]string{}
	for _, n := range ns {
		out[n] = SuppressCount(n, min)
	}
	for _, a := range ns {
		for _, b := range ns {
			if d := a - b; d > 0 && d < int64(min) {
				for _, v := range []int64{a, b} {
					if out[v] == strconv.FormatInt(v, 10) {
						out[v] = Complementary
					}
				}
			}
		}
	}
	return out
}

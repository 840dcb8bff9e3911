package pipeline

import (
	"reflect"
	"testing"
)

func TestSuppressCounts(t *testing.T) {
	cases := []struct {
		counts    []int64
		total     int64
		want      []string
		wantTotal string
	}{
		{[]int64{10, 12, 30}, 52, []string{"10", "12", "30"}, "52"},
		// One small count: the next smallest is suppressed too, or 3 = 45 - 12 - 30.
		{[]int64{3, 12, 30}, 45, []string{"<5", "[c]", "30"}, "45"},
		// Two small counts already protect each other.
		{[]int64{3, 2, 30}, 35, []string{"<5", "<5", "30"}, "35"},
		{[]int64{0, 7, 9}, 16, []string{"0", "7", "9"}, "16"},
		{[]int64{4}, 4, []string{"<5"}, "<5"},
	}
	for _, c := range cases {
		got, gotTotal := SuppressCounts(c.counts, c.total, 5)
		if !reflect.DeepEqual(got, c.want) || gotTotal != c.wantTotal {
			t.Errorf("SuppressCounts(%v, %d) = %v %s, want %v %s", c.counts, c.total, got, gotTotal, c.want, c.wantTotal)
		}
	}
	if got := SuppressCount(4, 5); got != "<5" {
		t.Errorf("SuppressCount(4) = %s", got)
	}
	if got := SuppressCount(5, 5); got != "5" {
		t.Errorf("SuppressCount(5) = %s", got)
	}
}

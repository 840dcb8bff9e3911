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

func TestDisclosableSizes(t *testing.T) {
	// 120 and 117 differ by 3 people: both hidden; 100 is 17 away from
	// both: shown; 3 is small itself.
	got := DisclosableSizes([]int64{120, 117, 100, 120, 3}, 5)
	want := map[int64]string{120: "[c]", 117: "[c]", 100: "100", 3: "<5"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DisclosableSizes = %v, want %v", got, want)
	}
}

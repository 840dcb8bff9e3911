package report

import (
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/schemas"
)

var disclosureTestRule = schemas.Disclosure{MinCount: 5}

// disclosureTestShow protects d and returns every cell as shown, by name.
func disclosureTestShow(t *testing.T, d *Disclosure) map[string]string {
	t.Helper()
	if err := d.Protect(); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, c := range d.cells {
		if !c.implied {
			out[c.name] = d.Show(i)
		}
	}
	return out
}

// TestDisclosureTable: a 2 × 2 table with its margins and grand total. The
// 3 is small; its row and its column then need a second hidden cell each,
// and those cells' row and column too: the four inner cells, and no
// margin (they cost more to hide).
func TestDisclosureTable(t *testing.T) {
	//      a   b  | row
	// r1   3  10  | 13
	// r2  20  30  | 50
	// col 23  40  | 63
	d := NewDisclosure(disclosureTestRule)
	a, b, c, e := d.Count("a", 3, 0), d.Count("b", 10, 0), d.Count("c", 20, 0), d.Count("e", 30, 0)
	r1, r2, c1, c2 := d.Count("r1", 13, 1), d.Count("r2", 50, 1), d.Count("c1", 23, 1), d.Count("c2", 40, 1)
	tot := d.Count("t", 63, 2)
	d.Sum(r1, a, b)
	d.Sum(r2, c, e)
	d.Sum(c1, a, c)
	d.Sum(c2, b, e)
	d.Sum(tot, r1, r2)
	d.Sum(tot, c1, c2)
	got := disclosureTestShow(t, d)
	want := map[string]string{"a": "<5", "b": "[c]", "c": "[c]", "e": "[c]", "r1": "13", "r2": "50", "c1": "23", "c2": "40", "t": "63"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s shown as %q, want %q", k, got[k], v)
		}
	}
}

// TestDisclosureRow: the cases of a single row and its total.
func TestDisclosureRow(t *testing.T) {
	cases := []struct {
		counts []int64
		want   []string // the counts, then the total
	}{
		{[]int64{10, 12, 30}, []string{"10", "12", "30", "52"}},
		// One small count: the next smallest is hidden too, or 3 = 45 − 12 − 30.
		{[]int64{3, 12, 30}, []string{"<5", "[c]", "30", "45"}},
		// Two small counts protect each other: 35 − 30 = 5 = a + b.
		{[]int64{3, 2, 30}, []string{"<5", "<5", "30", "35"}},
		// Zero is shown, and is never hidden to protect another.
		{[]int64{0, 7, 9}, []string{"0", "7", "9", "16"}},
		{[]int64{4, 0}, []string{"<5", "0", "<5"}},
	}
	for _, c := range cases {
		d := NewDisclosure(disclosureTestRule)
		var total int64
		parts := make([]int, len(c.counts))
		for i, v := range c.counts {
			parts[i] = d.Count(string(rune('a'+i)), v, 0)
			total += v
		}
		tot := d.Count("total", total, 1)
		d.Sum(tot, parts...)
		if err := d.Protect(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for i := range c.counts {
			got = append(got, d.Show(parts[i]))
		}
		got = append(got, d.Show(tot))
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%v: shown %v, want %v", c.counts, got, c.want)
		}
	}
}

// TestDisclosureLinkedTables is issue 12's case: the flow's arm (81
// recruited = 77 interviewed at baseline + 4 not) and Table 1's header
// (n = 77, the same count): publishing both 81 and 77 gives the 4 away, so
// one of them is hidden, whichever of the two tables prints it.
func TestDisclosureLinkedTables(t *testing.T) {
	const avoidArmSize = 3 // ranked above the other counts, as the study page ranks an arm's size
	d := NewDisclosure(disclosureTestRule)
	r := d.Count("recruited", 81, 1)
	nb := d.Count("not interviewed", 4, 0)
	b := d.Count("baseline", 77, avoidArmSize)
	d.Sum(r, b, nb)
	// Table 1: the arm's size is the same cell.
	n := d.Count("baseline", 77, avoidArmSize)
	f, m := d.Count("female", 40, 0), d.Count("male", 37, 0)
	d.Sum(n, f, m)
	got := disclosureTestShow(t, d)
	if n != b {
		t.Fatal("the same name gave two cells")
	}
	if got["recruited"] != "[c]" || got["not interviewed"] != "<5" || got["baseline"] != "77" || got["female"] != "40" {
		t.Errorf("shown %v, want recruited hidden (Table 1's denominator is kept)", got)
	}
}

// TestDisclosureImplied: 8 raters, 6 scored; the 2 not scored are not
// printed but would follow from 8 − 6.
func TestDisclosureImplied(t *testing.T) {
	d := NewDisclosure(disclosureTestRule)
	res, pra := d.Count("researcher", 5, 0), d.Count("practitioner", 3, 0)
	all := d.Count("raters", 8, 1)
	d.Sum(all, res, pra)
	sc := d.Count("scored", 6, 1)
	d.Sum(all, sc, d.Implied("not scored", 2))
	got := disclosureTestShow(t, d)
	if got["raters"] != "[c]" && got["scored"] != "[c]" {
		t.Errorf("8 raters and 6 scored both shown: %v", got)
	}
	if got["practitioner"] != "<5" || got["researcher"] != "[c]" {
		t.Errorf("roles shown %v", got)
	}
	if _, ok := got["not scored"]; ok {
		t.Error("an implied count is listed as shown")
	}
}

// TestDisclosureSymbol: the NHS England convention, 1 to 7 and any count
// hidden to protect one shown as "*".
func TestDisclosureSymbol(t *testing.T) {
	d := NewDisclosure(schemas.Disclosure{MinCount: 8, Symbol: "*"})
	a, b, c := d.Count("a", 7, 0), d.Count("b", 9, 0), d.Count("c", 20, 0)
	d.Sum(d.Count("t", 36, 1), a, b, c)
	got := disclosureTestShow(t, d)
	if got["a"] != "*" || got["b"] != "*" || got["c"] != "20" || got["t"] != "36" {
		t.Errorf("shown %v", got)
	}
	if s := ShowModelN(7, schemas.Disclosure{MinCount: 8, Symbol: "*"}); s != "*" {
		t.Errorf("model n 7 shown as %q", s)
	}
	if s := ShowModelN(125, disclosureTestRule); s != "125" {
		t.Errorf("model n 125 shown as %q", s)
	}
}

func TestDisclosureErrors(t *testing.T) {
	d := NewDisclosure(disclosureTestRule)
	d.Sum(d.Count("t", 10, 0), d.Count("a", 3, 0), d.Count("b", 6, 0))
	if err := d.Protect(); err == nil || !strings.Contains(err.Error(), "t is 10 but its parts add up to 9") {
		t.Errorf("a sum that does not hold: %v", err)
	}
	d = NewDisclosure(disclosureTestRule)
	d.Count("n", 77, 0)
	d.Count("n", 76, 0)
	if err := d.Protect(); err == nil || !strings.Contains(err.Error(), "two different values") {
		t.Errorf("one count printed with two values: %v", err)
	}
	for _, bad := range []schemas.Disclosure{{MinCount: 0}, {MinCount: 5, Symbol: "5"}, {MinCount: 5, Symbol: "a b"}, {MinCount: 5, Symbol: "too-long-symbol"}} {
		d = NewDisclosure(bad)
		d.Count("a", 1, 0)
		if err := d.Protect(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

package schemas

import (
	"math"
	"strings"
	"testing"
)

// The default study's economics: DESIGN §13's defaults, the csri
// instrument with the illustrative unit costs, QALYs adjusted for baseline
// utility.
func TestEconomicsDefaults(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	e := s.Economics
	if e.WaveMonths["baseline"] != 0 || e.WaveMonths["followup"] != 6 || e.RecallMonths["baseline"] != 3 || e.RecallMonths["followup"] != 6 {
		t.Errorf("wave months %v, recall months %v", e.WaveMonths, e.RecallMonths)
	}
	if e.Discount() != 0.035 || len(e.LambdaGrid()) != 51 || e.LambdaGrid()[20] != 20000 || e.LambdaGrid()[50] != 50000 {
		t.Errorf("discount %v, grid %v", e.Discount(), e.LambdaGrid())
	}
	if e.Bootstrap.Replicates != 2000 {
		t.Errorf("bootstrap replicates %d", e.Bootstrap.Replicates)
	}
	u := s.UnitCosts["csri_illustrative_2019"]
	if u == nil || u.PriceYear != 2019 || len(u.Services) != 9 || !strings.Contains(u.Source, "ILLUSTRATIVE") {
		t.Fatalf("unit costs %+v", u)
	}
	if c, _ := u.Cost("su_inpatient_days"); c != 435 || s.CostFactor(u) != 1 {
		t.Errorf("inpatient day %v, factor %v", c, s.CostFactor(u))
	}
	if s.OutcomeBaseline("eq5d5l.qaly") != "eq5d5l.index" || s.OutcomeBaseline("csri.cost") != "csri.cost" {
		t.Error("outcome baselines")
	}
}

// A study's own settings, and mistakes refused with the field they are in.
func TestEconomicsSettings(t *testing.T) {
	dir, err := loadWith(t, []string{"  # price_year: 2022\n", "  price_year: 2022\n", "  # wave_months: {baseline: 0, followup: 6}", "  wave_months: {baseline: 0, followup: 18}"}, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir + "/study.yaml")
	if err != nil {
		t.Fatal(err)
	}
	u := s.UnitCosts["csri_illustrative_2019"]
	if f := s.CostFactor(u); math.Abs(f-109.6/100) > 1e-15 {
		t.Errorf("2019 to 2022 factor %v, want 1.096", f)
	}
	// Recall at follow-up defaults to the months since the wave before.
	if s.Economics.RecallMonths["followup"] != 18 {
		t.Errorf("recall %v", s.Economics.RecallMonths)
	}
	for _, c := range []struct{ from, to, field string }{
		{"  discount_rate: 0.035", "  discount_rate: 1.5", "economics.discount_rate"},
		{"  # wave_months: {baseline: 0, followup: 6}", "  wave_months: {baseline: 0, followup: 0}", "economics.wave_months"},
		{"  # wave_months: {baseline: 0, followup: 6}", "  wave_months: {baseline: 0, month3: 3, followup: 6}", "economics.wave_months"},
		{"  # price_year: 2022\n", "  price_year: 1999\n", "economics.price_year"},
		{"  baselines: {eq5d5l.qaly: eq5d5l.index}", "  baselines: {eq5d5l.qaly: eq5d5l.nothing}", "analysis.baselines"},
		{"  baselines: {eq5d5l.qaly: eq5d5l.index}", "  baselines: {gas.t: eq5d5l.index, rguk.nothing: eq5d5l.index}", "analysis.baselines"},
		{"  lambda: {max: 50000, step: 1000}", "  lambda: {max: 50000, step: 0}", "economics.lambda"},
	} {
		_, err := loadWith(t, []string{c.from, c.to}, map[string]string{})
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error %v, want one naming %s", c.to, err, c.field)
		}
	}
	// A unit-cost table of the study's own, beside its study file, missing
	// a service: refused.
	_, err = loadWith(t, nil, map[string]string{"unitcosts/csri_illustrative_2019.yaml": "name: csri_illustrative_2019\ntitle: mine\nprice_year: 2020\nsource: a survey\nservices:\n  - {item: su_gp, service: GP, unit: contact, cost: 40}\n"})
	if err == nil || !strings.Contains(err.Error(), "no cost for su_practice_nurse") {
		t.Errorf("a unit-cost table without every service: %v", err)
	}
}

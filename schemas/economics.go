package schemas

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Economics configures the economic evaluation (DESIGN §13): service-use
// recall periods, the nominal wave times QALYs are computed from, the
// discount rate, the price year of costs and the willingness-to-pay grid.
type Economics struct {
	// RecallMonths is the recall period of the service-use questions at
	// each wave (default: 3 months at baseline, the months since the wave
	// before at every later wave).
	RecallMonths map[string]float64 `yaml:"recall_months"`
	// WaveMonths is each wave's nominal time in months from baseline
	// (default: baseline 0, then 6, 12, … for the waves after it).
	WaveMonths map[string]float64 `yaml:"wave_months"`
	// DiscountRate is the yearly rate at which QALYs beyond the first year
	// are discounted (default 0.035).
	DiscountRate *float64 `yaml:"discount_rate"`
	// PriceYear, when set, expresses costs in that year's prices through
	// the uprating index (unitcosts/uprating_index.yaml); 0 keeps the
	// unit-cost table's own price year.
	PriceYear int `yaml:"price_year"`
	// Lambda is the willingness-to-pay grid in £ per QALY: 0 to Max in
	// steps of Step (default 0 to 50,000 by 1,000).
	Lambda struct {
		Max  float64 `yaml:"max"`
		Step float64 `yaml:"step"`
	} `yaml:"lambda"`
	// Bootstrap configures the two-stage bootstrap of cost_effectiveness
	// (default 2,000 replicates, seed 20190329).
	Bootstrap struct {
		Replicates int    `yaml:"replicates"`
		Seed       uint64 `yaml:"seed"`
	} `yaml:"bootstrap"`
	// DefaultMethod is the method of cost_effectiveness the report treats
	// as primary (default cr2, chosen by the coverage simulation in
	// pipeline/compare); the other is a sensitivity analysis.
	DefaultMethod string `yaml:"default_method"`
	// ValueSet, when set, names the value set (valuesets/<name>.yaml,
	// beside the study file or built in) of every value-set scale in
	// place of the instrument's own: the study's choice of utilities
	// behind eq5d5l.index and so QALYs.
	ValueSet string `yaml:"valueset"`
}

// Discount is the yearly discount rate of QALYs beyond the first year.
func (e *Economics) Discount() float64 {
	if e.DiscountRate == nil {
		return 0.035
	}
	return *e.DiscountRate
}

// LambdaGrid is the willingness-to-pay values, ascending from 0.
func (e *Economics) LambdaGrid() []float64 {
	var out []float64
	n := int(math.Round(e.Lambda.Max / e.Lambda.Step))
	for i := 0; i <= n; i++ {
		out = append(out, float64(i)*e.Lambda.Step)
	}
	return out
}

// UnitCosts is a unit-cost table: the cost of one unit of each service,
// in pounds of PriceYear, with where the costs come from.
type UnitCosts struct {
	Name      string        `yaml:"name"`
	Title     string        `yaml:"title"`
	PriceYear int           `yaml:"price_year"`
	Currency  string        `yaml:"currency"`
	Source    string        `yaml:"source"`
	Services  []UnitService `yaml:"services"`
}

// UnitService is one row of a unit-cost table.
type UnitService struct {
	Item    string  `yaml:"item"`
	Service string  `yaml:"service"`
	Unit    string  `yaml:"unit"`
	Cost    float64 `yaml:"cost"`
}

// Cost is the unit cost of an item's service, and whether the table has it.
func (u *UnitCosts) Cost(item string) (float64, bool) {
	for _, s := range u.Services {
		if s.Item == item {
			return s.Cost, true
		}
	}
	return 0, false
}

// Describe is the unit-cost table as recorded in the scores table's
// metadata and the codebook: title, price year and source.
func (u *UnitCosts) Describe() string {
	return fmt.Sprintf("%s; price year %d; source: %s", u.Title, u.PriceYear, strings.TrimSpace(u.Source))
}

// UpratingIndex is a price index by year: a cost of year A is a cost of
// year B times Index[B] / Index[A].
type UpratingIndex struct {
	Name   string          `yaml:"name"`
	Title  string          `yaml:"title"`
	Source string          `yaml:"source"`
	Index  map[int]float64 `yaml:"index"`
}

// CostFactor is what a cost in the unit-cost table u's prices is
// multiplied by to be in the study's price year (1 without uprating).
func (s *Study) CostFactor(u *UnitCosts) float64 {
	y := s.Economics.PriceYear
	if y == 0 || y == u.PriceYear || s.Uprating == nil {
		return 1
	}
	return s.Uprating.Index[y] / s.Uprating.Index[u.PriceYear]
}

// WaveMonth is a wave's nominal time in months from baseline.
func (s *Study) WaveMonth(wave string) float64 {
	return s.Economics.WaveMonths[wave]
}

// OutcomeBaseline is the scale an outcome adjusts for at baseline: the one
// analysis.baselines names, else the outcome itself.
func (s *Study) OutcomeBaseline(outcome string) string {
	if b, ok := s.Analysis.Baselines[outcome]; ok {
		return b
	}
	return outcome
}

// checkEconomics sets the economics defaults and checks the settings.
func (s *Study) checkEconomics(c checker) error {
	e := &s.Economics
	if e.WaveMonths == nil {
		e.WaveMonths = map[string]float64{}
		for i, w := range s.Waves {
			e.WaveMonths[w] = 6 * float64(i)
		}
	}
	for _, w := range sortedKeys(e.WaveMonths) {
		if !slices.Contains(s.Waves, w) {
			return c.fail(fmt.Sprintf("unknown wave %s", quote(w)), "economics", "wave_months", w)
		}
	}
	prev := math.Inf(-1)
	for i, w := range s.Waves {
		m, ok := e.WaveMonths[w]
		if !ok {
			return c.fail(fmt.Sprintf("wave %s has no time", quote(w)), "economics", "wave_months")
		}
		if !finite(m) || m <= prev || (i == 0 && m != 0) || m > 1200 {
			return c.fail("wave times are months from 0 at baseline, increasing, at most 1200", "economics", "wave_months", w)
		}
		prev = m
	}
	if e.RecallMonths == nil {
		e.RecallMonths = map[string]float64{}
		for i, w := range s.Waves {
			if i == 0 {
				e.RecallMonths[w] = 3
			} else {
				e.RecallMonths[w] = e.WaveMonths[w] - e.WaveMonths[s.Waves[i-1]]
			}
		}
	}
	for _, w := range sortedKeys(e.RecallMonths) {
		m := e.RecallMonths[w]
		if !slices.Contains(s.Waves, w) {
			return c.fail(fmt.Sprintf("unknown wave %s", quote(w)), "economics", "recall_months", w)
		}
		if !finite(m) || m <= 0 || m > 1200 {
			return c.fail("a recall period is a number of months above 0", "economics", "recall_months", w)
		}
	}
	if r := e.Discount(); !finite(r) || r < 0 || r > 1 {
		return c.fail("discount_rate must be a fraction from 0 to 1", "economics", "discount_rate")
	}
	if !c.has("economics", "lambda", "max") {
		e.Lambda.Max = 50000
	}
	if !c.has("economics", "lambda", "step") {
		e.Lambda.Step = 1000
	}
	if !finite(e.Lambda.Max, e.Lambda.Step) || e.Lambda.Step <= 0 || e.Lambda.Max < 0 || e.Lambda.Max/e.Lambda.Step > 10000 {
		return c.fail("lambda: step above 0, max at least 0, at most 10,000 steps", "economics", "lambda")
	}
	if !c.has("economics", "bootstrap", "replicates") {
		e.Bootstrap.Replicates = 2000
	}
	if !c.has("economics", "bootstrap", "seed") {
		e.Bootstrap.Seed = 20190329
	}
	if err := c.between(e.Bootstrap.Replicates, 0, 1_000_000, "economics", "bootstrap", "replicates"); err != nil {
		return err
	}
	if e.DefaultMethod == "" {
		e.DefaultMethod = "cr2"
	}
	if e.DefaultMethod != "cr2" && e.DefaultMethod != "two_stage_bootstrap" {
		return c.fail("default_method must be cr2 or two_stage_bootstrap", "economics", "default_method")
	}
	if e.PriceYear != 0 && (e.PriceYear < 1900 || e.PriceYear > 2200) {
		return c.fail("price_year must be a year", "economics", "price_year")
	}
	return nil
}

// checkBaselines checks analysis.baselines once the instruments are
// resolved: each names an outcome and a scale of the study.
func (s *Study) checkBaselines(src string) error {
	for _, o := range sortedKeys(s.Analysis.Baselines) {
		b := s.Analysis.Baselines[o]
		if !slices.Contains(s.Analysis.Outcomes, o) {
			return &Error{File: src, Field: "analysis.baselines." + o, Msg: fmt.Sprintf("%s is not an outcome of the analysis plan", quote(o))}
		}
		if !s.hasScale(b) {
			return &Error{File: src, Field: "analysis.baselines." + o, Msg: fmt.Sprintf("%s is not an instrument.scale of the study", quote(b))}
		}
	}
	if y := s.Economics.PriceYear; y != 0 {
		for _, u := range s.UnitCosts {
			if y == u.PriceYear {
				continue
			}
			if s.Uprating == nil || s.Uprating.Index[y] <= 0 || s.Uprating.Index[u.PriceYear] <= 0 {
				return &Error{File: src, Field: "economics.price_year", Msg: fmt.Sprintf("the uprating index has no value for %d or %d", y, u.PriceYear)}
			}
		}
	}
	return nil
}

func (s *Study) hasScale(name string) bool {
	inst, scale, ok := strings.Cut(name, ".")
	in, found := s.instByName[inst]
	return ok && found && slices.ContainsFunc(in.Scales, func(sc Scale) bool { return sc.Name == scale })
}

func (s *Study) loadUnitCosts(l *loader, name string) (*UnitCosts, error) {
	if u, ok := s.UnitCosts[name]; ok {
		return u, nil
	}
	b, file, err := l.read("unitcosts/" + name + ".yaml")
	if err != nil {
		return nil, err
	}
	u := &UnitCosts{}
	root, err := decode(b, file, u)
	if err != nil {
		return nil, err
	}
	c := checker{file: file, root: root}
	if u.Name != name {
		return nil, c.fail(fmt.Sprintf("name %s does not match the file name", quote(u.Name)), "name")
	}
	if err := c.text(u.Title, maxNameLen, false, "title"); err != nil {
		return nil, err
	}
	if err := c.text(strings.TrimSpace(u.Source), 2000, true, "source"); err != nil {
		return nil, err
	}
	if u.PriceYear < 1900 || u.PriceYear > 2200 {
		return nil, c.fail("price_year must be a year", "price_year")
	}
	if u.Currency != "" && u.Currency != "GBP" {
		return nil, c.fail("currency must be GBP", "currency")
	}
	if err := c.count(len(u.Services), 1, maxItems, "service", "services"); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, sv := range u.Services {
		if err := c.code(sv.Item, "item name", validColumn, columnRule, "services", i, "item"); err != nil {
			return nil, err
		}
		if seen[sv.Item] {
			return nil, c.fail(fmt.Sprintf("item %s listed twice", quote(sv.Item)), "services", i, "item")
		}
		seen[sv.Item] = true
		if !finite(sv.Cost) || sv.Cost < 0 {
			return nil, c.fail("a unit cost is a finite number of pounds, at least 0", "services", i, "cost")
		}
	}
	s.UnitCosts[name] = u
	return u, nil
}

func (s *Study) loadUprating(l *loader) error {
	if s.Economics.PriceYear == 0 {
		return nil
	}
	b, file, err := l.read("unitcosts/uprating_index.yaml")
	if err != nil {
		return err
	}
	u := &UpratingIndex{}
	root, err := decode(b, file, u)
	if err != nil {
		return err
	}
	c := checker{file: file, root: root}
	for y, v := range u.Index {
		if !finite(v) || v <= 0 {
			return c.fail(fmt.Sprintf("index of %d must be a positive number", y), "index")
		}
	}
	if len(u.Index) == 0 {
		return errors.New("the uprating index is empty")
	}
	s.Uprating = u
	return nil
}

package study

import (
	"context"
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// consortYAML is the methods' analysis descriptions and the CONSORT
// checklist, as data.
//
//go:embed templates/consort.yaml
var consortYAML []byte

// consortData is templates/consort.yaml.
type consortData struct {
	Analyses map[string]string `yaml:"analyses"`
	Items    []checklistItem   `yaml:"items"`
}

// checklistItem is a CONSORT item: Where is the section id of the page
// that covers it ("" when the report does not).
type checklistItem struct {
	Item  string `yaml:"item"`
	Topic string `yaml:"topic"`
	Where string `yaml:"where"`
	Note  string `yaml:"note"`
}

// loadConsortData parses templates/consort.yaml.
func loadConsortData() (*consortData, error) {
	var d consortData
	if err := yaml.Unmarshal(consortYAML, &d); err != nil {
		return nil, fmt.Errorf("report templates/consort.yaml: %w", err)
	}
	return &d, nil
}

// methodsPage is the study page's methods paragraph and CONSORT checklist
// (embedded in studyPage).
type methodsPage struct {
	HasMethods bool
	Methods    methodsFacts
	Checklist  []checklistItem
}

// methodsFacts fill the methods paragraph (templates/study_front.tmpl).
type methodsFacts struct {
	Trusts, Teams       int
	Arms                []string
	Waves               []string
	PrimaryWave         string
	Primary             string   // the primary outcome's title
	Secondary           []string // the other outcomes
	CILevel             string
	Others              []string // the other analyses of the effects table, described
	HasITT              bool
	M                   string // imputations, from the effects rows
	ImputationSeed      string
	BootstrapDraws      string
	BootstrapSeed       string
	MinCount            int
	Version, Hash       string
	HasWild, HasFidDose bool
}

// effectsM is the effects table's analysis and m (imputations).
type effectsM struct {
	Analysis string `col:"analysis"`
	M        int32  `col:"m"`
}

// readEffectsM reads the number of imputations of each analysis from the
// effects rows (the largest m of its rows; 0 without).
func readEffectsM(ctx context.Context, genDir string) (map[string]int32, error) {
	rows, err := warehouse.ReadRecords[effectsM](ctx, genDir, "effects")
	if err != nil {
		return nil, fmt.Errorf("effects: %w", err)
	}
	out := map[string]int32{}
	for _, r := range rows {
		out[r.Analysis] = max(out[r.Analysis], r.M)
	}
	return out, nil
}

// layoutMethods lays out the methods paragraph from the study definition
// and the effects rows (the analyses run, M), and the checklist from
// templates/consort.yaml. It fails only on a broken consort.yaml.
func (pg *studyPage) layoutMethods(s *schemas.Study, effects []EffectsLine, m map[string]int32) error {
	data, err := loadConsortData()
	if err != nil {
		return err
	}
	pg.Checklist = data.Items
	if len(effects) == 0 {
		return nil
	}
	f := methodsFacts{
		Trusts: len(s.Trusts), Teams: len(s.Teams), Arms: pg.Arms, PrimaryWave: waveLabel(s.PrimaryWave()),
		Primary: outcomeTitle(s, s.Analysis.PrimaryOutcome), CILevel: fmtNum(100*ciLevel(s), 0),
		MinCount: s.Disclosure.MinCount, Version: pg.Version, Hash: pg.Hash,
		BootstrapDraws: strconv.Itoa(s.Analysis.Bootstrap.Draws), BootstrapSeed: strconv.FormatUint(s.Analysis.Bootstrap.Seed, 10),
		ImputationSeed: strconv.FormatUint(s.Analysis.ImputationSeed, 10),
	}
	for _, w := range s.Waves {
		f.Waves = append(f.Waves, waveLabel(w))
	}
	for _, o := range s.Analysis.Outcomes {
		if o != s.Analysis.PrimaryOutcome {
			f.Secondary = append(f.Secondary, o)
		}
	}
	var names []string
	for _, e := range effects {
		if !slices.Contains(names, e.Analysis) {
			names = append(names, e.Analysis)
		}
	}
	slices.SortStableFunc(names, func(a, b string) int { return rank(s.Analysis.Analyses, a) - rank(s.Analysis.Analyses, b) })
	for _, a := range names {
		switch a {
		case "primary":
			f.Others = append(f.Others, "the primary model with CR1 errors and G − 1 df (primary, cr1)")
			continue
		case "itt_mi":
			f.HasITT = true
			if n := m[a]; n > 0 {
				f.M = strconv.Itoa(int(n))
			}
		case "wild_bootstrap":
			f.HasWild = true
		}
		d := data.Analyses[a]
		if d == "" {
			d = strings.ReplaceAll(a, "_", " ")
		}
		f.Others = append(f.Others, d+" ("+a+")")
	}
	if f.HasITT && f.M != "" {
		pg.Summary.ITTM = f.M
	}
	pg.HasMethods, pg.Methods = true, f
	return nil
}

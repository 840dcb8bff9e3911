// Package schemas holds the study definition: trusts, teams, arms, waves,
// rating periods, instruments, value sets, site mappings and table schemas.
// The defaults are embedded YAML files; a study replaces them with its own
// file (cpi --study FILE) without a new build.
package schemas

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"unicode"

	"go.yaml.in/yaml/v3"
)

//go:embed study.yaml tables.yaml instruments/*.yaml sites/*.yaml valuesets/*.yaml unitcosts/*.yaml
var embedded embed.FS

// Study is a loaded, checked study definition with everything it names
// resolved. It is read-only once Load returns.
type Study struct {
	// knownAnalyses (Load's KnownAnalyses) and the line of each entry of
	// analysis.analyses in the study file (0 when unknown).
	knownAnalyses []string
	analysisLines []int

	Name    string   `yaml:"name"`
	Version int      `yaml:"version"`
	Trusts  []Trust  `yaml:"trusts"`
	Arms    []string `yaml:"arms"`
	Teams   []Team   `yaml:"teams"`
	Waves   []string `yaml:"waves"`
	Periods []string `yaml:"periods"`
	// DemographicDefs is the demographics mapping in document order: each
	// a list of codes or yes_no (see DemographicFields).
	DemographicDefs demographicDefs `yaml:"demographics"`
	InstrumentNames []string        `yaml:"instruments"`
	Fidelity        Fidelity        `yaml:"fidelity"`
	Disclosure      Disclosure      `yaml:"disclosure"`
	Ingest          struct {
		SilenceDays int `yaml:"silence_days"`
		// An export that would become current is held back when it has lost
		// more than HoldLoss of the participants (ratings) of the trust's
		// current export, or when more than HoldRejected of its rows were
		// rejected (fractions; defaults 0.05 and 0.10; 1 never holds).
		HoldLoss     float64 `yaml:"hold_participant_loss"`
		HoldRejected float64 `yaml:"hold_rejected_rows"`
		// SettleSeconds is how long an export must have been left alone
		// (same size, same modification time, that modification time at
		// least this old) before ingest takes it: a file still being copied
		// into the inbox is left for the next run. Default 5; 0 takes files
		// as they are (but a modification time in the future).
		SettleSeconds int `yaml:"settle_seconds"`
		// FutureExportDays is how far past the run's date an export date in
		// a file name may be before the file is quarantined
		// (future_export_date). Default 1, for time zones and late nights.
		FutureExportDays int `yaml:"future_export_days"`
	} `yaml:"ingest"`
	Analysis  Analysis  `yaml:"analysis"`
	Economics Economics `yaml:"economics"`
	// Redcap holds the REDCap project's settings (see redcap.go).
	Redcap Redcap `yaml:"redcap"`

	// Resolved by Load.
	Instruments []*Instrument        `yaml:"-"`
	Sites       map[string]*Site     `yaml:"-"` // by trust code
	ValueSets   map[string]*ValueSet `yaml:"-"`
	// UnitCosts are the unit-cost tables the instruments' cost scales
	// use, by name; Uprating the price index (loaded when
	// economics.price_year is set).
	UnitCosts map[string]*UnitCosts `yaml:"-"`
	Uprating  *UpratingIndex        `yaml:"-"`
	Tables    *Tables               `yaml:"-"`
	// Demographics holds the code list of each coded demographic, by name.
	Demographics map[string][]string    `yaml:"-"`
	Source       string                 `yaml:"-"` // file the study came from ("embedded" for the default)
	Hash         string                 `yaml:"-"` // SHA-256 over the study file and every file it uses
	teamByCode   map[string]*Team       `yaml:"-"`
	trustByCode  map[string]*Trust      `yaml:"-"`
	instByName   map[string]*Instrument `yaml:"-"`
}

// Trust is one NHS trust taking part.
type Trust struct {
	Code string `yaml:"code"`
	Name string `yaml:"name"`
	Site string `yaml:"site"`
}

// Team is one community mental health team: the unit of allocation.
type Team struct {
	Code  string `yaml:"code"`
	Trust string `yaml:"trust"`
	Arm   string `yaml:"arm"`
}

// Fidelity configures the fidelity scale and its bands.
type Fidelity struct {
	Min            int         `yaml:"min"`
	Max            int         `yaml:"max"`
	MissingAllowed int         `yaml:"missing_allowed"`
	RaterRoles     []string    `yaml:"rater_roles"`
	Bands          []Band      `yaml:"bands"`
	Lowest         int         `yaml:"lowest"`
	Components     []Component `yaml:"components"`
}

// Band is a fidelity band: a team whose pct is at least MinPct (and below
// the band above) is in it.
type Band struct {
	Name   string  `yaml:"name"`
	MinPct float64 `yaml:"min_pct"`
}

// Component is one of the CPI model's components rated for fidelity.
type Component struct {
	Code       string `yaml:"code"`
	Name       string `yaml:"name"`
	Practice   string `yaml:"practice"`
	Suggestion string `yaml:"suggestion"`
}

// Disclosure is the disclosure control of the counts in reports (DESIGN
// §10): a count of people from 1 to MinCount-1 is suppressed, and so is any
// count that would let a suppressed one be recovered from the published
// numbers.
type Disclosure struct {
	MinCount int `yaml:"min_count"`
	// Symbol, when set, is how every suppressed count is shown, small or
	// hidden only to protect a small one: the NHS England convention is
	// min_count 8 with symbol "*". Empty: a small count is shown as
	// "<MinCount" and a count hidden to protect one as "[c]".
	Symbol string `yaml:"symbol"`
}

// Check reports a setting the reports cannot use: a symbol must be one to
// eight characters, none of them a digit (it would read as a count) or a
// space.
func (d Disclosure) Check() error {
	if d.MinCount < 1 {
		return fmt.Errorf("disclosure: min_count must be at least 1")
	}
	if d.Symbol == "" {
		return nil
	}
	if n := len([]rune(d.Symbol)); n > 8 {
		return fmt.Errorf("disclosure: symbol must be at most 8 characters")
	}
	for _, r := range d.Symbol {
		if unicode.IsDigit(r) || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("disclosure: symbol must not hold a digit, a space or a control character")
		}
	}
	return nil
}

// SmallSymbol is how a count from 1 to MinCount-1 is shown.
func (d Disclosure) SmallSymbol() string {
	if d.Symbol != "" {
		return d.Symbol
	}
	return "<" + strconv.Itoa(d.MinCount)
}

// SecondarySymbol is how a count is shown that is hidden only so that a
// small one cannot be recovered (it is not small itself).
func (d Disclosure) SecondarySymbol() string {
	if d.Symbol != "" {
		return d.Symbol
	}
	return "[c]"
}

// Analysis is the analysis plan. Clusters are always the teams and strata
// the trusts (DESIGN §9): they are not settings.
type Analysis struct {
	CILevel              float64  `yaml:"ci_level"`
	PrimaryOutcome       string   `yaml:"primary_outcome"`
	Outcomes             []string `yaml:"outcomes"`
	PropensityCovariates []string `yaml:"propensity_covariates"`
	Bootstrap            struct {
		Draws int    `yaml:"draws"`
		Seed  uint64 `yaml:"seed"`
	} `yaml:"bootstrap"`
	Analyses []string `yaml:"analyses"`
	// PrimaryWave is the follow-up wave of the primary analysis (default:
	// the last wave). Every wave after the first is analysed against the
	// first; this one is the study's primary result.
	PrimaryWave string `yaml:"primary_wave"`
	// Imputations is M, the number of completed data sets of itt_mi and
	// itt_delta (default 50); ImputationSeed seeds their imputations.
	Imputations    int    `yaml:"imputations"`
	ImputationSeed uint64 `yaml:"imputation_seed"`
	// DeltaGrid is itt_delta's grid of δ as multiples of the outcome's
	// observed standard deviation at the wave (δ in outcome units is the
	// multiple times that SD); default −1 to 1 in 11 steps.
	DeltaGrid []float64 `yaml:"delta_grid"`
	// Baselines names, for an outcome, the scale it adjusts for at
	// baseline when that is not the outcome itself (eq5d5l.qaly:
	// eq5d5l.index; see OutcomeBaseline).
	Baselines map[string]string `yaml:"baselines"`
}

// DefaultDeltaGrid is analysis.delta_grid's default: −1 to 1 SD in 11
// steps.
func DefaultDeltaGrid() []float64 {
	out := make([]float64, 11)
	for i := range out {
		out[i] = float64(i-5) / 5
	}
	return out
}

// Team returns the team with the given code.
func (s *Study) Team(code string) (*Team, bool) {
	t, ok := s.teamByCode[code]
	return t, ok
}

// Trust returns the trust with the given code.
func (s *Study) Trust(code string) (*Trust, bool) {
	t, ok := s.trustByCode[code]
	return t, ok
}

// Instrument returns the instrument with the given name.
func (s *Study) Instrument(name string) (*Instrument, bool) {
	i, ok := s.instByName[name]
	return i, ok
}

// TeamCodes lists the study's team codes in definition order.
func (s *Study) TeamCodes() []string {
	out := make([]string, len(s.Teams))
	for i, t := range s.Teams {
		out[i] = t.Code
	}
	return out
}

// TrustCodes lists the study's trust codes in definition order.
func (s *Study) TrustCodes() []string {
	out := make([]string, len(s.Trusts))
	for i, t := range s.Trusts {
		out[i] = t.Code
	}
	return out
}

// WaveIndex is the position of a wave in the study's order (-1 if unknown):
// waves are ordered by the study, not by their names.
func (s *Study) WaveIndex(wave string) int { return slices.Index(s.Waves, wave) }

// BaselineWave is the first wave.
func (s *Study) BaselineWave() string { return s.Waves[0] }

// FollowupWaves are the waves after the first, in the study's order: each
// is analysed against the first.
func (s *Study) FollowupWaves() []string { return slices.Clone(s.Waves[1:]) }

// PrimaryWave is the follow-up wave of the primary analysis
// (analysis.primary_wave; the last wave by default).
func (s *Study) PrimaryWave() string {
	if s.Analysis.PrimaryWave != "" {
		return s.Analysis.PrimaryWave
	}
	return s.Waves[len(s.Waves)-1]
}

// Demographic is one baseline characteristic of the participants export
// and table: a coded column (Codes) or a 0/1 column (Binary).
type Demographic struct {
	Name   string
	Codes  []string // nil for a binary column
	Binary bool     // 1 yes, 0 no (code list yes_no)
}

// YesNo is the word that makes a demographic a 0/1 column.
const YesNo = "yes_no"

// demographicDefs reads the demographics mapping in document order.
type demographicDefs []Demographic

// UnmarshalYAML takes a mapping of name to a list of codes or yes_no.
func (d *demographicDefs) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: demographics must map each name to a list of codes or %s", n.Line, YesNo)
	}
	out := make(demographicDefs, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		dm := Demographic{Name: k.Value}
		switch {
		case v.Kind == yaml.ScalarNode && v.Value == YesNo:
			dm.Binary = true
		case v.Kind == yaml.SequenceNode:
			if err := v.Decode(&dm.Codes); err != nil {
				return err
			}
			if dm.Codes == nil {
				dm.Codes = []string{}
			}
		default:
			return fmt.Errorf("line %d: demographics: %s must be a list of codes or %s", v.Line, quote(k.Value), YesNo)
		}
		out = append(out, dm)
	}
	*d = out
	return nil
}

// DemographicFields lists the participants' baseline characteristics in
// the order of the study definition's demographics mapping, which is their
// order in the export and the participants table. The default study's are
// age_band, gender, ethnicity, living_alone (yes_no) and diagnosis_group; a
// study that leaves one out (an older file without living_alone) has no
// such column in its exports or tables.
func (s *Study) DemographicFields() []Demographic { return slices.Clone(s.DemographicDefs) }

// CodedDemographics and BinaryDemographics are the names of the coded and
// of the 0/1 demographics, in the study's order.
func (s *Study) CodedDemographics() []string  { return s.demographicNames(false) }
func (s *Study) BinaryDemographics() []string { return s.demographicNames(true) }

func (s *Study) demographicNames(binary bool) []string {
	var out []string
	for _, d := range s.DemographicDefs {
		if d.Binary == binary {
			out = append(out, d.Name)
		}
	}
	return out
}

// AnalysisLine is the line of analysis.analyses[i] in the study file (0
// when not known).
func (s *Study) AnalysisLine(i int) int {
	if i < 0 || i >= len(s.analysisLines) {
		return 0
	}
	return s.analysisLines[i]
}

// InterventionArm is the first arm: the one tested against the control.
func (s *Study) InterventionArm() string { return s.Arms[0] }

// Band returns the fidelity band for a percentage of the maximum.
func (s *Study) Band(pct float64) string {
	for _, b := range s.Fidelity.Bands {
		if pct >= b.MinPct {
			return b.Name
		}
	}
	return s.Fidelity.Bands[len(s.Fidelity.Bands)-1].Name
}

// ValidParticipantID reports whether id is a well-formed pseudonym: 3 to
// 32 of A-Z, a-z, 0-9, _ and - (checked on every row of an export, so a
// loop rather than a regular expression).
func ValidParticipantID(id string) bool {
	if len(id) < 3 || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// hashFiles is the SHA-256 over the named files' names and bytes, in order.
func hashFiles(names []string, content map[string][]byte) string {
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(content[n]))
		h.Write(content[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

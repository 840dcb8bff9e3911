package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a mistake in a definition file, with where it is.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// loader reads definition files from a study file's folder first, then from
// the embedded defaults, and remembers every file it read for the hash.
type loader struct {
	dir     string // "" for the embedded defaults only
	names   []string
	content map[string][]byte
}

func (l *loader) read(name string) ([]byte, string, error) {
	if l.dir != "" {
		p := filepath.Join(l.dir, filepath.FromSlash(name))
		b, err := readDefinition(p)
		if err == nil {
			l.remember(name, b)
			return b, p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, p, err
		}
	}
	b, err := embedded.ReadFile(name)
	if err != nil {
		return nil, name, fmt.Errorf("definition %s not found beside the study file nor built in", name)
	}
	l.remember(name, b)
	return b, "embedded:" + name, nil
}

// readDefinition reads a definition file of at most maxDefinitionBytes.
func readDefinition(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxDefinitionBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxDefinitionBytes {
		return nil, &Error{File: path, Msg: fmt.Sprintf("larger than %d bytes", maxDefinitionBytes)}
	}
	return b, nil
}

func (l *loader) remember(name string, b []byte) {
	l.names = append(l.names, name)
	l.content[name] = b
}

// decode parses strict YAML into v: one document, no key v does not read
// (refused as "unknown key" at its line). It returns the document node for
// locating later errors.
func decode(b []byte, file string, v any) (*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, yamlError(file, nil, err)
	}
	if len(root.Content) == 0 {
		return nil, &Error{File: file, Msg: "empty definition"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return nil, yamlError(file, &root, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlError(file, &root, err)
	default:
		return nil, &Error{File: file, Line: extra.Line, Msg: "a second YAML document: a definition file holds one"}
	}
	return &root, nil
}

func yamlError(file string, root *yaml.Node, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	// "field cluster not found in type schemas.Analysis": a key cpi would
	// ignore, named by its path.
	if rest, ok := strings.CutPrefix(msg, "field "); ok {
		if key, _, ok := strings.Cut(rest, " not found in type "); ok {
			field := key
			if path := keyPath(root, line, key); path != nil {
				field = fieldName(path)
			}
			return &Error{File: file, Line: line, Field: field, Msg: "unknown key"}
		}
	}
	return &Error{File: file, Line: line, Msg: msg}
}

// keyPath is the path of mapping keys and sequence indexes to the mapping
// key named key on the given line, or nil.
func keyPath(n *yaml.Node, line int, key string) []any {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			return keyPath(n.Content[0], line, key)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Value == key && k.Line == line {
				return []any{key}
			}
			if p := keyPath(n.Content[i+1], line, key); p != nil {
				return append([]any{k.Value}, p...)
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if p := keyPath(c, line, key); p != nil {
				return append([]any{i}, p...)
			}
		}
	}
	return nil
}

// nodeAt is the value node at a path of mapping keys and sequence indexes,
// or nil when the definition does not have it.
func nodeAt(root *yaml.Node, path ...any) *yaml.Node {
	n := root
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, p := range path {
		if n == nil {
			return nil
		}
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
			}
		}
		n = next
	}
	return n
}

// lineOf finds the line of a node by a path of mapping keys and sequence
// indexes; it returns the deepest line found.
func lineOf(root *yaml.Node, path ...any) int {
	n := root
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	for _, p := range path {
		if n == nil {
			break
		}
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
						line = n.Content[i].Line
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
				line = next.Line
			}
		}
		n = next
	}
	return line
}

// Default returns the embedded study definition.
func Default() (*Study, error) { return Load("") }

// Option is a setting of Load.
type Option func(*Study)

// KnownAnalyses makes Load refuse an analysis in analysis.analyses that is
// not one of names (the compare stage's registry: schemas cannot import
// it), naming the file, line and field.
func KnownAnalyses(names ...string) Option {
	return func(s *Study) { s.knownAnalyses = names }
}

// Defaults of the ingest settings where 0 is a valid choice.
const (
	DefaultSettleSeconds    = 5
	DefaultFutureExportDays = 1
	DefaultHoldLoss         = 0.05
	DefaultHoldRejected     = 0.10
)

// Load reads a study definition from file, or the embedded default when file
// is empty, resolves the instruments, value sets and site mappings it names
// and checks them all. Mistakes come back as *Error naming file, line and field.
//
// An analysis in analysis.analyses is checked against KnownAnalyses when
// given; without it, only its spelling (the compare stage checks the names
// against its registry, compare.CheckStudy).
func Load(file string, opts ...Option) (*Study, error) {
	l := &loader{content: map[string][]byte{}}
	var b []byte
	src := "embedded:study.yaml"
	if file == "" {
		var err error
		if b, src, err = l.read("study.yaml"); err != nil {
			return nil, err
		}
	} else {
		var err error
		b, err = readDefinition(file)
		if err != nil {
			return nil, err
		}
		l.dir = filepath.Dir(file)
		l.remember("study.yaml", b)
		src = file
	}
	s := &Study{Source: src}
	for _, o := range opts {
		o(s)
	}
	// Defaults for settings where 0 means something: a study file that
	// leaves them out keeps these.
	s.Ingest.SettleSeconds = DefaultSettleSeconds
	s.Ingest.FutureExportDays = DefaultFutureExportDays
	s.Ingest.HoldLoss, s.Ingest.HoldRejected = DefaultHoldLoss, DefaultHoldRejected
	root, err := decode(b, src, s)
	if err != nil {
		return nil, err
	}
	if err := s.check(src, root); err != nil {
		return nil, err
	}
	if err := s.resolve(l, src, root); err != nil {
		return nil, err
	}
	s.Hash = hashFiles(l.names, l.content)
	return s, nil
}

// check checks the study file itself (what it names is checked by resolve):
// every code against its alphabet, every list and number against the bounds
// in limits.go, and no setting cpi would ignore.
func (s *Study) check(src string, root *yaml.Node) error {
	c := checker{file: src, root: root}
	fail := c.fail
	if err := c.text(s.Name, maxNameLen, false, "name"); err != nil {
		return err
	}
	if err := c.between(s.Version, 0, maxStudyVersion, "version"); err != nil {
		return err
	}
	if err := c.count(len(s.Trusts), 1, maxTrusts, "trust", "trusts"); err != nil {
		return err
	}
	s.trustByCode = map[string]*Trust{}
	for i := range s.Trusts {
		t := &s.Trusts[i]
		if err := c.code(t.Code, "trust code", validTrustCode, trustCodeRule, "trusts", i, "code"); err != nil {
			return err
		}
		if _, dup := s.trustByCode[t.Code]; dup {
			return fail(fmt.Sprintf("trust %s listed twice", quote(t.Code)), "trusts", i, "code")
		}
		if err := c.text(t.Name, maxNameLen, false, "trusts", i, "name"); err != nil {
			return err
		}
		if t.Site == "" {
			return fail("site is required", "trusts", i)
		}
		if err := c.code(t.Site, "site", validCode, codeRule, "trusts", i, "site"); err != nil {
			return err
		}
		s.trustByCode[t.Code] = t
	}
	if len(s.Arms) != 2 {
		return fail("exactly two arms are required (intervention first, then control)", "arms")
	}
	if err := c.codes(s.Arms, "arm", validCode, codeRule, 2, 2, "arms"); err != nil {
		return err
	}
	if err := c.codes(s.Waves, "wave", validCode, codeRule, 2, maxWaves, "waves"); err != nil {
		return err
	}
	if err := c.codes(s.Periods, "rating period", validCode, codeRule, 1, maxPeriods, "periods"); err != nil {
		return err
	}
	if err := c.count(len(s.Teams), 2, maxTeams, "team", "teams"); err != nil {
		return err
	}
	s.teamByCode = map[string]*Team{}
	armsSeen := map[string]map[string]bool{}
	for i := range s.Teams {
		t := &s.Teams[i]
		if t.Code == "" {
			return fail("team code is required", "teams", i)
		}
		if err := c.code(t.Code, "team code", validCode, codeRule, "teams", i, "code"); err != nil {
			return err
		}
		if _, dup := s.teamByCode[t.Code]; dup {
			return fail(fmt.Sprintf("team %s listed twice", quote(t.Code)), "teams", i, "code")
		}
		if _, ok := s.trustByCode[t.Trust]; !ok {
			return fail(fmt.Sprintf("unknown trust %s; the study's trusts are %s", quote(t.Trust), strings.Join(s.TrustCodes(), ", ")), "teams", i, "trust")
		}
		if !slices.Contains(s.Arms, t.Arm) {
			return fail(fmt.Sprintf("unknown arm %s; want one of %s", quote(t.Arm), strings.Join(s.Arms, ", ")), "teams", i, "arm")
		}
		s.teamByCode[t.Code] = t
		if armsSeen[t.Arm] == nil {
			armsSeen[t.Arm] = map[string]bool{}
		}
		armsSeen[t.Arm][t.Code] = true
	}
	for _, a := range s.Arms {
		if len(armsSeen[a]) == 0 {
			return fail(fmt.Sprintf("no team is in arm %q", a), "teams")
		}
	}
	if err := s.checkDemographics(c); err != nil {
		return err
	}
	if err := c.codes(s.InstrumentNames, "instrument", validCode, codeRule, 1, maxInstruments, "instruments"); err != nil {
		return err
	}
	if err := s.checkFidelity(c); err != nil {
		return err
	}
	if err := c.between(s.Disclosure.MinCount, 1, maxMinCount, "disclosure", "min_count"); err != nil {
		return err
	}
	if err := s.Disclosure.Check(); err != nil {
		return c.fail(strings.TrimPrefix(err.Error(), "disclosure: "), "disclosure", "symbol")
	}
	if !c.has("ingest", "silence_days") {
		s.Ingest.SilenceDays = defaultSilence
	} else if err := c.between(s.Ingest.SilenceDays, 1, maxSilenceDays, "ingest", "silence_days"); err != nil {
		return err
	}
	if err := c.between(s.Ingest.SettleSeconds, 0, 3600, "ingest", "settle_seconds"); err != nil {
		return err
	}
	if err := c.between(s.Ingest.FutureExportDays, 0, 366, "ingest", "future_export_days"); err != nil {
		return err
	}
	for _, g := range []struct {
		v    float64
		name string
	}{{s.Ingest.HoldLoss, "hold_participant_loss"}, {s.Ingest.HoldRejected, "hold_rejected_rows"}} {
		if !(g.v >= 0 && g.v <= 1) {
			return c.fail("must be a fraction from 0 to 1", "ingest", g.name)
		}
	}
	if err := s.checkAnalysis(c); err != nil {
		return err
	}
	return s.checkEconomics(c)
}

func (s *Study) checkFidelity(c checker) error {
	f := &s.Fidelity
	at := func(path ...any) []any { return append([]any{"fidelity"}, path...) }
	if err := c.between(f.Min, 0, maxFidelityMax-1, at("min")...); err != nil {
		return err
	}
	if f.Max <= f.Min {
		return c.fail("max must exceed min", at("max")...)
	}
	if err := c.between(f.Max, f.Min+1, maxFidelityMax, at("max")...); err != nil {
		return err
	}
	if err := c.count(len(f.Components), 1, maxComponents, "component", at("components")...); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, comp := range f.Components {
		if err := c.code(comp.Code, "component code", validColumn, columnRule, at("components", i, "code")...); err != nil {
			return err
		}
		if seen[comp.Code] || s.isFixedField(KindFidelity, comp.Code) {
			return c.fail(fmt.Sprintf("component code %s is already a column of the fidelity export", quote(comp.Code)), at("components", i, "code")...)
		}
		seen[comp.Code] = true
		if err := c.text(comp.Name, maxNameLen, false, at("components", i, "name")...); err != nil {
			return err
		}
		if err := c.text(comp.Practice, maxProseLen, true, at("components", i, "practice")...); err != nil {
			return err
		}
		if err := c.text(comp.Suggestion, maxProseLen, true, at("components", i, "suggestion")...); err != nil {
			return err
		}
	}
	if err := c.between(f.MissingAllowed, 0, len(f.Components)-1, at("missing_allowed")...); err != nil {
		return err
	}
	if err := c.between(f.Lowest, 0, len(f.Components), at("lowest")...); err != nil {
		return err
	}
	if err := c.count(len(f.Bands), 1, maxBands, "band", at("bands")...); err != nil {
		return err
	}
	names := make([]string, len(f.Bands))
	for i, b := range f.Bands {
		names[i] = b.Name
		if !finite(b.MinPct) || b.MinPct < 0 || b.MinPct > 100 {
			return c.fail("min_pct must be from 0 to 100", at("bands", i, "min_pct")...)
		}
		if i > 0 && f.Bands[i].MinPct >= f.Bands[i-1].MinPct {
			return c.fail("bands must go from the highest threshold down", at("bands", i, "min_pct")...)
		}
	}
	if err := c.codes(names, "band", validCode, codeRule, 1, maxBands, at("bands")...); err != nil {
		return err
	}
	return c.codes(f.RaterRoles, "rater role", validCode, codeRule, 1, maxListCodes, at("rater_roles")...)
}

// checkAnalysis checks the analysis plan. Its outcomes name scales, checked
// once the instruments are loaded.
func (s *Study) checkAnalysis(c checker) error {
	a := &s.Analysis
	if l := a.CILevel; !(l > 0 && l < 1) {
		return c.fail("ci_level must be between 0 and 1", "analysis", "ci_level")
	}
	if err := c.count(len(a.Outcomes), 1, maxOutcomes, "outcome", "analysis", "outcomes"); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, o := range a.Outcomes {
		if seen[o] {
			return c.fail(fmt.Sprintf("outcome %s listed twice", quote(o)), "analysis", "outcomes", i)
		}
		seen[o] = true
	}
	s.analysisLines = make([]int, len(a.Analyses))
	for i, an := range a.Analyses {
		s.analysisLines[i] = lineOf(c.root, "analysis", "analyses", i)
		if s.knownAnalyses != nil && !slices.Contains(s.knownAnalyses, an) {
			return c.fail(fmt.Sprintf("unknown analysis %s; want %s", quote(an), strings.Join(s.knownAnalyses, ", ")), "analysis", "analyses", i)
		}
	}
	if err := c.codes(a.Analyses, "analysis", validCode, codeRule, 0, maxOutcomes, "analysis", "analyses"); err != nil {
		return err
	}
	var covariates []string
	for _, d := range s.DemographicDefs {
		covariates = append(covariates, d.Name)
	}
	for i, cv := range a.PropensityCovariates {
		if !slices.Contains(covariates, cv) {
			return c.fail(fmt.Sprintf("unknown covariate %s; want %s", quote(cv), strings.Join(covariates, ", ")), "analysis", "propensity_covariates", i)
		}
	}
	if err := c.codes(a.PropensityCovariates, "covariate", validCode, codeRule, 0, maxOutcomes, "analysis", "propensity_covariates"); err != nil {
		return err
	}
	if a.PrimaryWave != "" {
		if i := slices.Index(s.Waves, a.PrimaryWave); i < 1 {
			return c.fail(fmt.Sprintf("primary wave %s is not a wave after the first; want one of %s", quote(a.PrimaryWave), strings.Join(s.Waves[1:], ", ")), "analysis", "primary_wave")
		}
	}
	if !c.has("analysis", "imputations") {
		a.Imputations = defaultImputations
	} else if err := c.between(a.Imputations, minImputations, maxImputations, "analysis", "imputations"); err != nil {
		return err
	}
	if !c.has("analysis", "delta_grid") {
		a.DeltaGrid = DefaultDeltaGrid()
	} else {
		if err := c.count(len(a.DeltaGrid), 1, maxDeltas, "delta", "analysis", "delta_grid"); err != nil {
			return err
		}
		for i, d := range a.DeltaGrid {
			if math.IsNaN(d) || math.IsInf(d, 0) || math.Abs(d) > 10 {
				return c.fail("a delta must be a number of standard deviations between -10 and 10", "analysis", "delta_grid", i)
			}
		}
	}
	if !c.has("analysis", "bootstrap", "draws") {
		a.Bootstrap.Draws = defaultDraws
		return nil
	}
	return c.between(a.Bootstrap.Draws, minDraws, maxDraws, "analysis", "bootstrap", "draws")
}

func (s *Study) resolve(l *loader, src string, root *yaml.Node) error {
	s.instByName = map[string]*Instrument{}
	s.ValueSets = map[string]*ValueSet{}
	s.UnitCosts = map[string]*UnitCosts{}
	if err := s.loadUprating(l); err != nil {
		var se *Error
		if errors.As(err, &se) {
			return err
		}
		return &Error{File: src, Field: "economics.price_year", Msg: err.Error()}
	}
	items := map[string]string{}
	for i, name := range s.InstrumentNames {
		in, err := s.loadInstrument(l, name, items)
		if err != nil {
			var se *Error
			if errors.As(err, &se) {
				return err
			}
			return &Error{File: src, Line: lineOf(root, "instruments", i), Field: fmt.Sprintf("instruments[%d]", i), Msg: err.Error()}
		}
		s.Instruments = append(s.Instruments, in)
		s.instByName[name] = in
	}
	for i, o := range s.Analysis.Outcomes {
		inst, scale, ok := strings.Cut(o, ".")
		in, found := s.instByName[inst]
		if !ok || !found || !slices.ContainsFunc(in.Scales, func(sc Scale) bool { return sc.Name == scale }) {
			return &Error{File: src, Line: lineOf(root, "analysis", "outcomes", i), Field: fmt.Sprintf("analysis.outcomes[%d]", i), Msg: fmt.Sprintf("%s is not an instrument.scale of the study", quote(o))}
		}
	}
	if err := s.checkBaselines(src); err != nil {
		return err
	}
	if !slices.Contains(s.Analysis.Outcomes, s.Analysis.PrimaryOutcome) {
		return &Error{File: src, Line: lineOf(root, "analysis", "primary_outcome"), Field: "analysis.primary_outcome", Msg: "must be one of the outcomes"}
	}
	s.Sites = map[string]*Site{}
	for i, t := range s.Trusts {
		name := "sites/" + t.Site + ".yaml"
		b, file, err := l.read(name)
		if err != nil {
			return &Error{File: src, Line: lineOf(root, "trusts", i, "site"), Field: fmt.Sprintf("trusts[%d].site", i), Msg: err.Error()}
		}
		site := &Site{}
		sroot, err := decode(b, file, site)
		if err != nil {
			return err
		}
		if site.Trust != t.Code {
			return &Error{File: file, Line: lineOf(sroot, "trust"), Field: "trust", Msg: fmt.Sprintf("site mapping is for %s, but the study uses it for %s", quote(site.Trust), quote(t.Code))}
		}
		if err := s.checkSite(site, checker{file: file, root: sroot}); err != nil {
			return err
		}
		s.Sites[t.Code] = site
	}
	if err := s.checkRedcap(checker{file: src, root: root}); err != nil {
		return err
	}
	tables, err := EmbeddedTables()
	if err != nil {
		return err
	}
	if s.Tables, err = tables.withDemographics(s.DemographicDefs); err != nil {
		return (checker{file: src, root: root}).fail(err.Error(), "demographics")
	}
	if b, err := embedded.ReadFile("tables.yaml"); err == nil {
		l.remember("tables.yaml", b)
	}
	return nil
}

// EmbeddedTables is the warehouse's table schemas. They are the program's
// contract with analysts, not study configuration, so they are always the
// embedded ones.
func EmbeddedTables() (*Tables, error) {
	b, err := embedded.ReadFile("tables.yaml")
	if err != nil {
		return nil, err
	}
	t := &Tables{}
	if _, err := decode(b, "embedded:tables.yaml", t); err != nil {
		return nil, err
	}
	for name, tb := range t.Tables {
		tb.Name = name
		for _, c := range tb.Columns {
			if c.Codes != "" && !slices.Contains(CodeListNames(), c.Codes) {
				return nil, fmt.Errorf("tables.yaml: %s.%s: unknown code list %q", name, c.Name, c.Codes)
			}
		}
	}
	return t, nil
}

// checkDemographics checks the demographics mapping: each name a column
// name that is no other column of the participants export and no other
// code list, each coded one with its codes; it fills s.Demographics.
func (s *Study) checkDemographics(c checker) error {
	if err := c.count(len(s.DemographicDefs), 0, maxDemographics, "demographic", "demographics"); err != nil {
		return err
	}
	s.Demographics = map[string][]string{}
	fixed := s.fixedFields(KindParticipants)
	for _, d := range s.DemographicDefs {
		if err := c.code(d.Name, "demographic", validColumn, columnRule, "demographics", d.Name); err != nil {
			return err
		}
		n := 0
		for _, f := range fixed {
			if f.Name == d.Name {
				n++
			}
		}
		if n > 1 {
			return c.fail(fmt.Sprintf("demographic %s is already a column of the participants export", quote(d.Name)), "demographics", d.Name)
		}
		if _, ok := s.programCodeList(d.Name); ok {
			return c.fail(fmt.Sprintf("demographic %s is the name of another code list", quote(d.Name)), "demographics", d.Name)
		}
		if d.Binary {
			continue
		}
		if err := c.codes(d.Codes, "code", validValueCode, valueCodeRule, 1, maxListCodes, "demographics", d.Name); err != nil {
			return err
		}
		s.Demographics[d.Name] = d.Codes
	}
	return nil
}

func (s *Study) isExportField(name string) bool {
	for _, kind := range []string{KindParticipants, KindFidelity} {
		for _, f := range s.ExportFields(kind) {
			if f.Name == name {
				return true
			}
		}
	}
	return false
}

func (s *Study) loadInstrument(l *loader, name string, seen map[string]string) (*Instrument, error) {
	b, file, err := l.read("instruments/" + name + ".yaml")
	if err != nil {
		return nil, err
	}
	in := &Instrument{}
	root, err := decode(b, file, in)
	if err != nil {
		return nil, err
	}
	c := checker{file: file, root: root}
	fail := c.fail
	if in.Name != name {
		return nil, fail(fmt.Sprintf("name %s does not match the file name", quote(in.Name)), "name")
	}
	if err := c.text(in.Title, maxNameLen, false, "title"); err != nil {
		return nil, err
	}
	for _, k := range []string{"min", "max"} {
		v := in.Min
		if k == "max" {
			v = in.Max
		}
		if v != nil {
			if err := c.between(*v, -maxItemValue, maxItemValue, k); err != nil {
				return nil, err
			}
		}
	}
	if in.ItemPattern == nil {
		for _, k := range []string{"min", "max"} {
			if c.has(k) {
				return nil, fail(k+" is the range of item_pattern's items: without item_pattern, give each item its own", k)
			}
		}
	}
	if p := in.ItemPattern; p != nil {
		if err := c.between(p.Count, 1, maxItems, "item_pattern", "count"); err != nil {
			return nil, err
		}
		if err := c.text(p.Format, maxCodeLen, false, "item_pattern", "format"); err != nil {
			return nil, err
		}
		if n := len(in.Items) + p.Count; n > maxItems {
			return nil, fail(fmt.Sprintf("%d items: at most %d are allowed", n, maxItems), "items")
		}
	}
	if err := in.expandItems(); err != nil {
		return nil, fail(err.Error(), "items")
	}
	if err := c.count(len(in.Items), 1, maxItems, "item", "items"); err != nil {
		return nil, err
	}
	for i, it := range in.Items {
		at := []any{"items", i}
		if in.ItemPattern != nil && i >= len(in.Items)-in.ItemPattern.Count {
			at = []any{"item_pattern", "format"} // a name made from the pattern
		}
		if err := c.code(it.Name, "item name", validColumn, columnRule, at...); err != nil {
			return nil, err
		}
		if s.isFixedField(KindParticipants, it.Name) {
			return nil, fail(fmt.Sprintf("item name %s is already a column of the participants export", quote(it.Name)), at...)
		}
		if it.Min < -maxItemValue || it.Max > maxItemValue {
			return nil, fail(fmt.Sprintf("min and max must be from %d to %d", -maxItemValue, maxItemValue), at...)
		}
		if it.Max < it.Min {
			return nil, fail("max is below min", at...)
		}
		if it.Blank != nil && (*it.Blank < it.Min || *it.Blank > it.Max) {
			return nil, fail("blank must be from min to max", at...)
		}
		if other, dup := seen[it.Name]; dup {
			return nil, fail(fmt.Sprintf("item %s is also an item of %s", quote(it.Name), other), at...)
		}
		seen[it.Name] = name
	}
	if err := c.codes(in.Waves, "wave", validCode, codeRule, 0, maxWaves, "waves"); err != nil {
		return nil, err
	}
	for i, w := range in.Waves {
		if !slices.Contains(s.Waves, w) {
			return nil, fail(fmt.Sprintf("unknown wave %s", quote(w)), "waves", i)
		}
	}
	if err := c.count(len(in.Scales), 1, maxScales, "scale", "scales"); err != nil {
		return nil, err
	}
	scales := map[string]bool{}
	for i := range in.Scales {
		sc := &in.Scales[i]
		where := []any{"scales", i}
		if err := c.code(sc.Name, "scale name", validCode, codeRule, append(where, "name")...); err != nil {
			return nil, err
		}
		if scales[sc.Name] {
			return nil, fail(fmt.Sprintf("scale %s listed twice", quote(sc.Name)), append(where, "name")...)
		}
		for j, item := range sc.Items {
			if _, ok := in.Item(item); !ok {
				return nil, fail(fmt.Sprintf("%s is not an item of %s", quote(item), name), append(where, "items", j)...)
			}
		}
		if err := c.between(sc.MissingAllowed, 0, max(len(in.ScaleItems(sc))-1, 0), append(where, "missing_allowed")...); err != nil {
			return nil, err
		}
		if sc.Better != "" && sc.Better != "higher" && sc.Better != "lower" {
			return nil, fail(fmt.Sprintf("better must be higher or lower, not %s", quote(sc.Better)), append(where, "better")...)
		}
		// Settings of another method would be ignored: refused.
		for _, k := range []struct{ key, methods string }{
			{"items", "sum item valueset cost"}, {"from", "lookup auc"}, {"round", "lookup"}, {"table", "lookup"},
			{"valueset", "valueset"}, {"rho", "gas"}, {"goals", "gas"}, {"unit_costs", "cost"},
		} {
			if c.has(append(where, k.key)...) && !slices.Contains(strings.Fields(k.methods), sc.Method) {
				return nil, fail(fmt.Sprintf("%s is not a setting of method %s", k.key, quote(sc.Method)), append(where, k.key)...)
			}
		}
		switch sc.Method {
		case "sum":
		case "item":
			if len(sc.Items) != 1 {
				return nil, fail("method item needs exactly one item", where...)
			}
		case "lookup":
			if !scales[sc.From] {
				return nil, fail(fmt.Sprintf("from %s is not an earlier scale", quote(sc.From)), append(where, "from")...)
			}
			if len(sc.Table) == 0 {
				return nil, fail("lookup needs a table", where...)
			}
			if err := checkLookup(in, sc); err != "" {
				return nil, fail(err, append(where, "table")...)
			}
			if sc.Round != "half_up" && sc.Round != "" {
				return nil, fail("round must be half_up", append(where, "round")...)
			}
		case "valueset":
			if sc.MissingAllowed != 0 {
				return nil, fail("a value set index cannot allow missing dimensions", append(where, "missing_allowed")...)
			}
			if v := s.Economics.ValueSet; v != "" {
				sc.ValueSet = v // the study's choice (economics.valueset)
			}
			if err := c.code(sc.ValueSet, "value set", validCode, codeRule, append(where, "valueset")...); err != nil {
				return nil, err
			}
			vs, err := s.loadValueSet(l, sc.ValueSet)
			if err != nil {
				var se *Error
				if errors.As(err, &se) {
					return nil, err
				}
				return nil, fail(err.Error(), append(where, "valueset")...)
			}
			for _, t := range vs.Tables() {
				if t.States != nil {
					// A per-state table: five dimensions of five levels.
					items := in.ScaleItems(sc)
					if len(items) != StateDigits {
						return nil, fail(fmt.Sprintf("value set %s is per health state of %d dimensions; the scale has %d items", vs.Name, StateDigits, len(items)), where...)
					}
					for _, item := range items {
						if it, _ := in.Item(item); it.Max-it.Min+1 != 5 {
							return nil, fail(fmt.Sprintf("value set %s is per health state of five levels; %s has %d", vs.Name, item, it.Max-it.Min+1), where...)
						}
					}
					continue
				}
				for _, item := range in.ScaleItems(sc) {
					it, _ := in.Item(item)
					if d, ok := t.Dimensions[item]; !ok || len(d) != it.Max-it.Min+1 {
						return nil, fail(fmt.Sprintf("value set %s has no %d levels for %s", vs.Name, it.Max-it.Min+1, item), where...)
					}
				}
			}
		case "gas":
			if len(sc.Goals) == 0 {
				return nil, fail("gas needs goals", where...)
			}
			if len(sc.Goals) > maxItems {
				return nil, fail(fmt.Sprintf("at most %d goals are allowed", maxItems), append(where, "goals")...)
			}
			if !finite(sc.Rho) || sc.Rho < 0 || sc.Rho >= 1 {
				return nil, fail("rho must be in [0, 1)", append(where, "rho")...)
			}
			for j, g := range sc.Goals {
				_, ok1 := in.Item(g.Level)
				_, ok2 := in.Item(g.Weight)
				if !ok1 || !ok2 {
					return nil, fail("goal level and weight must be items", append(where, "goals", j)...)
				}
			}
		case "cost":
			if sc.MissingAllowed != 0 {
				return nil, fail("a cost cannot allow missing services (a blank never counts as no use)", append(where, "missing_allowed")...)
			}
			if err := c.code(sc.UnitCosts, "unit-cost table", validCode, codeRule, append(where, "unit_costs")...); err != nil {
				return nil, err
			}
			u, err := s.loadUnitCosts(l, sc.UnitCosts)
			if err != nil {
				var se *Error
				if errors.As(err, &se) {
					return nil, err
				}
				return nil, fail(err.Error(), append(where, "unit_costs")...)
			}
			for _, item := range in.ScaleItems(sc) {
				if _, ok := u.Cost(item); !ok {
					return nil, fail(fmt.Sprintf("unit-cost table %s has no cost for %s", u.Name, item), where...)
				}
			}
		case "auc":
			if !scales[sc.From] {
				return nil, fail(fmt.Sprintf("from %s is not an earlier scale", quote(sc.From)), append(where, "from")...)
			}
			if sc.MissingAllowed != 0 {
				return nil, fail("an area under the curve cannot allow missing values", append(where, "missing_allowed")...)
			}
		default:
			return nil, fail(fmt.Sprintf("unknown method %s (sum, item, lookup, valueset, gas, cost, auc)", quote(sc.Method)), append(where, "method")...)
		}
		scales[sc.Name] = true
	}
	return in, nil
}

// checkLookup says what is wrong with a lookup scale's table, or "": one
// finite entry for each raw score of the sum or item scale it is from.
func checkLookup(in *Instrument, sc *Scale) string {
	var from *Scale
	for i := range in.Scales {
		if in.Scales[i].Name == sc.From {
			from = &in.Scales[i]
		}
	}
	if from.Method != "sum" && from.Method != "item" {
		return fmt.Sprintf("a lookup is from a sum or item scale, not %s", quote(from.Method))
	}
	lo, hi := 0, 0
	for _, name := range in.ScaleItems(from) {
		it, _ := in.Item(name)
		lo, hi = lo+it.Min, hi+it.Max
	}
	if len(sc.Table) != hi-lo+1 {
		return fmt.Sprintf("%d entries for raw scores %d..%d", len(sc.Table), lo, hi)
	}
	if !finite(sc.Table...) {
		return "entries must be finite numbers"
	}
	return ""
}

func (s *Study) loadValueSet(l *loader, name string) (*ValueSet, error) {
	if vs, ok := s.ValueSets[name]; ok {
		return vs, nil
	}
	b, file, err := l.read("valuesets/" + name + ".yaml")
	if err != nil {
		return nil, err
	}
	vs := &ValueSet{}
	root, err := decode(b, file, vs)
	if err != nil {
		return nil, err
	}
	c := checker{file: file, root: root}
	if vs.Name != name {
		return nil, c.fail(fmt.Sprintf("name %s does not match the file name", quote(vs.Name)), "name")
	}
	if err := c.text(vs.Title, maxNameLen, false, "title"); err != nil {
		return nil, err
	}
	if err := c.text(vs.Version, maxCodeLen, false, "version"); err != nil {
		return nil, err
	}
	if err := c.text(vs.Source, maxNameLen, true, "source"); err != nil {
		return nil, err
	}
	checkDims := func(dims map[string][]float64, where ...any) error {
		for _, item := range sortedKeys(dims) {
			d := dims[item]
			if len(d) > maxTableLen {
				return c.fail(fmt.Sprintf("%d levels: at most %d are allowed", len(d), maxTableLen), append(where, item)...)
			}
			if !finite(d...) {
				return c.fail("decrements must be finite numbers", append(where, item)...)
			}
		}
		return nil
	}
	// checkTable checks one table: exactly one of dimensions and states.
	checkTable := func(dims map[string][]float64, states map[string]float64, where ...any) error {
		switch {
		case dims != nil && states != nil:
			return c.fail("a value set has dimensions or states, not both", append(where, "states")...)
		case states != nil:
			return checkStates(c, states, where...)
		case len(dims) == 0:
			return c.fail("a value set needs dimensions, states or strata", where...)
		}
		return checkDims(dims, append(where, "dimensions")...)
	}
	if len(vs.Strata) > 0 {
		if vs.Dimensions != nil || vs.States != nil {
			field := "dimensions"
			if vs.States != nil {
				field = "states"
			}
			return nil, c.fail("a value set has "+field+" or strata, not both", field)
		}
		seen := map[[2]string]bool{}
		for i, st := range vs.Strata {
			for _, f := range []struct{ field, v string }{{"age_band", st.AgeBand}, {"gender", st.Gender}} {
				if codes := s.Demographics[f.field]; len(codes) > 0 && !slices.Contains(codes, f.v) {
					return nil, c.fail(fmt.Sprintf("%s %s is not one of the study's codes", f.field, quote(f.v)), "strata", i, f.field)
				}
				if f.v == "" {
					return nil, c.fail(f.field+" is required", "strata", i, f.field)
				}
			}
			k := [2]string{st.AgeBand, st.Gender}
			if seen[k] {
				return nil, c.fail("a second stratum for the same age band and gender", "strata", i)
			}
			seen[k] = true
			if err := checkTable(st.Dimensions, st.States, "strata", i); err != nil {
				return nil, err
			}
		}
	} else if err := checkTable(vs.Dimensions, vs.States); err != nil {
		return nil, err
	}
	s.ValueSets[name] = vs
	return vs, nil
}

// checkStates checks a per-state table: every key five digits 1–5, all
// 3,125 profiles, every utility finite and in [−1, 1]. (A key given twice
// is refused by the YAML decoder.)
func checkStates(c checker, states map[string]float64, where ...any) error {
	at := append(slices.Clip(where), "states")
	have := make([]bool, StateCount)
	for _, k := range sortedKeys(states) {
		i, ok := StateIndex(k)
		if !ok {
			// The key is untrusted: quoted and cut in the message, and
			// the field is the table, at the key's line.
			return &Error{File: c.file, Line: lineOf(c.root, append(at, k)...), Field: fieldName(at), Msg: fmt.Sprintf("health state %s is not five digits 1–5", quote(k))}
		}
		have[i] = true
		if v := states[k]; !finite(v) || v < -1 || v > 1 {
			return c.fail(fmt.Sprintf("the utility of %s must be a finite number between −1 and 1", k), append(at, k)...)
		}
	}
	for i, ok := range have {
		if !ok {
			p := make([]byte, StateDigits)
			for k, r := StateDigits-1, i; k >= 0; k, r = k-1, r/5 {
				p[k] = byte('1' + r%5)
			}
			return c.fail(fmt.Sprintf("health state %s is missing: a per-state value set gives all %d", p, StateCount), at...)
		}
	}
	return nil
}

func fieldName(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(k)
		case int:
			fmt.Fprintf(&b, "[%d]", k)
		}
	}
	return b.String()
}

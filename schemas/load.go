package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
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
		b, err := os.ReadFile(p)
		if err == nil {
			l.remember(name, b)
			return b, p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, p, fmt.Errorf("read %s: %w", p, err)
		}
	}
	b, err := embedded.ReadFile(name)
	if err != nil {
		return nil, name, fmt.Errorf("definition %s not found beside the study file nor built in", name)
	}
	l.remember(name, b)
	return b, "embedded:" + name, nil
}

func (l *loader) remember(name string, b []byte) {
	l.names = append(l.names, name)
	l.content[name] = b
}

// decode parses strict YAML (unknown fields are errors) into v and returns
// the document node for locating later errors.
func decode(b []byte, file string, v any) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return nil, yamlError(file, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, yamlError(file, err)
	}
	return &root, nil
}

func yamlError(file string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return parseYAMLMsg(file, te.Errors[0])
	}
	return parseYAMLMsg(file, strings.TrimPrefix(err.Error(), "yaml: "))
}

func parseYAMLMsg(file, msg string) error {
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	return &Error{File: file, Line: line, Msg: msg}
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

// Defaults of the ingest settings where 0 is a valid choice.
const (
	DefaultSettleSeconds    = 5
	DefaultFutureExportDays = 1
)

// Load reads a study definition from file, or the embedded default when file
// is empty, resolves the instruments, value sets and site mappings it names
// and checks them all. Mistakes come back as *Error naming file, line and field.
func Load(file string) (*Study, error) {
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
		b, err = os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read study definition: %w", err)
		}
		l.dir = filepath.Dir(file)
		l.remember("study.yaml", b)
		src = file
	}
	s := &Study{Source: src}
	// Defaults for settings where 0 means something: a study file that
	// leaves them out keeps these.
	s.Ingest.SettleSeconds = DefaultSettleSeconds
	s.Ingest.FutureExportDays = DefaultFutureExportDays
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

func (s *Study) check(src string, root *yaml.Node) error {
	fail := func(msg string, path ...any) error {
		return &Error{File: src, Line: lineOf(root, path...), Field: fieldName(path), Msg: msg}
	}
	if len(s.Trusts) == 0 {
		return fail("at least one trust is required", "trusts")
	}
	if len(s.Arms) != 2 {
		return fail("exactly two arms are required (intervention first, then control)", "arms")
	}
	if len(s.Waves) < 2 {
		return fail("at least two waves are required (the first is the baseline)", "waves")
	}
	if len(s.Periods) == 0 {
		return fail("at least one rating period is required", "periods")
	}
	s.trustByCode = map[string]*Trust{}
	for i := range s.Trusts {
		t := &s.Trusts[i]
		if t.Code == "" || strings.ContainsAny(t.Code, "_-= /") {
			return fail("trust code must be non-empty, without _ - = / or spaces", "trusts", i, "code")
		}
		if _, dup := s.trustByCode[t.Code]; dup {
			return fail(fmt.Sprintf("trust %q listed twice", t.Code), "trusts", i, "code")
		}
		if t.Site == "" {
			return fail("site is required", "trusts", i)
		}
		s.trustByCode[t.Code] = t
	}
	s.teamByCode = map[string]*Team{}
	armsSeen := map[string]map[string]bool{}
	for i := range s.Teams {
		t := &s.Teams[i]
		if t.Code == "" {
			return fail("team code is required", "teams", i)
		}
		if _, dup := s.teamByCode[t.Code]; dup {
			return fail(fmt.Sprintf("team %q listed twice", t.Code), "teams", i, "code")
		}
		if _, ok := s.trustByCode[t.Trust]; !ok {
			return fail(fmt.Sprintf("unknown trust %q; the study's trusts are %s", t.Trust, strings.Join(s.TrustCodes(), ", ")), "teams", i, "trust")
		}
		if !slices.Contains(s.Arms, t.Arm) {
			return fail(fmt.Sprintf("unknown arm %q; want one of %s", t.Arm, strings.Join(s.Arms, ", ")), "teams", i, "arm")
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
	for _, k := range []string{"age_band", "gender", "ethnicity", "diagnosis_group"} {
		if len(s.Demographics[k]) == 0 {
			return fail("code list is required", "demographics", k)
		}
	}
	f := &s.Fidelity
	if f.Max <= f.Min {
		return fail("max must exceed min", "fidelity", "max")
	}
	if len(f.Components) == 0 {
		return fail("at least one component is required", "fidelity", "components")
	}
	if len(f.Bands) == 0 {
		return fail("at least one band is required", "fidelity", "bands")
	}
	for i := 1; i < len(f.Bands); i++ {
		if f.Bands[i].MinPct >= f.Bands[i-1].MinPct {
			return fail("bands must go from the highest threshold down", "fidelity", "bands", i, "min_pct")
		}
	}
	if len(f.RaterRoles) == 0 {
		return fail("at least one rater role is required", "fidelity", "rater_roles")
	}
	if s.Disclosure.MinCount < 1 {
		return fail("min_count must be at least 1", "disclosure", "min_count")
	}
	if s.Ingest.SilenceDays <= 0 {
		s.Ingest.SilenceDays = 14
	}
	if s.Ingest.SettleSeconds < 0 {
		return fail("settle_seconds must be 0 or more", "ingest", "settle_seconds")
	}
	if s.Ingest.FutureExportDays < 0 {
		return fail("future_export_days must be 0 or more", "ingest", "future_export_days")
	}
	s.Ingest.HoldLoss, s.Ingest.HoldRejected = 0.05, 0.10
	for _, g := range []struct {
		in   *float64
		out  *float64
		name string
	}{{s.Ingest.HoldLossYAML, &s.Ingest.HoldLoss, "hold_participant_loss"}, {s.Ingest.HoldRejYAML, &s.Ingest.HoldRejected, "hold_rejected_rows"}} {
		if g.in == nil {
			continue
		}
		if !(*g.in >= 0 && *g.in <= 1) {
			return fail("must be a fraction from 0 to 1", "ingest", g.name)
		}
		*g.out = *g.in
	}
	a := &s.Analysis
	if a.CILevel <= 0 || a.CILevel >= 1 {
		return fail("ci_level must be between 0 and 1", "analysis", "ci_level")
	}
	for i, an := range a.Analyses {
		if !slices.Contains([]string{"primary", "wild_bootstrap", "mixed", "change", "weighted", "fidelity_dose"}, an) {
			return fail(fmt.Sprintf("unknown analysis %q", an), "analysis", "analyses", i)
		}
	}
	for i, c := range a.PropensityCovariates {
		if !slices.Contains([]string{"age_band", "gender", "ethnicity", "living_alone", "diagnosis_group"}, c) {
			return fail(fmt.Sprintf("unknown covariate %q", c), "analysis", "propensity_covariates", i)
		}
	}
	return nil
}

func (s *Study) resolve(l *loader, src string, root *yaml.Node) error {
	s.instByName = map[string]*Instrument{}
	s.ValueSets = map[string]*ValueSet{}
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
			return &Error{File: src, Line: lineOf(root, "analysis", "outcomes", i), Field: fmt.Sprintf("analysis.outcomes[%d]", i), Msg: fmt.Sprintf("%q is not an instrument.scale of the study", o)}
		}
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
			return &Error{File: file, Line: lineOf(sroot, "trust"), Field: "trust", Msg: fmt.Sprintf("site mapping is for %q, but the study uses it for %q", site.Trust, t.Code)}
		}
		if err := site.check(); err != nil {
			return &Error{File: file, Msg: err.Error()}
		}
		for alias, canon := range site.Headers {
			if !s.isExportField(canon) {
				return &Error{File: file, Line: lineOf(sroot, "headers", alias), Field: "headers." + alias, Msg: fmt.Sprintf("%q is not a canonical column", canon)}
			}
		}
		s.Sites[t.Code] = site
	}
	tables, err := EmbeddedTables()
	if err != nil {
		return err
	}
	s.Tables = tables
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
	}
	return t, nil
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
	fail := func(msg string, path ...any) error {
		return &Error{File: file, Line: lineOf(root, path...), Field: fieldName(path), Msg: msg}
	}
	if in.Name != name {
		return nil, fail(fmt.Sprintf("name %q does not match the file name", in.Name), "name")
	}
	if err := in.expandItems(); err != nil {
		return nil, fail(err.Error(), "items")
	}
	if len(in.Items) == 0 {
		return nil, fail("no items", "items")
	}
	for i, it := range in.Items {
		if it.Max < it.Min {
			return nil, fail("max is below min", "items", i)
		}
		if other, dup := seen[it.Name]; dup {
			return nil, fail(fmt.Sprintf("item %q is also an item of %s", it.Name, other), "items", i)
		}
		seen[it.Name] = name
	}
	for i, w := range in.Waves {
		if !slices.Contains(s.Waves, w) {
			return nil, fail(fmt.Sprintf("unknown wave %q", w), "waves", i)
		}
	}
	scales := map[string]bool{}
	for i := range in.Scales {
		sc := &in.Scales[i]
		where := []any{"scales", i}
		scales[sc.Name] = true
		for j, item := range sc.Items {
			if _, ok := in.Item(item); !ok {
				return nil, fail(fmt.Sprintf("%q is not an item of %s", item, name), append(where, "items", j)...)
			}
		}
		switch sc.Method {
		case "sum":
		case "item":
			if len(sc.Items) != 1 {
				return nil, fail("method item needs exactly one item", where...)
			}
		case "lookup":
			if !scales[sc.From] || sc.From == sc.Name {
				return nil, fail(fmt.Sprintf("from %q is not an earlier scale", sc.From), append(where, "from")...)
			}
			if len(sc.Table) == 0 {
				return nil, fail("lookup needs a table", where...)
			}
			if sc.Round != "half_up" && sc.Round != "" {
				return nil, fail("round must be half_up", append(where, "round")...)
			}
		case "valueset":
			vs, err := s.loadValueSet(l, sc.ValueSet)
			if err != nil {
				return nil, fail(err.Error(), append(where, "valueset")...)
			}
			for _, item := range in.ScaleItems(sc) {
				it, _ := in.Item(item)
				if d, ok := vs.Dimensions[item]; !ok || len(d) != it.Max-it.Min+1 {
					return nil, fail(fmt.Sprintf("value set %s has no %d levels for %s", vs.Name, it.Max-it.Min+1, item), where...)
				}
			}
		case "gas":
			if len(sc.Goals) == 0 {
				return nil, fail("gas needs goals", where...)
			}
			if sc.Rho < 0 || sc.Rho >= 1 {
				return nil, fail("rho must be in [0, 1)", append(where, "rho")...)
			}
			for j, g := range sc.Goals {
				_, ok1 := in.Item(g.Level)
				_, ok2 := in.Item(g.Weight)
				if !ok1 || !ok2 {
					return nil, fail("goal level and weight must be items", append(where, "goals", j)...)
				}
			}
		default:
			return nil, fail(fmt.Sprintf("unknown method %q (sum, item, lookup, valueset, gas)", sc.Method), append(where, "method")...)
		}
	}
	return in, nil
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
	if _, err := decode(b, file, vs); err != nil {
		return nil, err
	}
	s.ValueSets[name] = vs
	return vs, nil
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

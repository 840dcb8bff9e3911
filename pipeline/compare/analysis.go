package compare

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
	"github.com/connectingpeople/cpi/stats"
)

// Analysis is one analysis of the analysis plan (DESIGN §9): one file
// (analysis_<name>.go) each, listed in Registry. The stage fits every
// analysis the study names to every outcome at every follow-up wave.
type Analysis interface {
	// Name is the analysis's name in the study definition and in effects.
	Name() string
	// Methods are the methods it reports, one effects row each, in order.
	Methods() []string
	// Term is the coefficient it reports (arm_intervention, high_fidelity).
	Term() string
	// Needs names the columns of the analysis frame it reads: "y" (the
	// outcome at the follow-up wave), "y_baseline", "arm", "trust",
	// "team", a demographic field, "fidelity_band".
	Needs() []string
	// Population is who it fits: the frame's population.
	Population() Population
	// Model sets up the model on m (term column, response, weights); a
	// non-empty return says why there is no model (null rows with that
	// note).
	Model(m *Model) (skip string)
	// FitSuff fits the model from the per-team sums; false sends it to
	// FitDense (the sums cannot settle it).
	FitSuff(fr *fitRows, sums *stats.ClusterSums, des colDesign) ([]effectRow, bool)
	// FitDense fits the model from its design matrix.
	FitDense(fr *fitRows, x *mat.Dense, cluster []int, y, w []float64) []effectRow
}

// TableAnalysis is implemented by an analysis that is not fitted per
// outcome and wave into effects but once, on the whole analysis frame,
// into a table of its own (cost_effectiveness). The stage leaves it out of
// the per-outcome loop, runs it after the effects, and its Tables are
// among the stage's outputs.
type TableAnalysis interface {
	Analysis
	Tables() []string
	Run(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, d *cmpColumns) error
}

// Registry lists the analyses cpi knows, in the order of the default
// analysis plan. Adding one is a new file with a type implementing
// Analysis, one entry here and its name in the study's analysis.analyses.
var Registry = []Analysis{
	primaryAnalysis{},
	wildAnalysis{},
	mixedAnalysis{},
	changeAnalysis{},
	weightedAnalysis{},
	fidelityDoseAnalysis{},
	ittMIAnalysis{},
	ittDeltaAnalysis{},
	costEffectivenessAnalysis{},
}

// SelfFitter is an Analysis that fits itself from its Model instead of
// through FitSuff and FitDense (which fit one data set): multiple
// imputation fits M completed data sets and pools them. The stage calls
// Fit after Model and the pre-fit check (check); its FitSuff and FitDense
// are not called.
type SelfFitter interface {
	Fit(m *Model) []effectRow
}

// Names lists the registry's analysis names (for schemas.KnownAnalyses).
func Names() []string {
	out := make([]string, len(Registry))
	for i, a := range Registry {
		out[i] = a.Name()
	}
	return out
}

// Lookup returns the registered analysis of a name.
func Lookup(name string) (Analysis, bool) {
	i := slices.IndexFunc(Registry, func(a Analysis) bool { return a.Name() == name })
	if i < 0 {
		return nil, false
	}
	return Registry[i], true
}

// AnalysisMethods lists each registered analysis's methods in effects (an
// analysis with a table of its own, a TableAnalysis, has none there).
func AnalysisMethods() map[string][]string {
	out := map[string][]string{}
	for _, a := range Registry {
		if _, ok := a.(TableAnalysis); ok {
			out[a.Name()] = nil
			continue
		}
		out[a.Name()] = a.Methods()
	}
	return out
}

// CheckStudy checks the study's analysis plan against the registry; an
// unknown analysis is refused naming the study file, line and field
// (schemas.Load with schemas.KnownAnalyses does the same at load time).
func CheckStudy(s *schemas.Study) error {
	for i, name := range s.Analysis.Analyses {
		if _, ok := Lookup(name); !ok {
			return &schemas.Error{File: s.Source, Line: s.AnalysisLine(i), Field: fmt.Sprintf("analysis.analyses[%d]", i),
				Msg: fmt.Sprintf("unknown analysis %q; want %s", name, strings.Join(Names(), ", "))}
		}
	}
	return nil
}

// Population is the population of an analysis: by default the complete
// cases of the outcome (not withdrawn; the outcome at the follow-up wave
// and, when it has one, at baseline; in a team and trust; in one of the two
// arms), less whoever Exclude leaves out. Analyses with the same Key share
// one frame, so a population with other settings needs a Key of its own.
type Population struct {
	Key string
	// KeepWithdrawn keeps the withdrawn; KeepIncomplete keeps participants
	// missing the outcome at the wave or at baseline, with NaN in the
	// frame's yFU and yBase: such an analysis must fill them in Model
	// (impute) before the shared fitting code, which needs complete rows.
	KeepWithdrawn, KeepIncomplete bool
	// Exclude, when not nil, returns for the outcome the reason (an index
	// into dropReasons) to leave participant i out, or −1 (nil: none).
	Exclude func(c *outcomeComparison) func(i int) int
	// CompleteLane: fitted in the complete cases' lane, on their frame if Exclude gives nil.
	CompleteLane bool
}

// completeCases is the population of most analyses.
var completeCases = Population{}

// Model is one analysis's model of one outcome at one follow-up wave, as
// Analysis.Model sets it up.
type Model struct {
	C *outcomeComparison
	// X is the term's column (default: arm), Y the response (default: y
	// at the follow-up wave), WithBase whether y_baseline is a column
	// (default: when the outcome has a baseline), Weights the rows'
	// weights (nil: none).
	X, Y     []float64
	WithBase bool
	Weights  []float64
	// Balance rows and a note on the weights (weighted).
	Balance    []balanceRow
	WeightNote string
	// Shared: the model is y ~ arm + y_baseline + trust unweighted, whose
	// sums primary, wild_bootstrap and mixed share.
	Shared bool
	// NeedWeights: no fit without weights (weighted).
	NeedWeights bool

	a     Analysis
	frame *colFrame
}

// Frame is the analysis's frame (built on first use).
func (m *Model) Frame() *colFrame {
	if m.frame == nil {
		m.frame = m.C.frame(m.a.Population())
		m.X, m.Y, m.WithBase = m.frame.arm, m.frame.yFU, m.C.hasBase
	}
	return m.frame
}

package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// derivedStage is a stage of `cpi run` after ingest, with the tables it
// reads and writes, so a run does only what new inputs require.
type derivedStage struct {
	name    string
	inputs  []string // tables read
	outputs []string // tables written, or report files under reports/
	run     Stage
}

// derivedStages are the stages after ingest, in order.
var derivedStages = []derivedStage{
	{"score", []string{"responses", "participants"}, []string{"scores", "reliability"}, Score},
	{"fidelity", []string{"fidelity_ratings"}, []string{"fidelity", "fidelity_components"}, Fidelity},
	{"compare", []string{"participants", "scores", "fidelity"}, []string{"effects", "balance", "flow"}, Compare},
	{"report fidelity", []string{"fidelity", "fidelity_components"}, []string{"reports/fidelity-*.html"}, WriteFidelityReports},
	{"report study", []string{"participants", "scores", "reliability", "effects", "balance", "flow", "fidelity"}, []string{"reports/study-report.html"}, WriteStudyReport},
}

// RunAll is every stage of `cpi run`: ingest whatever is in the inbox, then
// each later stage only when one of its input tables was rewritten in this
// run, one of its outputs is missing, or the study definition or program
// changed since the tables were derived (see derivedStage.why). A run with
// nothing new rewrites no table and says so in its summary.
func RunAll(inbox string) []Stage {
	stages := []Stage{Ingest([]string{inbox})}
	for _, d := range derivedStages {
		stages = append(stages, d.incremental())
	}
	stages = append(stages, markDerived)
	return stages
}

func (d derivedStage) incremental() Stage {
	return func(ctx context.Context, env Env, tx *Tx) error {
		because := d.why(env, tx)
		if len(because) == 0 {
			tx.Summary.StagesSkipped = append(tx.Summary.StagesSkipped, d.name)
			return nil
		}
		if err := d.run(ctx, env, tx); err != nil {
			return err
		}
		tx.Summary.Rebuilt = append(tx.Summary.Rebuilt, Rebuild{Stage: d.name, Outputs: slices.Clone(d.outputs), Because: because})
		return nil
	}
}

// why says what makes the stage's outputs out of date, nothing when they
// are not: the study definition or the program changed since they were
// made, an input table was rewritten in this run, an output is missing.
func (d derivedStage) why(env Env, tx *Tx) []string {
	var because, missing []string
	for _, out := range d.outputs {
		if !outputExists(tx, out) {
			missing = append(missing, out)
		}
	}
	if was := tx.Ledger.DerivedWith; was != derivedKey(env) {
		hash, vers, _ := strings.Cut(was, " ")
		switch {
		case was == "":
			if len(missing) == 0 {
				because = append(because, "not built by cpi run before")
			}
		default:
			if hash != env.Study.Hash {
				because = append(because, "study definition changed")
			}
			if vers != env.Version {
				because = append(because, "program version changed")
			}
		}
	}
	written := tx.Written()
	for _, in := range d.inputs {
		if slices.Contains(written, in) {
			because = append(because, in+" changed")
		}
	}
	if len(missing) > 0 {
		because = append(because, "output missing: "+strings.Join(missing, ", "))
	}
	return because
}

// outputExists reports whether a stage's output is in the generation: a
// table folder with files, or report files (a glob under reports/).
func outputExists(tx *Tx, out string) bool {
	if strings.HasPrefix(out, "reports/") {
		m, err := filepath.Glob(tx.Path(out))
		return err == nil && len(m) > 0
	}
	entries, err := os.ReadDir(tx.Path("tables", out))
	return err == nil && len(entries) > 0
}

// derivedKey names what derived tables depend on besides their inputs.
func derivedKey(env Env) string { return env.Study.Hash + " " + env.Version }

// markDerived records under which study definition and program the derived
// tables were made.
func markDerived(ctx context.Context, env Env, tx *Tx) error {
	tx.Ledger.DerivedWith = derivedKey(env)
	return nil
}

package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"slices"
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
	{"report fidelity", []string{"fidelity", "fidelity_components"}, []string{"reports/"}, WriteFidelityReports},
	{"report study", []string{"participants", "scores", "reliability", "effects", "balance", "flow", "fidelity"}, []string{"reports/study-report.html"}, WriteStudyReport},
}

// RunAll is every stage of `cpi run`: ingest whatever is in the inbox, then
// each later stage only when one of its input tables was rewritten in this
// run, one of its outputs is missing, or the study definition or program
// changed since the tables were derived. A run with nothing new rewrites no
// table and says so in its summary.
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
		if d.needed(env, tx) {
			return d.run(ctx, env, tx)
		}
		tx.Summary.StagesSkipped = append(tx.Summary.StagesSkipped, d.name)
		return nil
	}
}

func (d derivedStage) needed(env Env, tx *Tx) bool {
	if tx.Ledger.DerivedWith != derivedKey(env) {
		return true
	}
	written := tx.Written()
	for _, in := range d.inputs {
		if slices.Contains(written, in) {
			return true
		}
	}
	for _, out := range d.outputs {
		p := tx.Path("tables", out)
		if filepath.Dir(out) == "reports" || out == "reports/" {
			p = tx.Path(out)
		}
		if entries, err := os.ReadDir(p); err == nil {
			if len(entries) == 0 {
				return true
			}
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return true
		}
	}
	return false
}

// derivedKey names what derived tables depend on besides their inputs.
func derivedKey(env Env) string { return env.Study.Hash + " " + env.Version }

// markDerived records under which study definition and program the derived
// tables were made.
func markDerived(ctx context.Context, env Env, tx *Tx) error {
	tx.Ledger.DerivedWith = derivedKey(env)
	if len(tx.Written()) == 0 && tx.Summary.FilesNew == 0 {
		tx.Summary.NothingNew = true
	}
	return nil
}

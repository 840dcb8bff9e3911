package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/connectingpeople/cpi/pipeline/compare"
	"github.com/connectingpeople/cpi/pipeline/fidelity"
	"github.com/connectingpeople/cpi/pipeline/ingest"
	fidelityreport "github.com/connectingpeople/cpi/pipeline/report/fidelity"
	"github.com/connectingpeople/cpi/pipeline/report/study"
	"github.com/connectingpeople/cpi/pipeline/score"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// DerivedStages are the stages after ingest, in the order `cpi run` runs
// them.
func DerivedStages() []warehouse.StageDef {
	return []warehouse.StageDef{
		{Name: "score", Inputs: []string{"responses", "participants"}, Outputs: []string{"scores", "reliability", "service_sums"}, Run: score.Score},
		{Name: "fidelity", Inputs: []string{"fidelity_ratings"}, Outputs: []string{"fidelity", "fidelity_components"}, Run: fidelity.Fidelity},
		{Name: "compare", Inputs: []string{"participants", "interviews", "scores", "service_sums", "fidelity"}, Outputs: []string{"effects", "balance", "trust_effects", "descriptives", "service_use", "missing_data", "tipping_point", "flow", "cost_effectiveness", "ce_bootstrap"}, Run: compare.Compare},
		{Name: "report fidelity", Inputs: []string{"fidelity", "fidelity_components", "fidelity_ratings", "ingest_files"}, Outputs: []string{"reports/fidelity-*.html"}, Run: fidelityreport.WriteReports},
		{Name: "report study", Inputs: []string{"participants", "scores", "reliability", "effects", "balance", "trust_effects", "descriptives", "missing_data", "tipping_point", "service_use", "cost_effectiveness", "ce_bootstrap", "flow", "fidelity", "ingest_files"}, Outputs: []string{"reports/study-report.html"}, Run: study.WriteReport},
	}
}

// LookupStage returns the derived stage of that name.
func LookupStage(name string) (warehouse.StageDef, bool) {
	for _, d := range DerivedStages() {
		if d.Name == name {
			return d, true
		}
	}
	return warehouse.StageDef{}, false
}

// producer names the stage that writes an output.
func producer(output string) string {
	if slices.Contains(warehouse.IngestOutputs, output) {
		return "ingest"
	}
	for _, d := range DerivedStages() {
		if slices.Contains(d.Outputs, output) {
			return d.Name
		}
	}
	return ""
}

// ErrStale is wrapped by the error of a stage asked to build on inputs that
// are missing or out of date.
var ErrStale = errors.New("inputs missing or out of date")

// Checked is the stage d for a command that runs it alone: it refuses when
// an input is missing or out of date, and records its outputs' lineage.
func Checked(d warehouse.StageDef) warehouse.Stage {
	return func(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
		if msg := inputProblem(env, tx.Ledger, d); msg != "" {
			return fmt.Errorf("%w: %s", ErrStale, msg)
		}
		return runRecorded(ctx, env, tx, d)
	}
}

// Incremental is the stage d for `cpi run`: it runs only when its outputs
// are stale (or were never built), and records their lineage.
func Incremental(d warehouse.StageDef) warehouse.Stage {
	return func(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
		why := staleness(env, tx.Ledger, d)
		if len(why) == 0 {
			tx.Summary.StagesSkipped = append(tx.Summary.StagesSkipped, d.Name)
			return nil
		}
		tx.Summary.Rebuilt = append(tx.Summary.Rebuilt, warehouse.Rebuild{Stage: d.Name, Outputs: d.Outputs, Because: why})
		return runRecorded(ctx, env, tx, d)
	}
}

func runRecorded(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, d warehouse.StageDef) error {
	inputs := warehouse.InputsNow(env, tx.Ledger, d.Inputs)
	if err := d.Run(ctx, env, tx); err != nil {
		return err
	}
	return warehouse.RecordOutputs(ctx, env, tx, d.Name, d.Outputs, inputs)
}

// RunAll is every stage of `cpi run`: ingest whatever is in the inbox, then
// each later stage whose outputs are out of date.
func RunAll(inbox string) []warehouse.Stage {
	stages := []warehouse.Stage{ingest.Ingest([]string{inbox})}
	for _, d := range DerivedStages() {
		stages = append(stages, Incremental(d))
	}
	return stages
}

// Status writes every output of the warehouse: current, stale (and why),
// never built, or damaged; which stage built it, when, and from what.
func Status(ctx context.Context, env warehouse.Env, dir string, w io.Writer) error {
	wh, gen, l, err := warehouse.OpenCurrent(dir)
	if err != nil {
		return err
	}
	damaged := map[string][]string{}
	if err := warehouse.VerifyOutputs(ctx, gen, l, false); err != nil {
		var de *warehouse.DamageError
		if !errors.As(err, &de) {
			return err
		}
		for _, p := range de.Problems {
			o, rest, _ := strings.Cut(p, ": ")
			damaged[o] = append(damaged[o], rest)
		}
	}
	fmt.Fprintf(w, "warehouse %s, generation %s\n", wh.Dir, filepath.Base(gen))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(o, state string) {
		r := l.Outputs[o]
		if r == nil {
			fmt.Fprintf(tw, "  %s\t%s\n", o, state)
			return
		}
		var from []string
		keys := make([]string, 0, len(r.Inputs))
		for k := range r.Inputs {
			if k != warehouse.InputStudy && k != warehouse.InputProgram {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			from = append(from, k+" "+warehouse.ShortSHA(r.Inputs[k]))
		}
		if v := r.Inputs[warehouse.InputStudy]; v != env.Study.Hash {
			from = append(from, "study definition "+warehouse.ShortSHA(v))
		}
		if v := r.Inputs[warehouse.InputProgram]; v != env.Version {
			from = append(from, "cpi "+v)
		}
		built := fmt.Sprintf("run %d, %s, %d files, hash %s", r.RunID, r.BuiltAt.Format("2006-01-02 15:04Z"), len(r.Files), warehouse.ShortSHA(r.Hash))
		if len(from) > 0 {
			built += "; from " + strings.Join(from, ", ")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", o, state, built)
	}
	fmt.Fprintln(tw, "ingest")
	for _, o := range warehouse.IngestOutputs {
		state := "current"
		switch {
		case damaged[o] != nil:
			state = "DAMAGED: " + strings.Join(damaged[o], "; ")
		case l.Outputs[o] == nil:
			state = "nothing received yet"
		case l.Outputs[o].Inputs[warehouse.InputStudy] != env.Study.Hash:
			state = "read under another study definition (cpi rebuild reads the archive again)"
		}
		line(o, state)
	}
	for _, d := range DerivedStages() {
		fmt.Fprintf(tw, "%s\n", d.Name)
		why := staleness(env, l, d)
		for _, o := range d.Outputs {
			state := "current"
			switch {
			case damaged[o] != nil:
				state = "DAMAGED: " + strings.Join(damaged[o], "; ")
			case l.Outputs[o] == nil:
				state = "never built"
			case len(why) > 0:
				state = "STALE (" + strings.Join(why, ", ") + ")"
			}
			line(o, state)
		}
	}
	var held []string
	for _, f := range l.Files {
		if f.Status == warehouse.StatusHeld {
			held = append(held, fmt.Sprintf("  %s (%s)", f.Name, f.Reason))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(held) > 0 {
		fmt.Fprintf(w, "held exports, waiting for a newer export or `cpi accept`:\n%s\n", strings.Join(held, "\n"))
	}
	return nil
}

// ReadyFor checks, without changing anything, that the warehouse at dir
// holds current inputs for the named stage (a report written outside the
// warehouse, say): an error wrapping ErrStale when one is missing or out of
// date, a *DamageError when files differ from the ledger.
func ReadyFor(ctx context.Context, env warehouse.Env, dir, stage string) error {
	d, ok := LookupStage(stage)
	if !ok {
		return fmt.Errorf("no stage %q", stage)
	}
	_, gen, l, err := warehouse.OpenCurrent(dir)
	if err != nil {
		return err
	}
	if gen == "" {
		return fmt.Errorf("%w: warehouse %s has nothing committed yet: run `cpi run` (or `cpi ingest`) first", ErrStale, dir)
	}
	if err := warehouse.VerifyOutputs(ctx, gen, l, false); err != nil {
		return err
	}
	if l.Outputs == nil {
		return fmt.Errorf("%w: the warehouse was written by an older cpi: run `cpi run` once first", ErrStale)
	}
	if msg := inputProblem(env, l, d); msg != "" {
		return fmt.Errorf("%w: %s", ErrStale, msg)
	}
	return nil
}

// staleness says why a stage's outputs are out of date ("" entries never):
// an output never built, or an input that changed since they were built.
// Nil means every output is current.
func staleness(env warehouse.Env, l *warehouse.Ledger, d warehouse.StageDef) []string {
	now := warehouse.InputsNow(env, l, d.Inputs)
	var why []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			why = append(why, s)
		}
	}
	// Reasons in a fixed order: the study and program, then the inputs as
	// the stage declares them, then outputs never built.
	keys := append([]string{warehouse.InputStudy, warehouse.InputProgram}, d.Inputs...)
	var never []string
	for _, o := range d.Outputs {
		r := l.Outputs[o]
		if r == nil {
			never = append(never, o)
			continue
		}
		for _, k := range keys {
			if r.Inputs[k] != now[k] {
				add(k + " changed")
			}
		}
	}
	if len(never) > 0 {
		add("not built yet: " + strings.Join(never, ", "))
	}
	return why
}

// inputProblem says why a stage cannot be built from its inputs now: an
// input never built, or itself stale. "" when the inputs are fit to use.
func inputProblem(env warehouse.Env, l *warehouse.Ledger, d warehouse.StageDef) string {
	for _, in := range d.Inputs {
		p := producer(in)
		if l.Outputs[in] == nil {
			if p == "ingest" {
				continue // nothing received yet: an empty table
			}
			return fmt.Sprintf("%s needs the %s table, which has not been built: run `cpi %s` first (or `cpi run`)", d.Name, in, p)
		}
		if p == "" || p == "ingest" {
			continue
		}
		pd, _ := LookupStage(p)
		if why := staleness(env, l, pd); len(why) > 0 {
			return fmt.Sprintf("%s needs the %s table, which is out of date (%s since it was built): run `cpi %s` first (or `cpi run`)", d.Name, in, strings.Join(why, ", "), p)
		}
	}
	return ""
}

// adoptOutputs records the outputs found in a generation written before
// lineage was kept, as built from unknown inputs: derived stages are then
// rebuilt once.
func adoptOutputs(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
	if tx.Ledger.Outputs != nil {
		return nil
	}
	tx.Ledger.Outputs = map[string]*warehouse.OutputRecord{}
	all := slices.Clone(warehouse.IngestOutputs)
	for _, d := range DerivedStages() {
		all = append(all, d.Outputs...)
	}
	for _, o := range all {
		paths, err := warehouse.OutputFiles(tx.Dir, o)
		if err != nil || len(paths) == 0 {
			continue
		}
		if err := warehouse.RecordOutputs(ctx, env, tx, producer(o), []string{o}, map[string]string{}); err != nil {
			return err
		}
	}
	return nil
}

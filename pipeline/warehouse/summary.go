package warehouse

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// outcomeOrder lists file statuses in the order the summary shows them:
// what needs the data manager first.
var outcomeOrder = []string{OutcomeQuarantined, OutcomeHeld, OutcomeRefused, OutcomeDeferred, OutcomeNew, OutcomeSuperseded, OutcomeSkipped, OutcomeIgnored}

// addFile records what the run did with one file.
func (s *Summary) addFile(o FileOutcome) { s.Files = append(s.Files, o) }

// outcomeOf is a file's outcome as its ledger entry says.
func outcomeOf(e *FileEntry, status, reason string) FileOutcome {
	return FileOutcome{Name: e.Name, Trust: e.Trust, Kind: e.Kind, Status: status, Reason: reason}
}

// SkippedOutcome is the outcome of bytes already received: as prev (nil
// when met earlier in this run).
func SkippedOutcome(name string, prev *FileEntry) FileOutcome {
	if prev == nil {
		return FileOutcome{Name: name, Status: OutcomeSkipped, Reason: "the same bytes as another file of this run"}
	}
	if prev.Name != name {
		return FileOutcome{Name: name, Trust: prev.Trust, Kind: prev.Kind, Status: OutcomeSkipped,
			Reason: fmt.Sprintf("already received in run %d as %s", prev.RunID, prev.Name)}
	}
	return FileOutcome{Name: name, Trust: prev.Trust, Kind: prev.Kind, Status: OutcomeSkipped,
		Reason: fmt.Sprintf("already received in run %d", prev.RunID)}
}

// CurrentReason says what a new current export replaced.
func CurrentReason(cur *FileEntry) string {
	if cur == nil {
		return "now current"
	}
	return "now current, replacing " + cur.Name
}

// Finish closes the account of a run ending at end: files in a stable
// order, the tables a stage of `cpi run` did not account for (ingest's,
// or a stage command's) as a Rebuild of their own, NothingNew from the
// same lists the summary prints, and the exit status.
func (s *Summary) Finish(end time.Time) {
	rank := func(status string) int { return slices.Index(outcomeOrder, status) }
	sort.SliceStable(s.Files, func(i, j int) bool {
		a, b := s.Files[i], s.Files[j]
		if rank(a.Status) != rank(b.Status) {
			return rank(a.Status) < rank(b.Status)
		}
		if a.Trust != b.Trust {
			return a.Trust < b.Trust
		}
		return a.Name < b.Name
	})
	var covered []string
	for _, r := range s.Rebuilt {
		covered = append(covered, r.Outputs...)
	}
	var rest []string
	for _, t := range s.TablesWritten {
		if !slices.Contains(covered, t) {
			rest = append(rest, t)
		}
	}
	if len(rest) > 0 {
		r := Rebuild{Stage: s.Command, Outputs: rest, Because: []string{"cpi " + s.Command + " was run"}}
		if s.Command == "run" || s.Command == "ingest" {
			r.Stage, r.Because = "ingest", nil
			for _, f := range s.Files {
				why := "new export from " + f.Trust
				if f.Status == OutcomeNew && !slices.Contains(r.Because, why) {
					r.Because = append(r.Because, why)
				}
			}
			if len(r.Because) == 0 {
				r.Because = []string{"files received (ingest_files mirrors the ledger)"}
			}
		}
		s.Rebuilt = append([]Rebuild{r}, s.Rebuilt...)
	}
	s.NothingNew = s.FilesNew == 0 && len(s.TablesWritten) == 0 && len(s.Rebuilt) == 0
	s.Finished = end
	s.DurationSeconds = end.Sub(s.Started).Seconds()
	s.ExitStatus = 0
	if s.Problems() != nil {
		s.ExitStatus = 3
	}
}

// HasProblems reports whether the run found anything a data manager must
// act on: rows rejected, files quarantined, held, refused or left for the
// next run, warnings in the exports, trusts silent for too long.
func (s *Summary) HasProblems() bool {
	if s.ExitStatus != 0 || s.FilesHeld > 0 || s.Warnings > 0 || len(s.SilentTrusts) > 0 {
		return true
	}
	return slices.ContainsFunc(s.Files, func(f FileOutcome) bool { return isProblem(f.Status) })
}

func isProblem(status string) bool {
	switch status {
	case OutcomeQuarantined, OutcomeHeld, OutcomeRefused, OutcomeDeferred:
		return true
	}
	return false
}

// exitMeaning says what the run's exit status tells cron, and why.
func (s *Summary) exitMeaning() string {
	if s.ExitStatus == 0 {
		return "all accepted"
	}
	var why []string
	if s.RowsRejected > 0 {
		why = append(why, plural(s.RowsRejected, "row", "rows")+" rejected")
	}
	if s.FilesQuarantined > 0 {
		why = append(why, plural(int64(s.FilesQuarantined), "file", "files")+" quarantined")
	}
	if s.FilesHeld > 0 {
		why = append(why, plural(int64(s.FilesHeld), "file", "files")+" held")
	}
	return "finished with problems: " + strings.Join(why, ", ")
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// SummaryDetail chooses how much of a summary PrintSummary writes.
type SummaryDetail int

const (
	// SummaryFull is everything: files, rows, rebuilt tables and reports,
	// warnings.
	SummaryFull SummaryDetail = iota
	// SummaryProblems is what needs acting on (--quiet): the header, the
	// files set aside, the trusts with rejected rows, warnings and where
	// to look; nothing when there is none.
	SummaryProblems
)

// PrintSummary writes a run summary for a person reading it in the
// morning: a header (run, command, start and end, exit status), then only
// the sections that have something to say. Every line is made from the
// summary's own lists, so no two lines can disagree.
func PrintSummary(w io.Writer, s *Summary, detail SummaryDetail) {
	full := detail == SummaryFull
	if !full && !s.HasProblems() {
		return
	}
	const stamp = "2006-01-02 15:04:05"
	end := s.Finished.UTC().Format(stamp)
	if s.Finished.UTC().Format("2006-01-02") == s.Started.UTC().Format("2006-01-02") {
		end = s.Finished.UTC().Format("15:04:05")
	}
	fmt.Fprintf(w, "run %d (cpi %s) %s – %s UTC, %s: exit %d, %s\n", s.RunID, s.Command,
		s.Started.UTC().Format(stamp), end, formatSeconds(s.DurationSeconds), s.ExitStatus, s.exitMeaning())
	if full && s.NothingNew {
		fmt.Fprintln(w, "nothing new: no export loaded, no table or report rebuilt")
	}

	files := s.Files
	if !full {
		files = slices.DeleteFunc(slices.Clone(files), func(f FileOutcome) bool { return !isProblem(f.Status) })
	}
	if len(files) > 0 {
		if full {
			// Counted from the lines below, so the two agree.
			var counts []string
			for _, status := range []string{OutcomeNew, OutcomeSuperseded, OutcomeHeld, OutcomeQuarantined, OutcomeDeferred, OutcomeRefused, OutcomeSkipped, OutcomeIgnored} {
				if n := CountFunc(files, func(f FileOutcome) bool { return f.Status == status }); n > 0 {
					counts = append(counts, fmt.Sprintf("%d %s", n, status))
				}
			}
			fmt.Fprintf(w, "\nfiles: %s\n", strings.Join(counts, ", "))
		} else {
			fmt.Fprintln(w, "\nfiles set aside:")
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, f := range files {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Status, f.Name, orDash(f.Trust), f.Reason)
		}
		tw.Flush()
	}

	codes := slices.DeleteFunc(sortedTrusts(s.Trusts), func(c string) bool {
		return !full && s.Trusts[c].RowsRejected == 0 && s.Trusts[c].Quarantined == 0
	})
	if len(codes) > 0 {
		fmt.Fprintln(w, "\nrows by trust:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  trust\tfiles\taccepted\trejected\tquarantined\t")
		for _, c := range codes {
			t := s.Trusts[c]
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t\n", c, t.Files, t.RowsAccepted, t.RowsRejected, t.Quarantined)
		}
		if full && len(codes) > 1 {
			fmt.Fprintf(tw, "  total\t%d\t%d\t%d\t%d\t\n", s.FilesNew, s.RowsAccepted, s.RowsRejected, s.FilesQuarantined)
		}
		tw.Flush()
	}

	if full && len(s.Rebuilt) > 0 {
		fmt.Fprintln(w, "\nrebuilt:")
		for _, r := range s.Rebuilt {
			fmt.Fprintf(w, "  %s: %s — because %s\n", r.Stage, strings.Join(r.Outputs, ", "), strings.Join(r.Because, "; "))
		}
	}
	if full && len(s.StagesSkipped) > 0 {
		fmt.Fprintf(w, "\nnot rebuilt (inputs unchanged): %s\n", strings.Join(s.StagesSkipped, ", "))
	}

	var warnings []string
	if len(s.SilentTrusts) > 0 {
		warnings = append(warnings, "no new export for longer than the study allows from: "+strings.Join(s.SilentTrusts, ", "))
	}
	if s.FilesHeld > 0 {
		warnings = append(warnings, fmt.Sprintf("%d held: the trust's previous export stays current until a newer one arrives or the file is accepted (cpi accept --warehouse W FILE --reason ...)", s.FilesHeld))
		for _, h := range s.Held {
			warnings = append(warnings, fmt.Sprintf("  held: %s (%s, %s): %s", h.Name, h.Trust, h.Kind, h.Reason))
		}
	}
	if s.Warnings > 0 {
		warnings = append(warnings, fmt.Sprintf("%d warnings in the exports (rows kept)", s.Warnings))
	}
	if len(warnings) > 0 {
		fmt.Fprintln(w)
		for _, m := range warnings {
			fmt.Fprintln(w, "WARNING:", m)
		}
	}

	var look []string
	for _, c := range sortedTrusts(s.Trusts) {
		if t := s.Trusts[c]; t.RowsRejected > 0 || t.Quarantined > 0 || (s.Warnings > 0 && t.Files > 0) {
			look = append(look, "problems/"+c+".csv")
		}
	}
	if len(look) > 0 {
		fmt.Fprintf(w, "\nwhere to look: %s in the warehouse (what and why, by file and line), and the rejects table\n", strings.Join(look, ", "))
	}
}

func CountFunc[T any](s []T, f func(T) bool) int {
	n := 0
	for _, x := range s {
		if f(x) {
			n++
		}
	}
	return n
}

func sortedTrusts(m map[string]*TrustSummary) []string {
	out := make([]string, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// formatSeconds writes a duration for a person: 0.4s, 41.2s, 3m05s.
func formatSeconds(sec float64) string {
	if sec < 60 {
		return fmt.Sprintf("%.1fs", sec)
	}
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// ListRuns prints the ledger's runs, newest last.
func ListRuns(dir string, asJSON bool, w io.Writer) error {
	_, _, l, err := OpenCurrent(dir)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		for _, r := range l.Runs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "run\tcommand\tstarted (UTC)\tseconds\tnew\tskipped\tsuperseded\theld\tquarantined\taccepted\trejected\texit")
	for _, r := range l.Runs {
		s := r.Summary
		if s == nil {
			s = &Summary{}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.1f\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", r.ID, r.Command, r.Started.Format("2006-01-02 15:04:05"),
			s.DurationSeconds, s.FilesNew, s.FilesSkipped, s.FilesSuperseded, s.FilesHeld, s.FilesQuarantined, s.RowsAccepted, s.RowsRejected, r.ExitStatus)
	}
	return tw.Flush()
}

// Stage is one step of the pipeline: it reads tables from the generation
// being written and writes its own. Stages never re-parse raw exports (but
// ingest, whose input they are).
type Stage func(ctx context.Context, env Env, tx *Tx) error

// Summary is what a run did: the run summary printed at the end and kept
// in the ledger. Its counts and its lists are one account: FilesNew counts
// the new, superseded-on-arrival, held and quarantined files of Files,
// NothingNew holds exactly when no file was new and nothing was rebuilt.
type Summary struct {
	RunID      int64     `json:"run_id"`
	Command    string    `json:"command"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
	ExitStatus int       `json:"exit_status"`

	FilesNew         int           `json:"files_new"`
	FilesSkipped     int           `json:"files_skipped"`
	FilesSuperseded  int           `json:"files_superseded"`
	FilesHeld        int           `json:"files_held"`
	FilesQuarantined int           `json:"files_quarantined"`
	Files            []FileOutcome `json:"files,omitempty"`

	RowsAccepted  int64                    `json:"rows_accepted"`
	RowsRejected  int64                    `json:"rows_rejected"`
	Warnings      int                      `json:"warnings"`
	Trusts        map[string]*TrustSummary `json:"trusts"`
	TablesWritten []string                 `json:"tables_written"`
	Rebuilt       []Rebuild                `json:"rebuilt,omitempty"`
	StagesSkipped []string                 `json:"stages_skipped,omitempty"`
	SilentTrusts  []string                 `json:"silent_trusts,omitempty"`
	NothingNew    bool                     `json:"nothing_new"`
	// Held lists every export held (this run or before) and waiting for a
	// newer export or `cpi accept`; FilesHeld counts them.
	Held []FileOutcome `json:"held,omitempty"`

	DurationSeconds float64 `json:"duration_seconds"`
}

// FileOutcome is what a run did with one file it met, by name: Status is
// one of the Outcome constants, Reason says why in words a data manager
// can act on (never a value from the export).
type FileOutcome struct {
	Name   string `json:"name"`
	Trust  string `json:"trust"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// The statuses of a FileOutcome.
const (
	OutcomeNew         = "new"         // loaded: now the trust's current export
	OutcomeSkipped     = "skipped"     // bytes already received
	OutcomeSuperseded  = "superseded"  // a newer export of the trust is current
	OutcomeHeld        = "held"        // waits for a newer export or cpi accept
	OutcomeQuarantined = "quarantined" // set aside whole; nothing of it loaded
	OutcomeDeferred    = "deferred"    // still being written: left for the next run
	OutcomeIgnored     = "ignored"     // not an export (editor, OS or download leftovers)
	OutcomeRefused     = "refused"     // cannot be read as a file (FIFO, device, folder)
)

// Rebuild is one stage's rewrite of tables or reports and what made it
// necessary ("responses changed", "study definition changed", "program
// version changed", "output missing: scores").
type Rebuild struct {
	Stage   string   `json:"stage"`
	Outputs []string `json:"outputs"`
	Because []string `json:"because"`
}

// TrustSummary is one trust's share of a run.
type TrustSummary struct {
	Files        int   `json:"files"`
	RowsAccepted int64 `json:"rows_accepted"`
	RowsRejected int64 `json:"rows_rejected"`
	Quarantined  int   `json:"quarantined"`
}

func NewSummary(runID int64) *Summary {
	return &Summary{RunID: runID, Trusts: map[string]*TrustSummary{}}
}

func (s *Summary) Trust(code string) *TrustSummary {
	t, ok := s.Trusts[code]
	if !ok {
		t = &TrustSummary{}
		s.Trusts[code] = t
	}
	return t
}

// Problems is the ProblemsError of a run, or nil when nothing was rejected
// or quarantined.
func (s *Summary) Problems() error {
	if s.RowsRejected == 0 && s.FilesQuarantined == 0 && s.FilesHeld == 0 {
		return nil
	}
	return &ProblemsError{Rejected: s.RowsRejected, Quarantined: s.FilesQuarantined, Held: s.FilesHeld, Warnings: s.Warnings}
}

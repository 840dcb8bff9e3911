package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// PrintSummary writes a run summary for a person reading it in the morning.
func PrintSummary(w io.Writer, s *Summary) {
	fmt.Fprintf(w, "run %d (%s) finished in %.1fs\n", s.RunID, s.Command, s.DurationSeconds)
	if s.NothingNew {
		fmt.Fprintln(w, "nothing new: no table rewritten")
	}
	fmt.Fprintf(w, "files: %d new, %d skipped (already received), %d superseded, %d quarantined\n",
		s.FilesNew, s.FilesSkipped, s.FilesSuperseded, s.FilesQuarantined)
	fmt.Fprintf(w, "rows: %d accepted, %d rejected; %d warnings\n", s.RowsAccepted, s.RowsRejected, s.Warnings)
	if len(s.Trusts) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  trust\tfiles\taccepted\trejected\tquarantined")
		codes := make([]string, 0, len(s.Trusts))
		for c := range s.Trusts {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		for _, c := range codes {
			t := s.Trusts[c]
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\n", c, t.Files, t.RowsAccepted, t.RowsRejected, t.Quarantined)
		}
		tw.Flush()
	}
	if len(s.TablesWritten) > 0 {
		fmt.Fprintf(w, "tables rewritten: %s\n", strings.Join(s.TablesWritten, ", "))
	}
	if len(s.StagesSkipped) > 0 {
		fmt.Fprintf(w, "stages skipped (inputs unchanged): %s\n", strings.Join(s.StagesSkipped, ", "))
	}
	if len(s.SilentTrusts) > 0 {
		fmt.Fprintf(w, "WARNING: no new export for longer than the study allows from: %s\n", strings.Join(s.SilentTrusts, ", "))
	}
	if s.RowsRejected > 0 || s.FilesQuarantined > 0 {
		fmt.Fprintln(w, "see the rejects table and problems/<TRUST>.csv in the warehouse for what was rejected and why")
	}
}

// ListRuns prints the ledger's runs, newest last.
func ListRuns(dir string, asJSON bool, w io.Writer) error {
	wh, err := OpenWarehouse(dir, false)
	if err != nil {
		return err
	}
	gen, err := wh.CurrentDir()
	if err != nil {
		return err
	}
	l, err := ReadLedger(gen)
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
	fmt.Fprintln(tw, "run\tcommand\tstarted (UTC)\tseconds\tnew\tskipped\tsuperseded\tquarantined\taccepted\trejected\texit")
	for _, r := range l.Runs {
		s := r.Summary
		if s == nil {
			s = &Summary{}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.1f\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", r.ID, r.Command, r.Started.Format("2006-01-02 15:04:05"),
			s.DurationSeconds, s.FilesNew, s.FilesSkipped, s.FilesSuperseded, s.FilesQuarantined, s.RowsAccepted, s.RowsRejected, r.ExitStatus)
	}
	return tw.Flush()
}

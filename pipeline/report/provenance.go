package report

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// Provenance says which data a report shows: the export dates of the
// current files (ingest_files, status current), overall and per trust.
// Export dates come from the files' names, so the same files give the same
// report (received_at, which differs between runs, is not read).
type Provenance struct {
	// Cutoff is the latest export date of the current files ("" when
	// there is none: the table is missing or has no current file).
	Cutoff string
	// Trusts lists each study trust in study order with the export dates
	// of its current files by kind ("none" when a kind has no current
	// file).
	Trusts []trustCutoff
	// Kinds are the kinds of export, in the order shown.
	Kinds []string
}

type trustCutoff struct {
	Trust, Name string
	Dates       []string // by Kinds
}

// provenanceKinds are the kinds of export a trust sends (DESIGN §4).
var provenanceKinds = []string{"participants", "fidelity"}

// ReadProvenance reads the current files' export dates from ingest_files
// in the generation at genDir. A generation without the table gives an
// empty Provenance (the reports then say the cut-off is unknown).
func ReadProvenance(ctx context.Context, s *schemas.Study, genDir string) (*Provenance, error) {
	p := &Provenance{Kinds: slices.Clone(provenanceKinds)}
	latest := map[[2]string]int32{} // trust, kind → days since epoch
	files, err := warehouse.TableFiles(genDir, "ingest_files")
	if err != nil {
		return nil, fmt.Errorf("read table ingest_files: %w", err)
	}
	if len(files) > 0 {
		err = warehouse.ScanTable(ctx, genDir, "ingest_files", func(rec arrow.RecordBatch) error {
			cols, err := warehouse.Columns(rec, "trust", "kind", "export_date", "status")
			if err != nil {
				return err
			}
			trust, _ := cols[0].(*array.String)
			kind, _ := cols[1].(*array.String)
			date, _ := cols[2].(*array.Date32)
			status, _ := cols[3].(*array.String)
			if trust == nil || kind == nil || date == nil || status == nil {
				return fmt.Errorf("table ingest_files has unexpected column types")
			}
			for i := 0; i < int(rec.NumRows()); i++ {
				if status.Value(i) != "current" || trust.IsNull(i) || kind.IsNull(i) || date.IsNull(i) {
					continue
				}
				k := [2]string{trust.Value(i), kind.Value(i)}
				if d := int32(date.Value(i)); d > latest[k] {
					latest[k] = d
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var all int32
	for _, d := range latest {
		all = max(all, d)
	}
	if all > 0 {
		p.Cutoff = fmtDays(all)
	}
	for _, t := range s.Trusts {
		tc := trustCutoff{Trust: t.Code, Name: t.Name}
		for _, kind := range p.Kinds {
			d := "none"
			if v, ok := latest[[2]string{t.Code, kind}]; ok {
				d = fmtDays(v)
			}
			tc.Dates = append(tc.Dates, d)
		}
		p.Trusts = append(p.Trusts, tc)
	}
	return p, nil
}

// TrustCutoff is a trust's latest export date over its current files ("none"
// when it has none).
func (p *Provenance) TrustCutoff(trust string) string {
	for _, t := range p.Trusts {
		if t.Trust != trust {
			continue
		}
		best := "none"
		for _, d := range t.Dates {
			if d != "none" && (best == "none" || d > best) {
				best = d
			}
		}
		return best
	}
	return "none"
}

// fmtDays formats a DATE (days since 1970-01-01) as YYYY-MM-DD.
func fmtDays(d int32) string {
	return time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
}

package pipeline

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// CodebookOptions adjusts Codebook.
type CodebookOptions struct {
	// JSON writes the data package (tables/datapackage.json) instead of text.
	JSON bool
}

// Codebook writes each table of the warehouse with its rows, key, partition
// and columns with their types, units, meanings and code lists: what an
// analyst needs. It prints the data package of the committed generation
// (BuildDataPackage), the model tables/datapackage.json is written from; as
// JSON, the same bytes.
func Codebook(env warehouse.Env, dir string, w io.Writer, opts CodebookOptions) error {
	wh, err := warehouse.OpenWarehouse(dir, false)
	if err != nil {
		return err
	}
	gen, err := wh.CurrentDir()
	if err != nil {
		return err
	}
	l, err := warehouse.ReadLedger(gen)
	if err != nil {
		return err
	}
	dp, err := BuildDataPackage(env, gen, l)
	if err != nil {
		return err
	}
	if opts.JSON {
		b, err := dp.Marshal()
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	fmt.Fprintf(w, "%s — program %s, study %s, data cut-off %s\n\n", dp.Title, dp.Program, warehouse.ShortSHA(dp.StudyHash), orNone(dp.DataCutoff))
	for _, r := range dp.Resources {
		state := fmt.Sprintf("%d rows in %d files", r.Rows, len(r.Path))
		if len(r.Path) == 0 {
			state = "not written yet"
		}
		fmt.Fprintf(w, "%s — %s\n  %s\n  key: %s", r.Name, state, r.Description, strings.Join(r.Schema.PrimaryKey, ", "))
		if len(r.PartitionBy) > 0 {
			fmt.Fprintf(w, "; partitioned by %s (hive: %s=<value>/)", r.PartitionBy[0], r.PartitionBy[0])
		}
		fmt.Fprintf(w, "\n  load: pd.read_parquet(%q)\n", dir+"/tables/"+r.Name)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, f := range r.Schema.Fields {
			null := "nullable"
			if f.Constraints.Required {
				null = "not null"
			}
			doc := f.Description
			if f.Unit != "" {
				doc += " [" + f.Unit + "]"
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", f.Name, f.ParquetType, null, doc)
			if len(f.Categories) > 0 {
				codes := make([]string, len(f.Categories))
				for i, c := range f.Categories {
					codes[i] = fmt.Sprintf("%v = %s", c.Value, c.Label)
				}
				fmt.Fprintf(tw, "    \t\t\tcodes: %s\n", strings.Join(codes, "; "))
			}
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

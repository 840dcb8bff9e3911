package pipeline

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/apache/arrow-go/v18/parquet/file"
)

// Codebook writes each table of the warehouse with its rows, key, partition
// and columns with their types and meanings: what an analyst needs.
func Codebook(env Env, dir string, w io.Writer) error {
	wh, err := OpenWarehouse(dir, false)
	if err != nil {
		return err
	}
	gen, err := wh.CurrentDir()
	if err != nil {
		return err
	}
	for _, name := range env.Study.Tables.Names() {
		tb := env.Study.Tables.Table(name)
		files, err := TableFiles(gen, name)
		if err != nil {
			return fmt.Errorf("table %s: %w", name, err)
		}
		var rows int64
		for _, f := range files {
			pf, err := file.OpenParquetFile(f, false)
			if err != nil {
				return fmt.Errorf("table %s: %w", name, err)
			}
			rows += pf.NumRows()
			pf.Close()
		}
		state := fmt.Sprintf("%d rows in %d files", rows, len(files))
		if len(files) == 0 {
			state = "not written yet"
		}
		fmt.Fprintf(w, "%s — %s\n  %s\n  key: %s", name, state, tb.Doc, strings.Join(tb.Key, ", "))
		if tb.Partition != "" {
			fmt.Fprintf(w, "; partitioned by %s (hive: %s=<value>/)", tb.Partition, tb.Partition)
		}
		fmt.Fprintf(w, "\n  load: pd.read_parquet(%q)\n", dir+"/tables/"+name)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, c := range tb.Columns {
			null := "nullable"
			if c.Required {
				null = "not null"
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", c.Name, c.Type, null, c.Doc)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	return nil
}

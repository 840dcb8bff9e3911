package pipeline

import (
	"context"
	"fmt"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// codebookStage writes the codes table. It is not one of the stages a
// command runs: the codes table is written with the data package, at every
// commit, when it was never written or the study definition or program
// changed since (its only inputs); its lineage is recorded like a stage's.
var codebookStage = warehouse.StageDef{Name: "codebook", Outputs: []string{"codes"}, Run: WriteCodes}

// writeCodesIfStale writes the codes table when it is out of date.
func writeCodesIfStale(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
	if len(staleness(env, tx.Ledger, codebookStage)) == 0 {
		return nil
	}
	return runRecorded(ctx, env, tx, codebookStage)
}

// WriteCodes writes the codes table, one row per
// table × coded column × code with its label, in the order of the tables,
// their columns and the code lists, so that an analyst in R or pandas can
// join labels onto any table. It reads no table: its only inputs are the
// study definition and the program (tables.yaml's `codes`), and it is the
// same code lists the data package carries (Study.CodeList).
func WriteCodes(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
	const name = "codes"
	if err := tx.ReplaceTable(name); err != nil {
		return err
	}
	out := env.Study.Tables.Table(name)
	schema := warehouse.ArrowSchema(env, name, nil)
	tf, err := tx.CreateTableFile(schema, name, "", "", "data")
	if err != nil {
		return err
	}
	rw := warehouse.NewRowWriter(schema, tf)
	cTable, cField, cCode, cLabel, cOrd := warehouse.ColIndex(out, "table"), warehouse.ColIndex(out, "field"), warehouse.ColIndex(out, "code"), warehouse.ColIndex(out, "label"), warehouse.ColIndex(out, "ordinal")
	for _, tn := range env.Study.Tables.Names() {
		for _, c := range env.Study.Tables.Table(tn).Columns {
			if c.Codes == "" {
				continue
			}
			codes, err := env.Study.CodeList(c.Codes)
			if err != nil {
				rw.Abort()
				return fmt.Errorf("table %s: %s.%s: %w", name, tn, c.Name, err)
			}
			for i, cd := range codes {
				rw.Str(cTable, tn)
				rw.Str(cField, c.Name)
				rw.Str(cCode, cd.Value)
				rw.Str(cLabel, cd.Label)
				rw.Int32(cOrd, int32(i+1), true)
				if err := rw.RowDone(); err != nil {
					rw.Abort()
					return err
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		rw.Abort()
		return err
	}
	return rw.Close()
}

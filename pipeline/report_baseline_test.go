package pipeline

import (
	"context"
	"reflect"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/report/study"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// TestBaselineCountsMatchDenseRead: ReadBaselineCounts, which reads the
// demographic columns as dictionary codes into reused memory and counts
// codes, gives Table 1's counts equal to a dense read of every column of
// every row of participants added one by one (BaselineCounts.Add, the
// route it replaced), on a warehouse with nulls, a level holding markup,
// a withdrawn participant, one not interviewed at baseline and a 0/1
// field; and on the bundled study (five trusts' files, each with its own
// dictionaries).
func TestBaselineCountsMatchDenseRead(t *testing.T) {
	env, dir := reportStudyTestWarehouse(t)
	_, bundled := runBundled(t, env)
	for _, gen := range []string{dir, bundled} {
		arms := env.Study.Arms[:min(2, len(env.Study.Arms))]
		got, err := study.ReadBaselineCounts(context.Background(), env.Study, arms, gen)
		if err != nil {
			t.Fatal(err)
		}
		want := study.NewBaselineCounts(env.Study, arms)
		fields := env.Study.DemographicFields()
		names := []string{"arm", "interviewed_baseline"}
		for _, f := range fields {
			names = append(names, f.Name)
		}
		rows := 0
		err = warehouse.ScanTable(context.Background(), gen, "participants", func(rec arrow.RecordBatch) error {
			cols, err := warehouse.Columns(rec, names...)
			if err != nil {
				return err
			}
			arm, ib := cols[0].(*array.String), cols[1].(*array.Boolean)
			for i := 0; i < int(rec.NumRows()); i++ {
				if !ib.IsValid(i) || !ib.Value(i) {
					continue
				}
				values := make([]string, len(fields))
				for f := range fields {
					switch c := cols[2+f].(type) {
					case *array.String:
						if c.IsValid(i) {
							values[f] = c.Value(i)
						}
					case *array.Int32:
						if c.IsValid(i) {
							values[f] = strconv.Itoa(int(c.Value(i)))
						}
					default:
						t.Fatalf("column %s: type %s", fields[f].Name, c.DataType())
					}
				}
				want.Add(arm.Value(i), values)
				rows++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if rows < 100 {
			t.Fatalf("%s: only %d participants interviewed at baseline: the comparison proves little", gen, rows)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Table 1's counts differ from the dense read:\n got %+v\nwant %+v", gen, got, want)
		}
	}
}

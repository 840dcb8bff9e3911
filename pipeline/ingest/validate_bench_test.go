package ingest

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/schemas"
)

// BenchmarkMapAndValidate maps a canonical participants header and runs
// 100,000 canonical rows (85 cells each, about 5% of answers blank) through
// the privacy guard and the row checks, as ingest does for every row after
// decoding. Building the rows is not timed. Every row must pass: a rejected
// or quarantined row fails the benchmark, so the timed path is the common
// one.
//
//	go test -run XXX -bench MapAndValidate ./pipeline/
func BenchmarkMapAndValidate(b *testing.B) {
	const n = 100_000
	study, err := schemas.Default()
	if err != nil {
		b.Fatal(err)
	}
	fields := study.ExportFields(schemas.KindParticipants)
	header := make([]string, len(fields))
	for i, f := range fields {
		header[i] = f.Name
	}
	trust := study.TrustCodes()[0]
	rows := validateBenchRows(study, fields, trust, n)
	exportDate := time.Date(2019, 3, 29, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h, _, q := MapHeader(study, nil, true, header)
		if q != "" {
			b.Fatalf("canonical header quarantined: %s", q)
		}
		rc := NewRowChecker(study, nil, true, trust, exportDate, h)
		var p parsedRow
		for i, cells := range rows {
			if col, rule, bad := rc.Privacy(cells, 2, nil); bad {
				b.Fatalf("row %d: privacy rule %s in column %d", i, rule, col)
			}
			rc.check(cells, i+2, &p)
			if len(p.errors) > 0 {
				b.Fatalf("row %d rejected: %s %s", i, p.errors[0].Code, p.errors[0].Column)
			}
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// validateBenchRows makes n canonical participants rows of one trust, half
// baseline and half follow-up: demographics at baseline, GAS at follow-up,
// every answer in its range, 5% of the optional cells blank.
func validateBenchRows(study *schemas.Study, fields []schemas.Field, trust string, n int) [][]string {
	var teams []string
	for _, t := range study.TeamCodes() {
		if tm, _ := study.Team(t); tm.Trust == trust {
			teams = append(teams, t)
		}
	}
	r := rand.New(rand.NewPCG(7, 11))
	rows := make([][]string, n)
	for i := range rows {
		followup := i%2 == 1
		cells := make([]string, len(fields))
		for fi, f := range fields {
			if !f.Required && r.IntN(20) == 0 {
				continue
			}
			switch {
			case f.Name == "participant_id":
				cells[fi] = fmt.Sprintf("P%07d", i/2)
			case f.Name == "team_code":
				cells[fi] = teams[(i/2)%len(teams)]
			case f.Name == "wave":
				cells[fi] = study.Waves[0]
				if followup {
					cells[fi] = study.Waves[len(study.Waves)-1]
				}
			case f.Type == schemas.FieldDate:
				d := time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(150))
				if followup {
					d = d.AddDate(0, 0, 180)
				}
				cells[fi] = d.Format("2006-01-02")
			case f.Type == schemas.FieldCode:
				if !followup {
					cells[fi] = f.Codes[r.IntN(len(f.Codes))]
				}
			case f.Type == schemas.FieldInt:
				if f.Instrument == "gas" && !followup {
					continue
				}
				cells[fi] = strconv.Itoa(f.Min + r.IntN(f.Max-f.Min+1))
			case f.Type == schemas.FieldID:
				cells[fi] = fmt.Sprintf("R%05d", i)
			}
		}
		rows[i] = cells
	}
	return rows
}

package study

import "strconv"

// SectionTableFiles are the CSV files of the results sections
// (sections.go, econ.go), in page order, written after
// TableFiles.
var SectionTableFiles = []string{
	"itt.csv", "outcome_forest.csv", "missing.csv", "reliability.csv",
	"service_use.csv", "econ_by_arm.csv", "incremental.csv", "cheers.csv",
}

// sectionCSV adds the results sections' tables to t, the strings as the
// page prints them.
func (pg *studyPage) sectionCSV(t map[string][][]string) {
	sec := pg.Sec
	if sec == nil {
		sec = &sections{}
	}
	itt := [][]string{{"outcome", "wave", "complete cases (95% CI)", "ITT imputed (95% CI)", "p", "FMI", "n", "tipping delta"}}
	for _, r := range sec.ITT {
		itt = append(itt, []string{r.Outcome, r.Wave, r.CC, r.ITT, r.P, r.FMI, r.N, r.Tip})
	}
	t["itt.csv"] = itt

	of := [][]string{{"outcome", "direction", "SD", "standardised difference", "95% CI", "weight"}}
	for _, r := range sec.OutcomeForestRows {
		of = append(of, []string{r.Outcome, r.Direction, r.SD, r.Estimate, r.CI, r.Weight})
	}
	t["outcome_forest.csv"] = of

	miss := [][]string{append([]string{"outcome"}, sec.MissHeads...)}
	for _, r := range sec.Missing {
		miss = append(miss, append([]string{r.Outcome}, r.Cells...))
	}
	t["missing.csv"] = miss

	rel := [][]string{append([]string{"scale"}, sec.RelWaves...)}
	for _, r := range sec.Reliability {
		rel = append(rel, append([]string{r.Scale}, r.Cells...))
	}
	t["reliability.csv"] = rel

	e := sec.Econ
	if e == nil {
		e = &econSection{}
	}
	su := [][]string{append([]string{"service"}, e.ServiceLabels...)}
	for _, r := range e.Services {
		su = append(su, append([]string{r.Label}, r.Cells...))
	}
	t["service_use.csv"] = su
	ba := [][]string{append([]string{"measure"}, e.ArmLabels...)}
	for _, r := range e.ByArm {
		ba = append(ba, append([]string{r.Label}, r.Cells...))
	}
	t["econ_by_arm.csv"] = ba
	inc := [][]string{append([]string{""}, e.Methods...)}
	for _, r := range e.Inc {
		inc = append(inc, append([]string{r.Label}, r.Cells...))
	}
	t["incremental.csv"] = inc
	ch := [][]string{{"item", "topic", "stated"}}
	for _, c := range e.Cheers {
		ch = append(ch, []string{strconv.Itoa(c.Item), c.Topic, c.Value})
	}
	t["cheers.csv"] = ch
}

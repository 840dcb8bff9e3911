// Package study writes the study report (DESIGN §10): one self-contained
// HTML page of the whole study, and its tables as CSV (cpi report study,
// and the "report study" stage of cpi run, into
// reports/study-report.html).
//
// Report (study.go) reads the tables and lays the page out (Load), then
// renders templates/study.tmpl with its parts (templates/study_*.tmpl)
// inside the shared page of package report. One file per section, each
// reading its table and laying out its part of the page: flow.go and
// consort.go (participant flow), baseline.go (Table 1), descriptives.go
// and outcomes.go (the outcomes), forest.go and trust_effects.go (forest
// plot, balance), outcome_forest.go, sections.go (reliability, missing
// data, ITT), econ.go (economic evaluation), summary.go and methods.go
// (the front: summary, methods, CONSORT checklist from
// templates/consort.yaml), tables.go and sections_tables.go (the CSV
// files). Every count of people goes through one disclosure control pass
// (LayoutCounts). What the page shows is read from summaries: the only
// per-participant table read is participants, for Table 1's counts, as
// dictionary codes in reused memory (ReadBaselineCounts).
package study

// Package fidelity writes a team's fidelity report (DESIGN §10): one
// self-contained HTML page per team, from the fidelity stage's tables
// (fidelity, fidelity_components, and fidelity_ratings to count raters),
// rendered from templates/fidelity.tmpl inside the shared page of package
// report (cpi report fidelity, and the "report fidelity" stage of cpi
// run, into reports/fidelity-TEAM.html). An intervention team's report is
// for its feedback meetings; a control team's is for the study team only
// (Report says what each holds).
//
// It is not the fidelity stage (pipeline/fidelity), which scores the
// ratings; importers that need both name this one fidelityreport.
package fidelity

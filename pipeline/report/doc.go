// Package report holds what cpi's HTML reports share: the page (the
// skeleton templates/page.tmpl and the stylesheet templates/report.css
// around each report's own template: Parse, Execute), the disclosure
// control that every count of people on a page passes through once
// (Disclosure, ShowModelN), the data cut-off read from ingest_files
// (ReadProvenance), and the look of charts and phone-width tables
// (FontStyle, PlotSVG, CardCSS).
//
// The reports themselves are its sub-packages, each reading tables only
// and importing this package and report/chart, never each other:
//
//   - report/study: the study report (cpi report study; reports/study-report.html);
//   - report/fidelity: a team's fidelity report (cpi report fidelity;
//     reports/fidelity-TEAM.html);
//   - report/chart: the hand-drawn SVG charts.
package report

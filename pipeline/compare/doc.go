// Package compare is the comparison stage: it compares the intervention
// with the control teams (DESIGN §9, §13) and writes the tables effects,
// balance, trust_effects, descriptives, missing_data, tipping_point and
// flow. It imports the table layer
// (pipeline/warehouse), schemas and stats, never another stage.
//
// # The data flow
//
//  1. compare_columns.go reads the analysis frame (cmpColumns): every
//     participant of the participants table, sorted by study_id, with
//     trust, team, arm, the demographic fields of the study
//     (s.DemographicFields(): coded ones as codes, 0/1 ones as numbers),
//     the withdrawn flag, every outcome's value at every wave (NaN when
//     missing) and each team's fidelity band in the last period. Nobody is
//     left out here.
//  2. Each analysis chooses its population (Analysis.Population: complete
//     cases by default, less whoever its Exclude leaves out);
//     compare_frame.go builds that frame for one outcome at one follow-up
//     wave, counting who was left out and why.
//  3. compare_fit.go fits the analysis (Analysis.Model sets up the term,
//     response and weights; FitSuff fits from per-team sufficient
//     statistics, FitDense from the design matrix when the sums cannot
//     settle it) and makes the effects rows.
//  4. trust_effects.go fits the per-trust arm effects (cr2_by_trust);
//     package describe summarises each outcome per wave and arm
//     (descriptives) and counts its missing values (missing_data);
//     flow.go counts the participant flow.
//
// # Adding an analysis
//
// An analysis is one file, analysis_<name>.go, with a type implementing
// Analysis:
//
//   - Name: the name used in the study's analysis.analyses and in effects;
//   - Methods and Term: one effects row per method, for that term (add a
//     new method or term to the code lists in schemas/codes.go so the
//     codebook labels it);
//   - Needs: the frame's columns it reads (documentation for readers);
//   - Population: whom it fits (a new Key when it differs from the
//     complete cases, e.g. KeepIncomplete for an imputation analysis);
//   - Model: the term column, the response, y_baseline or not, weights;
//     return a note to skip the outcome;
//   - FitSuff and FitDense: the fit (fitRows.olsSuff/olsDense give the CR2
//     row of an OLS model).
//
// An analysis that fits several data sets (multiple imputation) also
// implements SelfFitter: its Fit replaces FitSuff and FitDense
// (analysis_itt_mi.go).
//
// Then add the type to Registry (analysis.go) and its name to
// analysis.analyses in the study YAML. Nothing else lists analyses: the
// study definition is checked against Registry when it is loaded
// (schemas.KnownAnalyses(compare.Names()...) in cmd/cpi) and again by the
// stage (CheckStudy), with the file, line and field of an unknown name.
package compare

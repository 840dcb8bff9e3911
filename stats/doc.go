// Package stats holds the numerical routines of the cpi analysis plan
// (DESIGN.md §9): least squares, cluster-robust inference (CR1, CR2 with
// Satterthwaite degrees of freedom), the wild cluster bootstrap, logistic
// regression and inverse-probability weights, a random-intercept linear mixed
// model fitted by REML, effect sizes, Cronbach's alpha and intraclass
// correlations; multiple imputation of an outcome's baseline and follow-up
// with a random team intercept (ImputeMultilevel) and Rubin's rules with the
// Barnard–Rubin degrees of freedom, plain and cluster-robust (Rubin,
// RubinVector, RubinCR2, PoolCR2), and the cluster-robust pooling with the
// Satterthwaite df of the pooled variance (RubinCR2Satterthwaite).
//
// The package is pure numerics: plain slices and gonum matrices in, numbers
// out. It does no I/O, imports nothing else from cpi, and never draws random
// numbers without an explicit *rand.Rand. Data problems (a singular design,
// too few clusters, no variation, non-convergence) are returned as errors;
// only programmer errors such as slices of mismatched length may panic, and
// most of those are errors too.
//
// The least-squares fits, the REML random-intercept model and the propensity
// model also run from sufficient statistics, without the rows:
// ClusterSums keeps per-cluster cross-products (O(G·K²) memory) for
// SuffOLS and its CR1, CR2 and wild bootstrap, and SuffMixedREML;
// PatternCounts keeps covariate-pattern counts for LogisticPatterns. They
// give the dense functions' results to rounding (tests: 1e-10 relative).
//
// Every estimator names the R function or paper it reproduces; the tests
// check the package against numbers computed by R 4.2 (stats, sandwich 3.0-2,
// clubSandwich 0.5.8, lme4 1.1-31, psych 2.2.9; mice 3.15.0 for pooling) in
// testdata/reference.
package stats

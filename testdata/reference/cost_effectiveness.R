# Reference for the cost_effectiveness table, method cr2 (DESIGN §13): the
# net-benefit regression NB(lambda) = lambda*qaly - cost ~ arm + u_baseline +
# cost_baseline + trust, OLS, CR2 clustered by team, Satterthwaite df
# (clubSandwich::coef_test and conf_int), prob_cost_effective = pt(t, df);
# inc_cost and inc_qaly are the arm coefficients of cost and qaly on the same
# regressors. The data set is built here (seeded): five trusts with one
# intervention and one control team each, unequal team sizes, skewed costs
# with many zeros and a few inpatient stays, team effects on costs and QALYs.
# Run from this folder:
#   Rscript cost_effectiveness.R
# writes cost_effectiveness_data.csv and cost_effectiveness_cr2.csv.
suppressPackageStartupMessages(library(clubSandwich))
set.seed(20190329)
trusts <- c("AWP", "BDCT", "EPUT", "HPFT", "TEWV")
rows <- list()
for (tr in trusts) {
  for (arm in c("intervention", "control")) {
    team <- paste0(tr, ifelse(arm == "intervention", "-01", "-02"))
    n <- sample(8:22, 1)
    team_cost <- rnorm(1, 0, 0.3)
    team_u <- rnorm(1, 0, 0.04)
    u0 <- pmin(1, pmax(-0.2, rnorm(n, 0.62 + team_u, 0.2)))
    u1 <- pmin(1, pmax(-0.2, u0 + rnorm(n, 0.03 + 0.04 * (arm == "intervention"), 0.12)))
    need <- exp(team_cost + rnorm(n, 0, 0.6))
    cost0 <- round(rpois(n, 6 * need) * 128 + rbinom(n, 1, 0.04) * 435 * (3 + rpois(n, 10)), 0)
    cost1 <- round(rbinom(n, 1, 0.85) * rpois(n, 7 * need) * 128 + rpois(n, 2 * need) * 39 +
      rbinom(n, 1, 0.05) * 435 * (3 + rpois(n, 12)) + (arm == "intervention") * rpois(n, 1.5) * 128, 0)
    rows[[length(rows) + 1]] <- data.frame(
      study_id = sprintf("%s-P%03d", team, seq_len(n)), trust = tr, team = team, arm = arm,
      u_baseline = round(u0, 3), cost_baseline = cost0, cost = cost1,
      qaly = 0.5 * (round(u0, 3) + round(u1, 3)) / 2)
  }
}
d <- do.call(rbind, rows)
d$arm <- factor(d$arm, levels = c("control", "intervention"))
d$trust <- factor(d$trust)
write.csv(transform(d, arm = as.character(arm), trust = as.character(trust),
  qaly = sprintf("%.17g", qaly)), "cost_effectiveness_data.csv", row.names = FALSE, quote = FALSE)

arm_test <- function(y) {
  fit <- lm(y ~ arm + u_baseline + cost_baseline + trust, data = d)
  ct <- coef_test(fit, vcov = "CR2", cluster = d$team, test = "Satterthwaite")
  ci <- conf_int(fit, vcov = "CR2", cluster = d$team, test = "Satterthwaite", level = 0.95)
  i <- which(rownames(ct) == "armintervention")
  list(est = ct$beta[i], se = ct$SE[i], df = ct$df_Satt[i], lo = ci$CI_L[i], hi = ci$CI_U[i])
}
ic <- arm_test(d$cost)
iq <- arm_test(d$qaly)
out <- NULL
for (lambda in seq(0, 50000, by = 1000)) {
  t <- arm_test(lambda * d$qaly - d$cost)
  out <- rbind(out, data.frame(lambda = lambda, inc_cost = ic$est, inc_qaly = iq$est, icer = ic$est / iq$est,
    inb = t$est, inb_se = t$se, inb_df = t$df, inb_ci_low = t$lo, inb_ci_high = t$hi,
    prob_cost_effective = pt(t$est / t$se, t$df), n_obs = nrow(d), n_clusters = length(unique(d$team))))
}
f <- function(x) sprintf("%.17g", x)
out[] <- lapply(out, function(col) if (is.numeric(col)) f(col) else col)
write.csv(out, "cost_effectiveness_cr2.csv", row.names = FALSE, quote = FALSE)

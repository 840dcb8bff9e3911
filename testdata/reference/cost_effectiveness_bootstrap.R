# Reference for cost_effectiveness, method two_stage_bootstrap (DESIGN §13),
# on the data set of cost_effectiveness.R: within each arm, cost and QALYs
# shrunk (y~ = m + c (ybar_j - m) + sqrt(n_j/(n_j-1)) (y - ybar_j), m the mean
# of the arm's team means, c^2 = max(0, 1 - W/S2B), S2B the variance of the
# team means, W the mean of s2_j/n_j); each replicate draws teams within arm
# with replacement, then participants within each team drawn with
# replacement (frequency weights), and fits lm(y~ ~ u_baseline +
# cost_baseline + trust + arm, weights), arm last so that lm's pivoting
# marks it NA when it is aliased with the trusts drawn (no trust with both
# arms drawn): such a replicate is left out and counted. R's own random numbers: the Go code
# agrees within Monte-Carlo error, not digit for digit.
#   Rscript cost_effectiveness_bootstrap.R   (writes cost_effectiveness_bootstrap.csv)
set.seed(7)
B <- 2000
d <- read.csv("cost_effectiveness_data.csv")
d$arm <- factor(d$arm, levels = c("control", "intervention"))
d$trust <- factor(d$trust)
shrink <- function(y) {
  out <- y
  for (a in levels(d$arm)) {
    ia <- d$arm == a
    teams <- unique(d$team[ia])
    means <- sapply(teams, function(g) mean(y[d$team == g]))
    m <- mean(means)
    W <- mean(sapply(teams, function(g) { x <- y[d$team == g]; if (length(x) > 1) var(x) / length(x) else 0 }))
    S2B <- var(means)
    cc <- if (S2B > 0) sqrt(max(0, 1 - W / S2B)) else 0
    for (g in teams) {
      i <- d$team == g
      n <- sum(i)
      infl <- if (n > 1) sqrt(n / (n - 1)) else 0
      out[i] <- m + cc * (mean(y[i]) - m) + infl * (y[i] - mean(y[i]))
    }
  }
  out
}
d$cost_s <- shrink(d$cost)
d$qaly_s <- shrink(d$qaly)
members <- split(seq_len(nrow(d)), d$team)
arm_of <- sapply(names(members), function(g) as.character(d$arm[members[[g]][1]]))
cs <- qs <- numeric(0)
failed <- 0
for (b in seq_len(B)) {
  w <- numeric(nrow(d))
  for (a in levels(d$arm)) {
    teams <- names(members)[arm_of == a]
    for (g in sample(teams, length(teams), replace = TRUE)) {
      m <- members[[g]]
      idx <- m[sample.int(length(m), length(m), replace = TRUE)]
      for (i in idx) w[i] <- w[i] + 1
    }
  }
  fc <- coef(lm(cost_s ~ u_baseline + cost_baseline + trust + arm, data = d, weights = w))["armintervention"]
  fq <- coef(lm(qaly_s ~ u_baseline + cost_baseline + trust + arm, data = d, weights = w))["armintervention"]
  if (is.na(fc) || is.na(fq)) { failed <- failed + 1; next }
  cs <- c(cs, fc); qs <- c(qs, fq)
}
out <- NULL
for (lambda in seq(0, 50000, by = 1000)) {
  inb <- lambda * qs - cs
  out <- rbind(out, data.frame(lambda = lambda, inb_se = sd(inb), inb_ci_low = quantile(inb, 0.025, names = FALSE),
    inb_ci_high = quantile(inb, 0.975, names = FALSE), prob_cost_effective = mean(inb > 0),
    replicates = B, failed = failed))
}
f <- function(x) sprintf("%.17g", x)
out[] <- lapply(out, function(col) if (is.numeric(col)) f(col) else col)
write.csv(out, "cost_effectiveness_bootstrap.csv", row.names = FALSE, quote = FALSE)

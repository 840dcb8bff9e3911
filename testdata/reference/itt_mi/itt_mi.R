# Reference for itt_mi / itt_delta (method cr2_mi; DESIGN §13): the pooling
# of completed data sets that cpi's own imputer produced
# (pipeline/compare: go test -run TestITTMIReference -update-itt writes
# completed.csv from ../mi/mi_data.csv, M = 5, the default study's
# imputation seed). Each completed set is fitted by
#   lm(y_fu ~ arm + y_base + trust)    (trust levels in the study's order)
# with clubSandwich::coef_test(vcov = "CR2", cluster = team,
# test = "Satterthwaite"), and the M results pooled by Rubin's rules
# (J. Pustejovsky, "Pooling clubSandwich results across multiple
# imputations", jepusto.com/mi-with-clubsandwich; see ../mi/README.md),
# the complete-data df df_com being the mean Satterthwaite df. The df is
# cpi's rule (DESIGN 13, stats.SatterthwaiteMIDF): Satterthwaite's
# approximation for t = ubar + (1 + 1/m) b with df_com df for ubar and
# m - 1 for b,
#   1/df = (1 - lambda)^2 / df_com + lambda^2 / (m - 1),
# df_obs = df_com / (1 - lambda)^2 (the ubar term). The recipe's
# Barnard-Rubin df and its p-value and interval are the *_br columns, for
# comparison. Row delta = 1.5: the same with 1.5 added to the
# intervention arm's imputed follow-ups (fu_imputed) before fitting
# (itt_delta's delta adjustment). Run from this folder:
#   Rscript itt_mi.R > expected.csv
suppressPackageStartupMessages(library(clubSandwich))
L <- read.csv("completed.csv", stringsAsFactors = FALSE)
L$trust <- factor(L$trust, levels = c("TEWV", "BDCT", "EPUT", "AWP", "HPFT"))
pool_cr2 <- function(delta) {
  q <- u <- df <- numeric(0)
  for (k in sort(unique(L$.imp))) {
    s <- L[L$.imp == k, ]
    shift <- s$fu_imputed == "true" & s$arm == 1
    s$y_fu[shift] <- s$y_fu[shift] + delta
    fit <- lm(y_fu ~ arm + y_base + trust, data = s)
    ct <- coef_test(fit, vcov = "CR2", cluster = s$team, test = "Satterthwaite")
    V <- vcovCR(fit, cluster = s$team, type = "CR2")
    q <- c(q, coef(fit)[["arm"]]); u <- c(u, V["arm", "arm"]); df <- c(df, ct$df_Satt[ct$Coef == "arm"])
  }
  m <- length(q)
  qbar <- mean(q); ubar <- mean(u); b <- var(q); t <- ubar + (1 + 1/m) * b
  lambda <- (1 + 1/m) * b / t
  df_com <- mean(df)
  df_m <- if (b > 0) (m - 1) / lambda^2 else Inf
  df_obs_br <- df_com * (df_com + 1) * (1 - lambda) / (df_com + 3)
  df_br <- 1 / (1 / df_m + 1 / df_obs_br)
  df_obs <- df_com / (1 - lambda)^2
  dfv <- 1 / ((1 - lambda)^2 / df_com + lambda^2 / (m - 1))
  se <- sqrt(t)
  data.frame(delta = delta, qbar = qbar, ubar = ubar, b = b, t = t, lambda = lambda, df_com = df_com,
             df_m = df_m, df_obs = df_obs, df = dfv, std_error = se,
             p_value = 2 * pt(-abs(qbar / se), dfv),
             ci_low = qbar - qt(0.975, dfv) * se, ci_high = qbar + qt(0.975, dfv) * se,
             df_br = df_br, p_value_br = 2 * pt(-abs(qbar / se), df_br),
             ci_low_br = qbar - qt(0.975, df_br) * se, ci_high_br = qbar + qt(0.975, df_br) * se)
}
out <- rbind(pool_cr2(0), pool_cr2(1.5))
out[] <- lapply(out, function(v) sprintf("%.17g", v))
write.csv(out, stdout(), row.names = FALSE, quote = FALSE)

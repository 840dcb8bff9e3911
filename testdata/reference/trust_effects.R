# Reference for the trust_effects table (method cr2_by_trust): one model over
# all trusts, y_fu ~ 0 + trust + trust:arm + y_base, OLS, CR2 clustered by
# team, Satterthwaite df for each trust's arm coefficient
# (clubSandwich::coef_test). Run from this folder:
#   Rscript trust_effects.R > trust_effects.csv
# Data: ancova.csv as it is (one team per arm in each trust: the df are
# tiny), and "split": each team split in two by the participant's position
# within the team in study_id order (odd -> team "<team>a", even -> "<team>b"),
# so two teams per arm per trust.
suppressPackageStartupMessages(library(clubSandwich))
d <- read.csv("ancova.csv", stringsAsFactors = FALSE)
d <- d[order(d$study_id), ]
d$pos <- ave(seq_len(nrow(d)), d$team, FUN = seq_along)
split <- d
split$team <- paste0(split$team, ifelse(split$pos %% 2 == 1, "a", "b"))
out <- NULL
for (variant in c("ancova", "split")) {
  x <- if (variant == "ancova") d else split
  x$trust <- factor(x$trust)
  fit <- lm(y_fu ~ 0 + trust + trust:arm + y_base, data = x)
  ct <- coef_test(fit, vcov = "CR2", cluster = x$team, test = "Satterthwaite")
  ci <- conf_int(fit, vcov = "CR2", cluster = x$team, test = "Satterthwaite", level = 0.95)
  for (tr in levels(x$trust)) {
    nm <- paste0("trust", tr, ":arm")
    i <- which(names(coef(fit)) == nm)
    out <- rbind(out, data.frame(
      data = variant, trust = tr,
      estimate = sprintf("%.17g", ct$beta[i]), std_error = sprintf("%.17g", ct$SE[i]),
      df = sprintf("%.17g", ct$df_Satt[i]), p_value = sprintf("%.17g", ct$p_Satt[i]),
      ci_low = sprintf("%.17g", ci$CI_L[i]), ci_high = sprintf("%.17g", ci$CI_U[i]),
      n_obs = sum(x$trust == tr)))
  }
}
write.csv(out, stdout(), row.names = FALSE, quote = FALSE)

# R's glmnet on a CSV (label column y), for tests/test_penalty.py: the multinomial fit at the
# last value of a decreasing path ending at lambda, written as rows (intercepts, then features)
# x classes. Arguments: data.csv lambda alpha grouped|ungrouped out.csv
suppressMessages(library(glmnet))
args <- commandArgs(trailingOnly = TRUE)
table <- read.csv(args[1])
y <- factor(table$y)
X <- as.matrix(table[, names(table) != "y"])
lambda <- as.numeric(args[2])
path <- lambda * 10^seq(2, 0, length.out = 50)  # glmnet is meant to run down a path, warm-started
fit <- glmnet(X, y, family = "multinomial", alpha = as.numeric(args[3]), lambda = path,
              type.multinomial = args[4], thresh = 1e-14, maxit = 1e6)
per_class <- coef(fit, s = lambda)
out <- do.call(cbind, lapply(per_class, function(m) as.numeric(m[, ncol(m)])))
write.table(out, args[5], row.names = FALSE, col.names = FALSE, sep = ",")

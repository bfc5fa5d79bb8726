-- Mixup: each example and its soft target are blended with a shuffled partner, with one lambda
-- drawn from Beta(alpha, alpha) per batch.
return hasten.plugin {
  name = "mixup", title = "Mixup",
  summary = "Blend each example and its soft target with a shuffled partner.",
  reference = "Zhang et al. ICLR 2018, arXiv:1710.09412",
  taxonomy = { component = "data", action = "retrofit", when = "every step" },
  data = "images",
  params = { alpha = { default = 0.2, min = 0.01, max = 10, doc = "Beta(alpha, alpha) for the mixing weight" } },
  batch_start = function(ctx, p)
    local lam = ctx.rng:beta(p.alpha, p.alpha)
    ctx.batch:mix(ctx.rng:perm(ctx.batch:size()), lam)
    ctx:metric("mixup_lambda", lam)
  end,
}

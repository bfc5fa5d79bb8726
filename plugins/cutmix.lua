-- CutMix: paste a box from a shuffled partner image; targets mix by the box's area.
return hasten.plugin {
  name = "cutmix", title = "CutMix",
  summary = "Paste a box from a partner image and mix the targets by area.",
  reference = "Yun et al. ICCV 2019, arXiv:1905.04899",
  taxonomy = { component = "data", action = "retrofit", when = "every step" },
  data = "images",
  params = { alpha = { default = 1.0, min = 0.01, max = 10, doc = "Beta(alpha, alpha) for the kept area" } },
  batch_start = function(ctx, p)
    local lam = ctx.batch:cutmix(ctx.rng:perm(ctx.batch:size()), ctx.rng:beta(p.alpha, p.alpha))
    ctx:metric("cutmix_lambda", lam)
  end,
}

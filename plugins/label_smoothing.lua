-- Label smoothing: soft targets spread alpha of the probability mass evenly over all classes.
return hasten.plugin {
  name = "label_smoothing", title = "Label smoothing",
  summary = "Mix one-hot targets with the uniform distribution.",
  reference = "Szegedy et al. 2016, arXiv:1512.00567",
  taxonomy = { component = "optimization", action = "replace", when = "every step" },
  params = { alpha = { default = 0.1, min = 0, max = 0.5, doc = "probability mass spread evenly" } },
  before_loss = function(ctx, p) ctx.batch.targets:smooth_(p.alpha) end,
}

-- Alternating flips: instead of a fresh coin per example and epoch, each example is flipped in
-- every other epoch (a coin decides epoch 0), so two consecutive epochs see both views of every
-- image and none is repeated by chance. Replaces the recipe's random flips.
return hasten.plugin {
  name = "alternating_flip", title = "Alternating flip",
  summary = "Flip each image in every other epoch instead of at random.",
  reference = "Jordan 2024, arXiv:2404.00498",
  taxonomy = { component = "data", action = "replace", when = "every step" },
  data = "images",
  params = {},
  fit_start = function(ctx, p)
    if not ctx.data:augment().flip then ctx:log("the recipe does not flip images; alternating flips add them") end
    ctx.data:augment { flip = "alternate" }
  end,
}

-- Linear learning-rate warm-up over the first part of the budget, on top of whatever schedule
-- the recipe (or an earlier plugin) set for this step.
return hasten.plugin {
  name = "warmup", title = "Learning-rate warm-up",
  summary = "Scale the lr linearly from 0 to its scheduled value over the first steps.",
  reference = "Goyal et al. 2017, arXiv:1706.02677",
  taxonomy = { component = "optimization", action = "replace", when = "scheduled" },
  params = { fraction = { default = 0.05, min = 0.001, max = 1, doc = "fraction of the budget spent warming up" } },
  before_step = function(ctx, p)
    if ctx.progress < p.fraction then
      ctx.optim.lr = ctx.optim.lr * (ctx.progress / p.fraction)
    end
  end,
}

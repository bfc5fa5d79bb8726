-- "Just train for less time": the learning rate decays linearly to zero exactly at the budget's
-- end, whatever the budget is, so a shorter run is a complete run rather than a cut-off one.
return hasten.plugin {
  name = "budget_schedule", title = "Budgeted training",
  summary = "Linear learning-rate decay that reaches zero at the end of the budget.",
  reference = "Li, Yumer, Ramanan ICLR 2020, arXiv:1905.04753",
  taxonomy = { component = "optimization", action = "remove", when = "scheduled" },
  exclusive = "learning-rate schedule",   -- each sets the lr outright: the last would win
  params = { final = { default = 0, min = 0, max = 1, doc = "lr at the end, as a fraction of the recipe's lr" } },
  before_step = function(ctx, p)
    ctx.optim.lr = ctx.optim.base_lr * (p.final + (1 - p.final) * (1 - ctx.progress))
  end,
}

-- One learning-rate cycle (Smith & Topin): from a tenth of the peak up to the peak over the first
-- quarter of the budget, then down to (almost) nothing; momentum moves the other way. The peak is
-- the recipe's lr times `peak`; replaces the recipe's schedule.
return hasten.plugin {
  name = "one_cycle", title = "One-cycle policy",
  summary = "One LR cycle up to a peak 10x its start and down to zero (momentum inverse).",
  reference = "Smith & Topin 2019, arXiv:1708.07120",
  taxonomy = { component = "optimization", action = "replace", when = "scheduled" },
  exclusive = "learning-rate schedule",   -- each sets the lr outright: the last would win
  params = {
    peak = { default = 1, min = 0.01, max = 100, doc = "peak lr as a multiple of the recipe's lr" },
    div = { default = 10, min = 1, max = 1000, doc = "the cycle starts at peak / div" },
    pct_up = { default = 0.25, min = 0.01, max = 0.99, doc = "fraction of the budget spent rising" },
    final = { default = 0, min = 0, max = 1, doc = "lr at the end, as a fraction of the recipe's lr" },
    mom_max = { default = 0.95, min = 0, max = 0.999, doc = "momentum at the start and the end" },
    mom_min = { default = 0.85, min = 0, max = 0.999, doc = "momentum at the lr peak" },
  },
  before_step = function(ctx, p)
    local x, f, rise = ctx.progress, 1, 0
    if x < p.pct_up then
      rise = x / p.pct_up
      f = p.peak / p.div + (p.peak - p.peak / p.div) * rise
    else
      rise = 0.5 * (1 + math.cos(math.pi * (x - p.pct_up) / (1 - p.pct_up)))
      f = p.final + (p.peak - p.final) * rise
    end
    ctx.optim.lr = ctx.optim.base_lr * f
    ctx.optim.momentum = p.mom_max - (p.mom_max - p.mom_min) * rise
  end,
}

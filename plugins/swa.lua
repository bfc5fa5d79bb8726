-- Stochastic weight averaging: over the late part of training, an equal-weight average of the
-- weights (and of the batch-norm running statistics, standing in for the paper's recomputation)
-- is kept, and evaluation uses it; the live weights are restored after each evaluation.
return hasten.plugin {
  name = "swa", title = "Stochastic weight averaging",
  summary = "Evaluate the equal-weight average of the weights over the late part of training.",
  reference = "Izmailov et al. UAI 2018, arXiv:1803.05407",
  taxonomy = { component = "optimization", action = "retrofit", when = "phase" },
  exclusive = "weight averaging",   -- evaluating two averages at once is neither
  params = {
    start = { default = 0.75, min = 0, max = 1, doc = "averaging begins at this fraction of the budget" },
    every = { default = 1, min = 1, max = 100000, integer = true, doc = "add the weights to the average every N steps" },
    lr = { default = 0, min = 0, max = 10, doc = "hold the lr at this times the recipe's while averaging (0 = keep the schedule)" },
  },
  before_step = function(ctx, p)
    if p.lr > 0 and ctx.progress >= p.start then ctx.optim.lr = p.lr * ctx.optim.base_lr end
  end,
  after_step = function(ctx, p)
    if ctx.progress < p.start or ctx.step % p.every ~= 0 then return end
    if not p.avg then
      p.avg, p.stats, p.n = ctx.model.weights:clone(), ctx.model.stats:clone(), 1
      ctx:log(string.format("averaging from step %d (%.0f%% of the budget)", ctx.step, 100 * ctx.progress))
      return
    end
    p.n = p.n + 1
    p.avg:lerp_(ctx.model.weights, 1 / p.n)
    p.stats:lerp_(ctx.model.stats, 1 / p.n)
    ctx:metric("swa_models", p.n)
  end,
  eval_start = function(ctx, p)
    if not p.avg then return end
    p.live = p.live or ctx.model.weights:clone()
    p.live_stats = p.live_stats or ctx.model.stats:clone()
    p.live:copy_(ctx.model.weights)
    p.live_stats:copy_(ctx.model.stats)
    ctx.model.weights:copy_(p.avg)
    ctx.model.stats:copy_(p.stats)
  end,
  eval_end = function(ctx, p)
    if not p.avg then return end
    ctx.model.weights:copy_(p.live)
    ctx.model.stats:copy_(p.live_stats)
  end,
}

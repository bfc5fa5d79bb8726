-- Stochastic weight averaging: over the late part of training, an equal-weight average of the
-- weights is kept, and evaluation uses it; the live weights are restored after each evaluation.
-- Batch-norm statistics that belong to no single set of weights are recomputed for the average,
-- as the paper does: before an evaluation that sees a new average, bn_batches random batches of
-- training data go forward in training mode (ctx.model:refresh_stats, on the training clock).
-- The paper makes a full pass; a few dozen batches cost far less and estimate the same means.
-- bn_batches = 0 averages the running statistics alongside the weights instead.
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
    bn_batches = { default = 32, min = 0, max = 1e6, integer = true,
                   doc = "training batches that recompute batch-norm statistics for the average (0 = average them)" },
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
    if p.bn_batches == 0 then p.stats:lerp_(ctx.model.stats, 1 / p.n) end
    ctx:metric("swa_models", p.n)
  end,
  eval_start = function(ctx, p)
    if not p.avg then return end
    p.live = p.live or ctx.model.weights:clone()
    p.live_stats = p.live_stats or ctx.model.stats:clone()
    p.live:copy_(ctx.model.weights)
    p.live_stats:copy_(ctx.model.stats)
    ctx.model.weights:copy_(p.avg)
    if p.bn_batches > 0 and p.refreshed ~= p.n then   -- statistics for this average, once
      ctx.model:refresh_stats(p.bn_batches)
      p.stats:copy_(ctx.model.stats)
      p.refreshed = p.n
    end
    ctx.model.stats:copy_(p.stats)
  end,
  eval_end = function(ctx, p)
    if not p.avg then return end
    ctx.model.weights:copy_(p.live)
    ctx.model.stats:copy_(p.live_stats)
  end,
}

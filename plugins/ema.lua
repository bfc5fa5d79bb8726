-- Exponential moving average of the weights, evaluated instead of the live weights; the live
-- weights are restored after each evaluation, so training is unchanged. Batch-norm running
-- statistics are averaged alongside (as TF's EMA of the moving averages, timm and Composer do), so
-- the averaged weights are evaluated with statistics of the same age, not the live weights' ones.
return hasten.plugin {
  name = "ema", title = "Weight EMA",
  summary = "Evaluate an exponential moving average of the weights.",
  reference = "Polyak & Juditsky 1992; Tarvainen & Valpola 2017, arXiv:1703.01780",
  taxonomy = { component = "optimization", action = "retrofit", when = "periodic" },
  exclusive = "weight averaging",   -- evaluating two averages at once is neither
  params = {
    half_life = { default = 100, min = 1, max = 1e7, doc = "steps for a weight's influence to halve" },
    every = { default = 1, min = 1, max = 1000, integer = true, doc = "update the average every N steps" },
  },
  after_step = function(ctx, p)
    if not p.avg then
      p.avg, p.stats = ctx.model.weights:clone(), ctx.model.stats:clone()
      return
    end
    if ctx.step % p.every ~= 0 then return end
    local decay = 0.5 ^ (p.every / p.half_life)
    p.avg:lerp_(ctx.model.weights, 1 - decay)
    p.stats:lerp_(ctx.model.stats, 1 - decay)
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

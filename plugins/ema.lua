-- Exponential moving average of the weights, evaluated instead of the live weights; the live
-- weights are restored after each evaluation, so training is unchanged.
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
    if not p.avg then p.avg = ctx.model.weights:clone() return end
    if ctx.step % p.every ~= 0 then return end
    local decay = 0.5 ^ (p.every / p.half_life)
    p.avg:lerp_(ctx.model.weights, 1 - decay)
  end,
  eval_start = function(ctx, p)
    if not p.avg then return end
    p.live = p.live or ctx.model.weights:clone()
    p.live:copy_(ctx.model.weights)
    ctx.model.weights:copy_(p.avg)
  end,
  eval_end = function(ctx, p)
    if p.avg then ctx.model.weights:copy_(p.live) end
  end,
}

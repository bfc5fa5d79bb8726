-- Lookahead: the optimizer's weights ("fast") run ahead for k steps; then slow weights move a
-- fraction alpha toward them and training restarts from the slow weights.
return hasten.plugin {
  name = "lookahead", title = "Lookahead",
  summary = "Every k steps, move slow weights toward the fast ones and restart from them.",
  reference = "Zhang, Lucas, Hinton & Ba, NeurIPS 2019, arXiv:1907.08610",
  taxonomy = { component = "optimization", action = "retrofit", when = "periodic" },
  params = {
    k = { default = 5, min = 1, max = 1000, integer = true, doc = "fast steps between synchronisations" },
    alpha = { default = 0.5, min = 0, max = 1, doc = "fraction of the way the slow weights move" },
  },
  -- After any fit_start surgery: the slow weights start as the initial ones.
  batch_start = function(ctx, p)
    if not p.slow then p.slow = ctx.model.weights:clone() end
  end,
  after_step = function(ctx, p)
    if ctx.step % p.k ~= 0 then return end
    p.slow:lerp_(ctx.model.weights, p.alpha)
    ctx.model.weights:copy_(p.slow)
  end,
}

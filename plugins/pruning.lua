-- Magnitude pruning (Zhu & Gupta 2017): the weight matrices' smallest entries are set to zero and
-- kept there, the pruned fraction growing on a cubic schedule to the final sparsity. The dense
-- kernels do the same work on a sparse matrix, so this saves no time here: it is the baseline a
-- sparse kernel would have to beat, and the measure of what sparsity costs in accuracy.
return hasten.plugin {
  name = "pruning", title = "Magnitude pruning",
  summary = "Zero the smallest weights on a schedule (no time saved by dense kernels).",
  reference = "Zhu & Gupta 2017, arXiv:1710.01878; Han et al. 2015, arXiv:1506.02626",
  taxonomy = { component = "function", action = "remove", when = "scheduled" },
  params = {
    sparsity = { default = 0.5, min = 0, max = 0.99, doc = "fraction of each weight matrix pruned by the end" },
    start = { default = 0.1, min = 0, max = 1, doc = "pruning begins at this fraction of the budget" },
    stop = { default = 0.6, min = 0, max = 1, doc = "the final sparsity is reached at this fraction" },
    every = { default = 50, min = 1, max = 100000, integer = true, doc = "steps between mask updates" },
  },
  fit_start = function(ctx, p)
    if p.stop < p.start then error("stop (" .. p.stop .. ") must not come before start (" .. p.start .. ")") end
  end,
  after_step = function(ctx, p)
    local t = (ctx.progress - p.start) / math.max(p.stop - p.start, 1e-9)
    if t < 0 then return end
    local s = p.sparsity * (1 - (1 - math.min(t, 1)) ^ 3)
    if not p.masks or (s > p.applied and (ctx.step - p.at >= p.every or t >= 1)) then
      if not p.mats then   -- after any model surgery at fit_start
        p.mats = {}
        for _, t in ipairs(ctx.model:matrices()) do p.mats[#p.mats + 1] = t.value end
      end
      p.masks, p.applied, p.at = {}, s, ctx.step
      local zeros, total = 0, 0
      for i, w in ipairs(p.mats) do
        local z
        p.masks[i], z = w:magnitude_mask(s)
        zeros, total = zeros + z, total + w:size()
      end
      p.zeros, p.total = zeros, total
    end
    for i, w in ipairs(p.mats) do w:mul_(p.masks[i]) end
    ctx:metric("sparsity", p.zeros / p.total)
  end,
  fit_end = function(ctx, p)
    if p.total then
      ctx:log(string.format("%d of %d matrix weights are zero (%.1f%%); dense kernels ran at full cost",
                            p.zeros, p.total, 100 * p.zeros / p.total))
    end
  end,
}

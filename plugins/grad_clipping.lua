-- Gradient clipping. By global norm (the default): the whole gradient is scaled down when its
-- norm is too big. Adaptive (AGC, Brock et al. 2021): each unit's gradient (a weight's row, an
-- output channel of a conv; a bias or norm vector as a whole) is scaled down to at most `clip`
-- times the norm of that unit's weights, so no unit's step is large against it; the output layer
-- is left as it is, as in the paper. Vectors inside residual blocks are not clipped (their
-- matrices are).
return hasten.plugin {
  name = "grad_clipping", title = "Gradient clipping",
  summary = "Clip the global gradient norm, or each unit's against its weights (adaptive).",
  reference = "Pascanu et al. ICML 2013, arXiv:1211.5063; Brock et al. 2021 (AGC), arXiv:2102.06171",
  taxonomy = { component = "optimization", action = "restrict", when = "every step" },
  params = {
    max_norm = { default = 1.0, min = 1e-6, max = 1e6, doc = "largest allowed global L2 norm" },
    adaptive = { default = false, doc = "AGC: clip each unit's gradient norm to clip times its weights' norm" },
    clip = { default = 0.01, min = 1e-6, max = 10, doc = "adaptive: largest ratio of a unit's gradient norm to its weights' norm" },
  },
  after_backward = function(ctx, p)
    if not p.adaptive then
      local n = ctx.model.grads:norm()
      if n > p.max_norm then ctx.model.grads:mul_(p.max_norm / n) end
      ctx:metric("grad_norm", n)
      return
    end
    if not p.units then   -- first step: after any model surgery at fit_start
      p.units = {}
      local last = 0
      for i = 1, ctx.model:layers() do
        if ctx.model:layer(i).params > 0 then last = i end
      end
      for _, t in ipairs(ctx.model:matrices()) do   -- nested ones included
        if t.layer ~= last then p.units[#p.units + 1] = t end
      end
      for i = 1, last - 1 do
        for _, t in ipairs(ctx.model:layer(i).tensors) do
          if select("#", t.value:shape()) == 1 then p.units[#p.units + 1] = t end
        end
      end
    end
    local clipped = 0
    for _, t in ipairs(p.units) do
      local _, n = t.grad:clip_units_(t.value, p.clip)
      clipped = clipped + n
    end
    ctx:metric("agc_clipped", clipped)
  end,
}

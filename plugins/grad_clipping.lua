-- Gradient clipping by global norm: the whole gradient is scaled down when its norm is too big.
return hasten.plugin {
  name = "grad_clipping", title = "Gradient clipping",
  summary = "Clip the global gradient norm.",
  reference = "Pascanu et al. ICML 2013, arXiv:1211.5063",
  taxonomy = { component = "optimization", action = "restrict", when = "every step" },
  params = { max_norm = { default = 1.0, min = 1e-6, max = 1e6, doc = "largest allowed global L2 norm" } },
  after_backward = function(ctx, p)
    local n = ctx.model.grads:norm()
    if n > p.max_norm then ctx.model.grads:mul_(p.max_norm / n) end
    ctx:metric("grad_norm", n)
  end,
}

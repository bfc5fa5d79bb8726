-- Sharpness-aware minimisation: step to the nearby worst-case point (radius rho along the
-- gradient), take the gradient there, then return. Every `every` steps; costs an extra pass.
return hasten.plugin {
  name = "sam", title = "Sharpness-aware minimisation",
  summary = "Gradient at an adversarially perturbed point; an extra forward+backward when active.",
  reference = "Foret et al. ICLR 2021, arXiv:2010.01412",
  taxonomy = { component = "optimization", action = "retrofit", when = "periodic" },
  params = {
    rho = { default = 0.05, min = 0, max = 10, doc = "radius of the ascent step" },
    every = { default = 10, min = 1, max = 10000, integer = true, doc = "apply on every N-th step" },
  },
  after_backward = function(ctx, p)
    if ctx.step % p.every ~= 0 then return end
    local n = ctx.model.grads:norm()
    if n == 0 then return end
    p.e = p.e or ctx.model.grads:clone()
    p.e:copy_(ctx.model.grads):mul_(p.rho / n)
    ctx.model.weights:add_(p.e)
    ctx:regrad()
    ctx.model.weights:add_(p.e, -1)
  end,
}

-- LARS: each weight matrix steps at its own rate, eta |w| / (|g| + wd |w|) times the lr, so no
-- layer's update is large against its weights; biases and norm parameters keep the plain step.
-- Weight decay of the matrices moves into the gradient, as in the paper. clip = true (LARC) caps
-- each layer's rate at the recipe's lr, so the recipe's lr works unchanged; clip = false is the
-- original, which wants the recipe's lr raised with the batch.
return hasten.plugin {
  name = "lars", title = "LARS",
  summary = "Layer-wise trust ratio |w| / |g| on the step size, for large batches.",
  reference = "You, Gitman, Ginsburg 2017, arXiv:1708.03888",
  taxonomy = { component = "optimization", action = "replace", when = "every step" },
  exclusive = "update rule",   -- rescales the matrices' steps, as muon rewrites them
  params = {
    eta = { default = 0.001, min = 1e-6, max = 1, doc = "trust coefficient" },
    clip = { default = true, doc = "cap each layer's rate at the lr (LARC)" },
  },
  fit_start = function(ctx, p)
    if ctx.optim.kind ~= "sgd" then error("lars scales SGD steps; this recipe uses " .. ctx.optim.kind) end
  end,
  before_step = function(ctx, p)
    if not p.mats then   -- first step: after any model surgery at fit_start
      p.mats, p.wd = ctx.model:matrices(), ctx.optim:get("decay", "weight_decay")
      ctx.optim:set("decay", "weight_decay", 0)   -- applied below, inside the trust ratio
    end
    local lr, low = ctx.optim:get("decay", "lr"), math.huge
    for _, t in ipairs(p.mats) do
      local wn, gn = t.value:norm(), t.grad:norm()
      local rate = 1
      if wn > 0 and gn > 0 then rate = p.eta * wn / (gn + p.wd * wn) end
      if p.clip and lr > 0 then rate = math.min(rate / lr, 1) end
      t.grad:add_(t.value, p.wd):mul_(rate)
      low = math.min(low, rate)
    end
    ctx:metric("lars_min_rate", low)
  end,
}

-- LARS: each weight matrix steps at its own rate, eta |w| / (|g| + wd |w|) times the lr, so no
-- layer's update is large against its weights; biases and norm parameters keep the plain step.
-- Weight decay of the matrices moves into the gradient, as in the paper. clip = true (LARC) caps
-- each layer's rate at the recipe's lr, so the recipe's lr works unchanged; clip = false is the
-- original, which wants the recipe's lr raised with the batch.
-- Under adamw it is LAMB, LARS's Adam counterpart: each matrix's AdamW step u (decoupled decay
-- included) is rescaled to lr |w| / |u| times u, the trust ratio on the whole update (eta unused);
-- clip = true lets the ratio shrink the AdamW step but not grow it. The step is taken by the
-- optimizer, then rescaled at after_step from a copy of the weights made at before_step; list
-- lars after plugins that move the weights at after_step (lookahead), so it rescales the step
-- before they run (after_* events go in reverse order).
return hasten.plugin {
  name = "lars", title = "LARS / LAMB",
  summary = "Layer-wise trust ratio |w| / |g| on the step size, for large batches (LAMB under adamw).",
  reference = "You, Gitman, Ginsburg 2017, arXiv:1708.03888; You et al. ICLR 2020 (LAMB), arXiv:1904.00962",
  taxonomy = { component = "optimization", action = "replace", when = "every step" },
  exclusive = "update rule",   -- rescales the matrices' steps, as muon rewrites them
  params = {
    eta = { default = 0.001, min = 1e-6, max = 1, doc = "trust coefficient (LARS, under sgd)" },
    clip = { default = true, doc = "cap each layer's rate at the lr (LARC; under adamw: at AdamW's own step)" },
  },
  fit_start = function(ctx, p)
    p.lamb = ctx.optim.kind == "adamw"
    if p.lamb then ctx:log("adamw: LAMB, each matrix's AdamW step rescaled to lr |w| / |u| times u") end
  end,
  before_step = function(ctx, p)
    if not p.mats then   -- first step: after any model surgery at fit_start
      p.mats, p.wd = ctx.model:matrices(), ctx.optim:get("decay", "weight_decay")
      if not p.lamb then ctx.optim:set("decay", "weight_decay", 0) end   -- applied below, inside the trust ratio
    end
    local lr, low = ctx.optim:get("decay", "lr"), math.huge
    if p.lamb then   -- keep the weights as they are; after_step rescales the step from them
      p.lr = lr
      for _, t in ipairs(p.mats) do
        t.before = t.before or t.value:clone()
        t.before:copy_(t.value)
      end
      return
    end
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
  after_step = function(ctx, p)
    if not p.lamb or p.lr == 0 then return end
    local low = math.huge
    for _, t in ipairs(p.mats) do
      t.step = t.step or t.value:clone()
      local sn, wn = t.step:copy_(t.value):add_(t.before, -1):norm(), t.before:norm()   -- |lr u|, |w|
      local rate = 1
      if wn > 0 and sn > 0 then rate = p.lr * wn / sn end
      if p.clip then rate = math.min(rate, 1) end
      t.value:copy_(t.before):add_(t.step, rate)
      low = math.min(low, rate)
    end
    ctx:metric("lars_min_rate", low)
  end,
}

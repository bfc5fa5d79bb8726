-- Muon: for every weight matrix but the output layer's, the Nesterov momentum of the gradient is
-- orthogonalised (Newton-Schulz) before the step, so all its directions move at one rate. Conv
-- filters count as (out, k*k*in) matrices. Biases, norms, embedding tables and the output layer
-- keep the recipe's SGD (Jordan: Muon is for hidden matrices; an embedding's rows are lookups, not
-- a linear map), which this plugin reproduces exactly for the output layer's weight.
return hasten.plugin {
  name = "muon", title = "Muon",
  summary = "Orthogonalised momentum (Newton-Schulz) for weight matrices; SGD for the rest.",
  reference = "Jordan et al. 2024, kellerjordan.github.io/posts/muon",
  taxonomy = { component = "optimization", action = "replace", when = "every step" },
  exclusive = "update rule",   -- rewrites the matrices' steps, as lars does
  params = {
    lr = { default = 0.02, min = 0, max = 10, doc = "learning rate of the matrices, scheduled like the recipe's" },
    momentum = { default = 0.95, min = 0, max = 0.999, doc = "Nesterov momentum of the matrices" },
    steps = { default = 5, min = 1, max = 20, integer = true, doc = "Newton-Schulz iterations" },
  },
  fit_start = function(ctx, p)
    if ctx.optim.kind ~= "sgd" then error("muon replaces SGD's matrix updates; this recipe uses " .. ctx.optim.kind) end
    p.head_momentum = ctx.optim:get("decay", "momentum")
    p.wd = ctx.optim:get("decay", "weight_decay")
  end,
  batch_start = function(ctx, p)
    -- the decay group (weight matrices) steps at muon's lr, without the optimizer's own momentum
    ctx.optim:set("decay", "lr_scale", p.lr / ctx.optim.base_lr)
    ctx.optim:set("decay", "momentum", 0)
  end,
  after_backward = function(ctx, p)
    if not p.mats then   -- first step: after any model surgery at fit_start
      p.mats, p.head = {}, {}
      local last = 0
      for i = 1, ctx.model:layers() do
        if ctx.model:layer(i).params > 0 then last = i end
      end
      for _, t in ipairs(ctx.model:matrices()) do
        if ctx.model:layer(t.layer).kind ~= "embed" then   -- an embedding keeps the no_decay group's SGD
          local rows = t.value:shape()
          local e = { value = t.value, grad = t.grad, buf = t.grad:clone():fill_(0) }
          e.scale = math.sqrt(math.max(1, rows / (t.value:size() / rows)))
          table.insert(t.layer == last and p.head or p.mats, e)
        end
      end
    end
    for _, e in ipairs(p.mats) do
      e.buf:mul_(p.momentum):add_(e.grad)
      e.grad:add_(e.buf, p.momentum):orthogonalize_(p.steps):mul_(e.scale)
    end
    -- the output layer: the recipe's SGD step, rescaled from the decay group's settings
    local ratio = ctx.optim.base_lr / p.lr
    for _, e in ipairs(p.head) do
      e.buf:mul_(p.head_momentum):add_(e.grad)
      if ctx.optim.nesterov then e.grad:add_(e.buf, p.head_momentum) else e.grad:copy_(e.buf) end
      e.grad:mul_(ratio):add_(e.value, (ratio - 1) * p.wd)
    end
  end,
}

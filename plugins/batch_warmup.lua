-- Batch-size warm-up: early steps train on a random part of each loaded batch, growing linearly to
-- the whole batch: more, smaller steps while the weights move fast. With scale_lr the learning rate
-- follows the batch size (the linear scaling rule), so a small step is as noisy as a full one.
return hasten.plugin {
  name = "batch_warmup", title = "Batch-size warm-up",
  summary = "Small batches early (a random part of each batch), growing to the full batch.",
  reference = "Smith, Kindermans, Ying & Le, ICLR 2018, arXiv:1711.00489; Goyal et al. 2017",
  taxonomy = { component = "optimization", action = "restrict", when = "scheduled" },
  params = {
    start = { default = 0.25, min = 0.01, max = 1, doc = "fraction of the batch trained on at the start" },
    ramp = { default = 0.5, min = 0.01, max = 1, doc = "fraction of the budget over which it grows to 1" },
    scale_lr = { default = true, doc = "scale the lr with the batch fraction (linear scaling rule)" },
  },
  batch_start = function(ctx, p)
    local n = ctx.batch:size()
    local f = p.start + (1 - p.start) * math.min(1, ctx.progress / p.ramp)
    local k = math.max(1, math.ceil(f * n - 1e-9))
    if k < n then ctx.batch:select(ctx.rng:perm(n):topk(k)) end   -- k rows chosen at random
    p.frac = k / n
    ctx:metric("batch_rows", k)
  end,
  before_step = function(ctx, p)
    if p.scale_lr and p.frac < 1 then ctx.optim.lr = ctx.optim.lr * p.frac end
  end,
}

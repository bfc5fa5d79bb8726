-- Curriculum by loss: after a first epoch on all the data, every training example is scored by its
-- loss, and each later epoch trains on the easiest part only, a pool that grows linearly from
-- `start` of the data to all of it at `full` of the budget. The scoring pass is on the training
-- clock; the pool changes at epoch ends. A budget of one epoch or less has no later epoch for a
-- pool: the scoring pass is skipped and the log says so.
return hasten.plugin {
  name = "curriculum", title = "Curriculum",
  summary = "Easy examples first: train on a growing pool of the lowest-loss examples.",
  reference = "Wu, Dyer, Neyshabur ICLR 2021, arXiv:2012.03107",
  taxonomy = { component = "data", action = "reorder", when = "scheduled" },
  exclusive = "training subset",   -- data:keep replaces the pool another plugin chose
  params = {
    start = { default = 0.3, min = 0.01, max = 1, doc = "fraction of the examples in the first pool" },
    full = { default = 0.8, min = 0.01, max = 1, doc = "the pool holds every example from this fraction of the budget" },
  },
  epoch_end = function(ctx, p)
    if ctx.progress >= 1 then return end   -- no later epoch would train on the pool
    if not p.easy then
      p.easy = ctx.data:score():mul_(-1)   -- topk of the negated losses: the easiest first
      p.n = ctx.data.size
    end
    local frac = p.start + (1 - p.start) * math.min(1, ctx.progress / p.full)
    local k = math.max(1, math.floor(frac * p.n))
    if k ~= p.k then
      ctx.data:keep(p.easy:topk(k))
      ctx:metric("pool", k)
      p.k = k
    end
  end,
  fit_end = function(ctx, p)
    if p.easy then return end
    ctx:log("no curriculum: the budget ended within its first epoch, and the pool is chosen at epoch ends " ..
            "after a first epoch on everything (the scoring pass was skipped)")
  end,
}

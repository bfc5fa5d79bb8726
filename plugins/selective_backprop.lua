-- Selective backprop: a forward-only scoring pass ranks the batch by loss; only the hardest
-- keep x B examples go through the real forward and backward. Active in a phase of the budget.
-- Jiang et al. keep each example with probability CDF(loss)^beta over recent losses; this keeps
-- the top keep x B of the batch instead (as Composer's version does): a fixed, cheaper step.
return hasten.plugin {
  name = "selective_backprop", title = "Selective backprop",
  summary = "Score the batch forward-only, backprop only the highest-loss fraction.",
  reference = "Jiang et al. 2019, arXiv:1910.00762",
  taxonomy = { component = "data", action = "remove", when = "phase" },
  params = {
    keep = { default = 0.5, min = 0.01, max = 1, doc = "fraction of each batch that is backpropagated" },
    start = { default = 0.5, min = 0, max = 1, doc = "active from this fraction of the budget" },
    stop = { default = 0.9, min = 0, max = 1, doc = "active until this fraction of the budget" },
  },
  batch_start = function(ctx, p)
    if ctx.progress < p.start or ctx.progress >= p.stop then return end
    local n = ctx.batch:size()
    local k = math.max(1, math.floor(p.keep * n + 0.5))
    if k >= n then return end
    ctx.batch:select(ctx:score():topk(k))
  end,
}

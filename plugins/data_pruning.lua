-- Data pruning by loss: after a short warm part of the run, every training example is scored by
-- its loss under the model so far, and the easiest fraction is left out for the rest of the run,
-- so each later epoch is shorter. The scoring pass is on the training clock. (Paul et al. score
-- with EL2N after a separate warm run and restart; this keeps the warm part as training.)
-- Examples can only be left out from an epoch's end on: at the budget's last epoch end, or when
-- no epoch ends within the budget, there is no later epoch to prune, so the scoring pass is
-- skipped and the log says so.
return hasten.plugin {
  name = "data_pruning", title = "Data pruning",
  summary = "Score every example by loss early on, then train without the easiest fraction.",
  reference = "Paul, Ganguli, Dziugaite NeurIPS 2021, arXiv:2107.07075",
  taxonomy = { component = "data", action = "remove", when = "once" },
  exclusive = "training subset",   -- data:keep replaces the pool another plugin chose
  params = {
    drop = { default = 0.2, min = 0, max = 0.9, doc = "fraction of the examples left out (the lowest losses)" },
    at = { default = 0.1, min = 0, max = 1, doc = "prune at the first epoch end past this fraction of the budget" },
  },
  epoch_end = function(ctx, p)
    if p.done or ctx.progress < p.at or ctx.progress >= 1 then return end
    p.done = true
    local losses = ctx.data:score()
    local keep = #losses - math.floor(p.drop * #losses)
    ctx.data:keep(losses:topk(keep))
    ctx:log(string.format("kept the %d hardest of %d examples from epoch %d on", keep, #losses, ctx.epoch + 2))
  end,
  fit_end = function(ctx, p)
    if p.done then return end
    ctx:log(string.format("pruned nothing: no epoch ended past %.0f%% of the budget before its end, and examples " ..
                          "are left out only from an epoch end on (the scoring pass was skipped)", 100 * p.at))
  end,
}

-- ALiBi: attention scores biased by distance (a fixed slope per head) instead of learned position
-- embeddings. Because nothing is learned per position, a model trained on short windows still
-- reads long ones: this run trains on the first `train` fraction of each window (cheaper steps:
-- attention is quadratic in length, the rest linear) and evaluates on whole windows.
return hasten.plugin {
  name = "alibi", title = "ALiBi (attention with linear biases)",
  summary = "Distance biases in attention instead of position embeddings; train short, test long.",
  reference = "Press, Smith, Lewis 2022 (ICLR), arXiv:2108.12409",
  taxonomy = { component = "function", action = "replace", when = "once" },
  data = "text",
  params = {
    train = { default = 0.5, min = 0.05, max = 1, doc = "training windows as a fraction of the context; evaluation reads the whole context" },
  },
  fit_start = function(ctx, p)
    local n = ctx.model:alibi(true)
    p.len = math.max(1, math.floor(ctx.data.tokens * p.train + 0.5))
    ctx:log(string.format("ALiBi in %d attention layers; training on %d of %d tokens", n, p.len, ctx.data.tokens))
  end,
  batch_start = function(ctx, p)
    if p.len < ctx.data.tokens then ctx.batch:truncate(p.len) end
  end,
}

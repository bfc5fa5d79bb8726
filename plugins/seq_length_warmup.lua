-- Sequence-length warm-up: a text model trains on the first tokens of each window early on (cheaper
-- steps, and, the paper finds, steadier training), growing linearly to the whole window over the
-- first part of the budget. Evaluation always uses whole windows.
return hasten.plugin {
  name = "seq_length_warmup", title = "Sequence length warm-up",
  summary = "Train on short prefixes of each window first, growing to the full context.",
  reference = "Li, Zhang, He 2021, arXiv:2108.06084",
  taxonomy = { component = "data", action = "restrict", when = "scheduled" },
  data = "text",
  params = {
    start = { default = 8, min = 1, max = 4096, integer = true, doc = "tokens per window at the start" },
    warmup = { default = 0.3, min = 0, max = 1, doc = "fraction of the budget over which the length grows to the full window" },
    multiple = { default = 8, min = 1, max = 256, integer = true, doc = "lengths are rounded down to this multiple (at least start)" },
  },
  batch_start = function(ctx, p)
    local full = ctx.data.tokens
    local len = full
    if ctx.progress < p.warmup then
      local grown = p.start + (full - p.start) * ctx.progress / p.warmup
      len = math.max(p.start, math.floor(grown / p.multiple) * p.multiple)
      len = math.min(len, full)
    end
    if len < full then ctx.batch:truncate(len) end
    ctx:metric("seq_len", len)
  end,
}

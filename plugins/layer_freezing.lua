-- Layer freezing (FreezeOut): early layers stop training one by one; frozen layers get no
-- update and, at the front of the network, no backward pass at all. Of the trainable layers,
-- m = floor(fraction x count) freeze, the k-th at start + (1 - start)(k - 1)/m of the budget (the
-- first at start, as FreezeOut's t_0, the rest evenly after it), at the first step past that
-- point (checked at batch_start, not only at epoch ends), so the schedule holds at any budget,
-- one epoch or less included.
return hasten.plugin {
  name = "layer_freezing", title = "Layer freezing",
  summary = "Freeze early layers one by one: no backward, no update.",
  reference = "Brock et al. 2017 FreezeOut, arXiv:1706.04983",
  taxonomy = { component = "function", action = "remove", when = "scheduled" },
  params = {
    start = { default = 0.1, min = 0, max = 1, doc = "freezing begins at this fraction of the budget" },
    fraction = { default = 0.5, min = 0, max = 1, doc = "fraction of the trainable layers frozen by the end (rounded down)" },
  },
  fit_start = function(ctx, p)
    p.trainable = {}
    for i = 1, ctx.model:layers() do
      if ctx.model:layer(i).params > 0 then p.trainable[#p.trainable + 1] = i end
    end
    p.frozen = 0
  end,
  batch_start = function(ctx, p)
    if ctx.progress < p.start then return end
    local m = math.floor(p.fraction * #p.trainable + 1e-9)
    local t = math.min(1, (ctx.progress - p.start) / math.max(1 - p.start, 1e-9))
    local want = math.min(m, math.floor(m * t) + 1)   -- the first at start; all m before the end
    while p.frozen < want do
      p.frozen = p.frozen + 1
      local layer = ctx.model:layer(p.trainable[p.frozen])
      ctx.model:freeze(layer.index)
      ctx:log("froze " .. layer.name .. " at " .. string.format("%.0f%%", 100 * ctx.progress))
    end
  end,
}

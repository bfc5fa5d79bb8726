-- Progressive resizing: train on down-scaled images early (cheaper steps), growing to full size.
-- The model must accept any input size (a gap head); a flatten + linear head cannot.
return hasten.plugin {
  name = "progressive_resizing", title = "Progressive resizing",
  summary = "Train on down-scaled images, growing to full size; needs a size-agnostic (gap) head.",
  reference = "fast.ai (Howard 2018); Touvron et al. FixRes 2019, arXiv:1906.06423",
  taxonomy = { component = "data", action = "restrict", when = "scheduled" },
  data = "images",
  layers = { "gap" },   -- a global average pool, for a model that takes any image size
  overlaps = "input size",   -- with colout the image shrinks twice
  params = {
    start = { default = 0.5, min = 0.1, max = 1, doc = "initial scale of the image side" },
    hold = { default = 0.4, min = 0, max = 1, doc = "fraction of the budget kept at the initial scale" },
    finetune = { default = 0.2, min = 0, max = 1, doc = "final fraction of the budget at full size" },
    multiple = { default = 4, min = 1, max = 64, integer = true, doc = "sizes are rounded to this multiple" },
  },
  fit_start = function(ctx, p) ctx.model:need_any_size() end,   -- a linear head on flattened pixels: stop now
  batch_start = function(ctx, p)
    local x, s = ctx.progress, 1
    local ramp_end = 1 - p.finetune
    if x < p.hold then s = p.start
    elseif x < ramp_end then s = p.start + (1 - p.start) * (x - p.hold) / math.max(ramp_end - p.hold, 1e-9)
    end
    local h, w = ctx.batch:dims()
    local nh = math.max(p.multiple, math.floor(h * s / p.multiple + 0.5) * p.multiple)
    local nw = math.max(p.multiple, math.floor(w * s / p.multiple + 0.5) * p.multiple)
    if nh < h or nw < w then ctx.batch:resize(math.min(nh, h), math.min(nw, w)) end
    ctx:metric("image_side", math.min(nh, h))
  end,
}

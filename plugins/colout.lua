-- ColOut: each step drops a random fraction of the image rows and columns (the same ones across
-- the batch), so the images shrink and the step is cheaper. Like progressive resizing it needs a
-- model that takes any input size (a gap head).
return hasten.plugin {
  name = "colout", title = "ColOut",
  summary = "Drop random rows and columns of the images: smaller inputs; needs a size-agnostic (gap) head.",
  reference = "MosaicML Composer, docs.mosaicml.com (ColOut)",
  taxonomy = { component = "data", action = "remove", when = "every step" },
  data = "images",
  layers = { "gap" },   -- a global average pool, for a model that takes any image size
  overlaps = "input size",   -- with progressive_resizing the image shrinks twice
  params = {
    p_row = { default = 0.15, min = 0, max = 0.9, doc = "fraction of rows dropped" },
    p_col = { default = 0.15, min = 0, max = 0.9, doc = "fraction of columns dropped" },
  },
  fit_start = function(ctx, p) ctx.model:need_any_size() end,   -- a linear head on flattened pixels: stop now
  batch_start = function(ctx, p)
    ctx.batch:colout(p.p_row, p.p_col)
  end,
}

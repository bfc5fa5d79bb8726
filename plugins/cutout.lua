-- Cutout: a random square of each image is set to the dataset mean (0 after normalisation).
return hasten.plugin {
  name = "cutout", title = "Cutout",
  summary = "Mask a random square of every image.",
  reference = "DeVries & Taylor 2017, arXiv:1708.04552",
  taxonomy = { component = "data", action = "retrofit", when = "every step" },
  data = "images",
  params = { size = { default = 8, min = 1, max = 1024, integer = true, doc = "side of the square, pixels" } },
  batch_start = function(ctx, p) ctx.batch:cutout(p.size) end,
}

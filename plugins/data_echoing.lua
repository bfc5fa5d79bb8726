-- Data echoing: each loaded batch is trained on `factor` times, so the loader works 1/factor as
-- often. Pays off only when the data pipeline is the bottleneck (see the data_wait phase).
return hasten.plugin {
  name = "data_echoing", title = "Data echoing",
  summary = "Reuse each loaded batch several times when the loader is the bottleneck.",
  reference = "Choi et al. 2019, arXiv:1907.05550",
  taxonomy = { component = "data", action = "replace", when = "every step" },
  params = { factor = { default = 2, min = 1, max = 16, integer = true, doc = "steps per loaded batch" } },
  batch_start = function(ctx, p) ctx:echo(p.factor - 1) end,
}

-- Whitening initialisation (airbench): the first conv's filters are set, before the first step,
-- to the eigenvectors of the covariance of the first batch's image patches (each as a +/- pair,
-- largest eigenvalues first, scaled by 1 / sqrt(eigenvalue)), and frozen, so the network starts
-- from decorrelated inputs and spends no backward pass on that layer.
return hasten.plugin {
  name = "whitening_init", title = "Whitening init",
  summary = "First conv set to the patch-whitening filters of the data, and frozen.",
  reference = "Jordan 2024 (airbench), arXiv:2404.00498",
  taxonomy = { component = "function", action = "replace", when = "once" },
  layers = { "conv" },   -- the model needs one of these
  data = "images",
  params = {
    eps = { default = 5e-4, min = 1e-8, max = 10, doc = "added to each eigenvalue before the square root" },
    freeze = { default = true, doc = "keep the whitening filters fixed" },
  },
  batch_start = function(ctx, p)
    if p.done then return end
    p.done = true
    local first = ctx.model:layer(1)
    if first.kind ~= "conv" then error("the model must start with a conv layer (it starts with " .. first.kind .. ")") end
    local cov = ctx.batch.inputs:patch_cov(first.k)
    first.tensors[1].value:whiten_(cov, p.eps)
    if p.freeze then ctx.model:freeze(1) end
    ctx:log(string.format("%s: %d whitening filters from %dx%d patches of %d images%s", first.name,
                          math.min(first.out, 2 * cov:shape()), first.k, first.k, ctx.batch:size(),
                          p.freeze and ", frozen" or ""))
  end,
}

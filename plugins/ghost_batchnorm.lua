-- Ghost batch norm: in training, each batch-norm layer normalises groups of a few examples with
-- their own statistics instead of the whole batch, keeping the noise of small-batch statistics
-- when the batch is large. Evaluation uses the running statistics as before.
return hasten.plugin {
  name = "ghost_batchnorm", title = "Ghost batch norm",
  summary = "Batch-norm statistics over small ghost batches of the training batch.",
  reference = "Hoffer, Hubara, Soudry 2017, arXiv:1705.08741",
  taxonomy = { component = "function", action = "restrict", when = "every step" },
  layers = { "batchnorm" },   -- the model needs one of these
  data = "images",
  params = { size = { default = 32, min = 1, max = 65536, integer = true, doc = "examples per ghost batch" } },
  fit_start = function(ctx, p)
    local n = 0
    for i = 1, ctx.model:layers() do
      if ctx.model:layer(i).kind == "batchnorm" then
        ctx.model:configure(i, { ghost = p.size })
        n = n + 1
      end
    end
    if n == 0 then error("the model has no top-level batch-norm layer to act on") end
    ctx:log(string.format("%d batch-norm layers normalise groups of %d examples", n, p.size))
  end,
}

-- Stochastic depth: each step, every residual block is skipped (its branch neither runs forward
-- nor backward) with a probability growing linearly with depth to p at the last block; a block
-- that runs has its branch scaled by 1 / (1 - its probability), so evaluation, which runs every
-- branch at scale 1, sees the same expected output.
return hasten.plugin {
  name = "stochastic_depth", title = "Stochastic depth",
  summary = "Skip residual blocks at random, more often deeper; needs residual blocks.",
  reference = "Huang et al. ECCV 2016, arXiv:1603.09382",
  taxonomy = { component = "function", action = "remove", when = "every step" },
  layers = { "residual" },   -- the model needs one of these
  params = { p = { default = 0.2, min = 0, max = 0.9, doc = "skip probability of the deepest block" } },
  fit_start = function(ctx, p)
    p.blocks = {}
    for i = 1, ctx.model:layers() do
      if ctx.model:layer(i).kind == "residual" then p.blocks[#p.blocks + 1] = i end
    end
    if #p.blocks == 0 then error("the model has no residual block (recipes/fmnist_resnet.lua has some)") end
  end,
  batch_start = function(ctx, p)
    local skipped = 0
    for k, i in ipairs(p.blocks) do
      local pk = p.p * k / #p.blocks
      local skip = ctx.rng:uniform() < pk
      ctx.model:configure(i, { skip = skip, scale = 1 / (1 - pk) })
      if skip then skipped = skipped + 1 end
    end
    ctx:metric("blocks_skipped", skipped)
  end,
  eval_start = function(ctx, p)
    for _, i in ipairs(p.blocks) do ctx.model:configure(i, { skip = false, scale = 1 }) end
  end,
}

-- Dirac initialisation: in every conv layer with an odd kernel, the first min(out, in) filters
-- start as identities (each passes its own input channel through the centre tap), so a deep plain
-- network starts close to a residual one; the other filters keep their random start.
return hasten.plugin {
  name = "dirac_init", title = "Dirac init",
  summary = "Conv filters start as identities where channel counts allow (an implicit residual).",
  reference = "Zagoruyko & Komodakis 2017, arXiv:1706.00388; airbench, hlb-CIFAR10",
  taxonomy = { component = "function", action = "replace", when = "once" },
  layers = { "conv" },   -- the model needs one of these
  data = "images",
  params = {},
  fit_start = function(ctx, p)
    local n = 0
    for i = 1, ctx.model:layers() do
      local l = ctx.model:layer(i)
      if l.kind == "conv" and l.k % 2 == 1 then
        l.tensors[1].value:dirac_()
        n = n + 1
      end
    end
    if n == 0 then error("the model has no conv layer with an odd kernel to start as identities", 0) end
    ctx:log(string.format("%d conv layers start with identity filters", n))
  end,
}

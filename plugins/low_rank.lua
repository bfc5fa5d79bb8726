-- Low-rank factorisation at initialisation: each large hidden linear layer W (out x in) becomes two,
-- A (rank x in, no bias) then B (out x rank), fewer products per step when the rank is small. The
-- output layer is kept whole. Conv layers are left as they are.
return hasten.plugin {
  name = "low_rank", title = "Low-rank layers",
  summary = "Factor large hidden linear layers into two thin ones at the start.",
  reference = "Denton et al. 2014, arXiv:1404.0736; Jaderberg et al. 2014, arXiv:1405.3866",
  taxonomy = { component = "function", action = "restrict", when = "once" },
  params = {
    rank = { default = 0.25, min = 0.01, max = 1, doc = "rank as a fraction of min(out, in)" },
    grad_scale = { default = 0.5, min = 0, max = 1, doc = "factor gradients scaled by this: the product takes a step from each" },
    min_size = { default = 16384, min = 1, max = 1e9, integer = true, doc = "factor only layers with at least this many weights" },
  },
  fit_start = function(ctx, p)
    local last, picks = 0, {}
    for i = 1, ctx.model:layers() do
      if ctx.model:layer(i).params > 0 then last = i end
    end
    for i = 1, last - 1 do
      local layer = ctx.model:layer(i)
      if layer.kind == "linear" then
        local out, inp = layer.tensors[1].value:shape()
        local r = math.max(1, math.floor(p.rank * math.min(out, inp)))
        if out * inp >= p.min_size and r * (out + inp) < out * inp then
          picks[#picks + 1] = { pos = i, rank = r, name = layer.name, out = out, inp = inp }
        end
      end
    end
    if #picks == 0 then   -- a run that changed nothing would read as the method's result
      error(string.format("no hidden linear layer of at least %d weights to factor (conv and text " ..
                          "layers are left as they are)", p.min_size), 0)
    end
    for k = #picks, 1, -1 do   -- from the back, so earlier positions stay put
      ctx.model:insert(picks[k].pos, "linear", { out = picks[k].rank, bias = false })
    end
    p.grads = {}
    for k, pk in ipairs(picks) do
      local a = ctx.model:layer(pk.pos + k - 1).tensors[1]
      local b = ctx.model:layer(pk.pos + k).tensors[1]
      -- no nonlinearity between the factors: the product B A gets He's variance when A has 1/in;
      -- then A c and B / c balance the factors' norms and leave the product as it is
      a.value:mul_(math.sqrt(0.5))
      local c = math.sqrt(b.value:norm() / a.value:norm())
      a.value:mul_(c)
      b.value:mul_(1 / c)
      p.grads[#p.grads + 1] = a.grad
      p.grads[#p.grads + 1] = b.grad
      ctx:log(string.format("%s (%d x %d) -> rank %d: %d weights instead of %d", pk.name, pk.out, pk.inp,
                            pk.rank, pk.rank * (pk.out + pk.inp), pk.out * pk.inp))
    end
  end,
  after_backward = function(ctx, p)
    for _, g in ipairs(p.grads) do g:mul_(p.grad_scale) end
  end,
}

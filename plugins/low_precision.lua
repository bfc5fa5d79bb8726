-- Low precision: matrix products in bf16 on tensor cores, accumulated and stored in fp32 (the
-- master weights stay fp32). Needs the CUDA device; on the CPU the run stops and says so.
return hasten.plugin {
  name = "low_precision", title = "bf16 matrix products",
  summary = "bf16 tensor-core matrix products with fp32 master weights (CUDA only).",
  reference = "Micikevicius et al. ICLR 2018, arXiv:1710.03740",
  taxonomy = { component = "function", action = "restrict", when = "every step" },
  fit_start = function(ctx, p) ctx.model:low_precision(true) end,
  fit_end = function(ctx, p) ctx.model:low_precision(false) end,
}

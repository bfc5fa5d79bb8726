-- Gradient centralization: before the optimizer steps, each weight gradient of a conv or linear
-- layer (nested ones too) has its mean over the unit's fan-in removed, output unit by output unit,
-- so every unit's update has zero mean. Biases and norm parameters are left as they are, as in
-- the paper. The centring is one C pass per matrix (t:center_rows_).
return hasten.plugin {
  name = "grad_centralization", title = "Gradient centralization",
  summary = "Remove each weight gradient's mean over its fan-in, per output unit.",
  reference = "Yong et al. ECCV 2020, arXiv:2004.01461",
  taxonomy = { component = "optimization", action = "retrofit", when = "every step" },
  params = {
    conv_only = { default = false, doc = "centre convolution filters only (the paper's GCC variant)" },
  },
  after_backward = function(ctx, p)
    if not p.grads then   -- first step: after any model surgery at fit_start
      p.grads = {}
      for _, m in ipairs(ctx.model:matrices()) do
        if not p.conv_only or select("#", m.grad:shape()) == 4 then p.grads[#p.grads + 1] = m.grad end
      end
    end
    for _, g in ipairs(p.grads) do g:center_rows_() end
  end,
}

-- BlurPool: a low-pass filter in front of every downsampling layer (strided conv or pooling), so
-- subsampling aliases less. The filter is the 3x3 binomial [1 2 1]^2 / 16, built from two 2x2
-- box averages at stride 1 (without padding: the pair trims a pixel from every side). Zhang puts
-- the blur inside the layer (max or conv at stride 1, then blur and subsample); blurring its input
-- instead, as Composer's BlurConv2d does, keeps the layer as it is and low-passes the same signal
-- the subsampling reads. It adds work to every forward, at inference too.
return hasten.plugin {
  name = "blurpool", title = "BlurPool",
  summary = "Binomial blur before each strided conv or pooling layer (raises inference cost too).",
  reference = "Zhang ICML 2019, arXiv:1904.11486",
  taxonomy = { component = "function", action = "retrofit", when = "once" },
  layers = { "conv", "maxpool", "avgpool" },   -- the model needs one of these
  data = "images",
  params = {},
  fit_start = function(ctx, p)
    local picks = {}
    for i = 1, ctx.model:layers() do
      local l = ctx.model:layer(i)
      if l.kind == "conv" or l.kind == "maxpool" or l.kind == "avgpool" then
        if l.stride > 1 then picks[#picks + 1] = l end
      end
    end
    if #picks == 0 then   -- a run that changed nothing would read as the method's result
      error("the model has no strided conv or pooling layer to blur before", 0)
    end
    for k = #picks, 1, -1 do   -- from the back, so earlier positions stay put
      ctx.model:insert(picks[k].index, "avgpool", { k = 2, stride = 1 })
      ctx.model:insert(picks[k].index, "avgpool", { k = 2, stride = 1 })
    end
    for _, l in ipairs(picks) do ctx:log("blur before " .. l.name) end
  end,
}

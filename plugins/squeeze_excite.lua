-- Squeeze-and-excitation: after each conv block's activation, a small gate per channel, computed
-- from the block's channel means through two fully connected layers (ratio of the channels as
-- hidden units), rescales the channels. It adds work to every forward, at inference too.
return hasten.plugin {
  name = "squeeze_excite", title = "Squeeze-and-excitation",
  summary = "Channel attention after each conv block (raises inference cost too).",
  reference = "Hu, Shen, Sun CVPR 2018, arXiv:1709.01507",
  taxonomy = { component = "function", action = "retrofit", when = "once" },
  layers = { "conv" },   -- the model needs one of these
  data = "images",
  params = { ratio = { default = 0.25, min = 0.01, max = 1, doc = "hidden units as a fraction of the block's channels" } },
  fit_start = function(ctx, p)
    local picks, n = {}, ctx.model:layers()
    for i = 1, n do
      local l = ctx.model:layer(i)
      if l.kind == "conv" then
        local at = i + 1   -- after the block's activation: the first relu before the next layer with weights
        for j = i + 1, n do
          local lj = ctx.model:layer(j)
          if lj.params > 0 and lj.kind ~= "batchnorm" then break end
          if lj.kind == "relu" or lj.kind == "gelu" then at = j + 1 break end
        end
        picks[#picks + 1] = { at = at, hidden = math.max(1, math.floor(p.ratio * l.out)), name = l.name }
      end
    end
    for k = #picks, 1, -1 do ctx.model:insert(picks[k].at, "se", { out = picks[k].hidden }) end
    for _, pk in ipairs(picks) do ctx:log(string.format("gate after %s's block, %d hidden units", pk.name, pk.hidden)) end
    if #picks == 0 then error("the model has no conv layer to gate") end
  end,
}

-- A small character-level transformer on Tiny Shakespeare (`hasten fetch tinyshakespeare`; any
-- UTF-8 text with data = { "text", path = "FILE", context = 64 }): windows of 64 characters, each
-- position predicting the next one. Token and position embeddings of 64, two pre-norm blocks of
-- causal self-attention (4 heads) and a 4x GELU MLP, a final layer norm and a 1x1 conv to the
-- vocabulary. test_loss is nats per character; test_acc the share of next characters guessed.
-- The recipe for the text methods: seq_length_warmup and alibi (docs/methods.md measured them on
-- another text, with this model: Tiny Shakespeare could not be fetched where they ran).
local D, heads = 64, 4

local function block()
  return nn.residual { nn.layernorm(), nn.conv(3 * D, 1), nn.attention(heads), nn.conv(D, 1) },
         nn.residual { nn.layernorm(), nn.conv(4 * D, 1), nn.gelu(), nn.conv(D, 1) }
end

local layers = { nn.embed(D) }
for _ = 1, 2 do
  local attend, mlp = block()
  layers[#layers + 1] = attend
  layers[#layers + 1] = mlp
end
layers[#layers + 1] = nn.layernorm()
layers[#layers + 1] = nn.conv(nn.classes, 1)   -- one output per character of the text's vocabulary

return {
  data     = { "tinyshakespeare", context = 64 },
  model    = nn.sequential(layers),
  optim    = { "adamw", lr = 3e-3, weight_decay = 0.1 },
  schedule = { "cosine", warmup = 0.05 },
  batch    = 32,
  budget   = { epochs = 3 },
  eval     = { every = 100 },
  target   = { test_loss = 2.2 },   -- the level docs/methods.md times the text methods to
  seed     = 1,
}

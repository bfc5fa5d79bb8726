-- hasten recipe, resolved: every field explicit.
-- from: /tmp/fz/tiny.lua
return {
  data = { "synthetic", augment = { crop = 0, flip = false } },
  model = nn.sequential {
    nn.conv(2, 3, { pad = 1, stride = 1, bias = true }),
    nn.batchnorm({ momentum = 0.1, eps = 1e-05, ghost = 0 }),
    nn.relu(),
    nn.maxpool(4, { stride = 4 }),
    nn.flatten(),
    nn.linear(10, { bias = true }),
  },
  optim = { "sgd", lr = 0.05, momentum = 0.9, nesterov = false, weight_decay = 0, decay_all = false },
  schedule = { "linear_decay", warmup = 0, final = 0 },
  batch = 32,
  budget = { steps = 20 },
  eval = { every = "epoch" },
  target = false,
  seed = 1,
  threads = 0,
  plugins = {},
}

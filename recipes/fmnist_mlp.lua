-- Fashion-MNIST with a 784-256-256-10 MLP and Nesterov SGD: the plain baseline.
-- No augmentation, no batch norm; every speedup method should be measured against this too.
return {
  data     = { "fashion-mnist", augment = { crop = 0, flip = false } },
  model    = nn.sequential {
    nn.flatten(),
    nn.linear(256), nn.relu(),
    nn.linear(256), nn.relu(),
    nn.linear(10),
  },
  optim    = { "sgd", lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 5e-4 },
  schedule = "linear_decay",   -- budget-aware: reaches zero exactly at the end
  batch    = 128,
  budget   = { epochs = 10 },
  eval     = { every = "epoch" },
  target   = { test_acc = 0.885 },
  seed     = 1,
}

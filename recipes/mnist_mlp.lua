-- MNIST with a 784-256-256-10 MLP and Nesterov SGD: the classic baseline (about 98% test accuracy).
-- Fetched into the cache on first use (hasten fetch mnist); no augmentation, no batch norm.
return {
  data     = { "mnist", augment = { crop = 0, flip = false } },
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
  target   = { test_acc = 0.98 },
  seed     = 1,
}

-- Fashion-MNIST with a small fast CNN (two conv + batch-norm blocks, the second strided instead of
-- pooled): hasten's default recipe.
-- Horizontal flips; Nesterov SGD with a linear decay to zero. (Random crops cost more accuracy
-- than they buy at budgets of a few epochs on this data.)
return {
  data     = { "fashion-mnist", augment = { crop = 0, flip = true } },
  model    = nn.sequential {
    nn.conv(16, 3, { pad = 1, bias = false }), nn.batchnorm(), nn.relu(), nn.maxpool(2),
    nn.conv(32, 3, { pad = 1, stride = 2, bias = false }), nn.batchnorm(), nn.relu(),
    nn.flatten(),
    nn.linear(128), nn.relu(),
    nn.linear(10),
  },
  optim    = { "sgd", lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 5e-4 },
  schedule = "linear_decay",   -- budget-aware: reaches zero exactly at the end
  batch    = 128,
  budget   = { epochs = 10 },
  eval     = { every = "epoch" },
  target   = { test_acc = 0.90 },
  seed     = 1,
}

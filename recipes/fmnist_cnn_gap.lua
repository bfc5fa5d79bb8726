-- Fashion-MNIST with a small CNN whose global-average-pool head accepts any image size, so
-- input-size methods (progressive resizing) apply. Otherwise as fmnist_cnn.
return {
  data     = { "fashion-mnist", augment = { crop = 0, flip = true } },
  model    = nn.sequential {
    nn.conv(16, 3, { pad = 1, bias = false }), nn.batchnorm(), nn.relu(), nn.maxpool(2),
    nn.conv(32, 3, { pad = 1, bias = false }), nn.batchnorm(), nn.relu(), nn.maxpool(2),
    nn.conv(64, 3, { pad = 1, bias = false }), nn.batchnorm(), nn.relu(),
    nn.gap(),
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

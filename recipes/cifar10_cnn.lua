-- CIFAR-10 (32x32 colour) with a small CNN: three conv + batch-norm + pool stages (32, 64, 128
-- channels) and one linear layer. Random crop (pad 4) and horizontal flip; Nesterov SGD with a
-- short warm-up and a linear decay to zero. Fetched into the cache on first use (170 MB).
return {
  data     = { "cifar10", augment = { crop = 4, flip = true } },
  model    = nn.sequential {
    nn.conv(32, 3, { pad = 1, bias = false }), nn.batchnorm(), nn.relu(), nn.maxpool(2),
    nn.conv(64, 3, { pad = 1, bias = false }), nn.batchnorm(), nn.relu(), nn.maxpool(2),
    nn.conv(128, 3, { pad = 1, bias = false }), nn.batchnorm(), nn.relu(), nn.maxpool(2),
    nn.flatten(),
    nn.linear(10),
  },
  optim    = { "sgd", lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 5e-4 },
  schedule = { "linear_decay", warmup = 0.05 },
  batch    = 128,
  budget   = { epochs = 10 },
  eval     = { every = "epoch" },
  target   = { test_acc = 0.75 },
  seed     = 1,
}

-- Fashion-MNIST with a small residual network: a conv stem pooled to 14x14, three residual blocks
-- of two 3x3 convs (the second halves the size to 7x7, with a strided 1x1 shortcut) and a
-- global-average-pool head. Slower per step than fmnist_cnn; the recipe for methods that need residual blocks
-- (stochastic_depth) or a size-agnostic head (progressive_resizing, colout).
return {
  data     = { "fashion-mnist", augment = { crop = 0, flip = true } },
  model    = nn.sequential {
    nn.conv(16, 3, { pad = 1, bias = false }), nn.batchnorm(), nn.relu(), nn.maxpool(2),
    nn.residual { nn.conv(16, 3, { pad = 1, bias = false }), nn.batchnorm(), nn.relu(),
                  nn.conv(16, 3, { pad = 1, bias = false }), nn.batchnorm() },
    nn.relu(),
    nn.residual { nn.conv(32, 3, { pad = 1, stride = 2, bias = false }), nn.batchnorm(), nn.relu(),
                  nn.conv(32, 3, { pad = 1, bias = false }), nn.batchnorm() },
    nn.relu(),
    nn.residual { nn.conv(32, 3, { pad = 1, bias = false }), nn.batchnorm(), nn.relu(),
                  nn.conv(32, 3, { pad = 1, bias = false }), nn.batchnorm() },
    nn.relu(),
    nn.gap(),
    nn.linear(10),
  },
  optim    = { "sgd", lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 5e-4 },
  schedule = "linear_decay",   -- budget-aware: reaches zero exactly at the end
  batch    = 128,
  budget   = { epochs = 5 },
  eval     = { every = "epoch" },
  target   = { test_acc = 0.90 },
  seed     = 1,
}

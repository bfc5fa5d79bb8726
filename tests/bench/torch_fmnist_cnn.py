"""PyTorch eager baseline for `hasten bench --device cuda`: the fmnist_cnn recipe's model (conv16 3x3
pad 1 no bias, BN, ReLU, maxpool 2, conv32 3x3 stride 2 pad 1 no bias, BN, ReLU, flatten,
linear 128, ReLU, linear 10), cross-entropy, SGD with Nesterov momentum, on the same GPU.

Two loops per memory format, reported separately:
  matched  the work hasten's timed step does: a batch gathered from a uint8 dataset resident on
           the GPU, normalised, randomly flipped, and the loss read back every step (.item());
  bare     one fixed batch, no per-step read-back: PyTorch's most favourable figure.
Prints one JSON line per run and a closing line with the best samples/s. Not a test.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def run(batch, steps, warm, channels_last, matched, dev):
    torch.manual_seed(1)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = make_model().to(dev).to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    pixels = torch.randint(0, 256, (60000, 1, 28, 28), dtype=torch.uint8, device=dev)
    labels = torch.randint(0, 10, (60000,), device=dev)
    fixed_x = torch.randn(batch, 1, 28, 28, device=dev).to(memory_format=fmt)
    fixed_y = torch.randint(0, 10, (batch,), device=dev)
    perm = torch.randperm(60000, device=dev)
    per_epoch = 60000 // batch

    def step(i):
        if matched:
            if i % per_epoch == 0:
                perm.copy_(torch.randperm(60000, device=dev))
            idx = perm[(i % per_epoch) * batch:(i % per_epoch + 1) * batch]
            x = (pixels[idx].float() / 255 - 0.2860) / 0.3530
            flip = torch.rand(batch, device=dev) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x).contiguous(memory_format=fmt)
            y = labels[idx]
        else:
            x, y = fixed_x, fixed_y
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item() if matched else None

    for i in range(warm):
        step(i)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(warm, warm + steps):
        step(i)
    torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    return {"framework": "pytorch-eager", "torch": torch.__version__, "gpu": torch.cuda.get_device_name(),
            "batch": batch, "steps": steps, "memory_format": "channels_last" if channels_last else "nchw",
            "loop": "matched" if matched else "bare", "samples_per_second": round(steps * batch / secs, 1),
            "step_ms": round(1e3 * secs / steps, 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--warm", type=int, default=50)
    a = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    best = None
    for channels_last in (False, True):
        for matched in (True, False):
            r = run(a.batch, a.steps, a.warm, channels_last, matched, dev)
            print(json.dumps(r), flush=True)
            if best is None or r["samples_per_second"] > best["samples_per_second"]:
                best = r
    print("pytorch eager best: %.0f samples/s (%s, %s loop), batch %d" %
          (best["samples_per_second"], best["memory_format"], best["loop"], a.batch), flush=True)


if __name__ == "__main__":
    main()

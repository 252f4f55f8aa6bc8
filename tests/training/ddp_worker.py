"""Run by test_distributed.py: one tiny training under torchrun (or alone), weights saved to argv[1]."""

import sys

import torch
from torch import nn

from proxlab.losses import supervised
from proxlab.training import Trainer, save_model


def data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 1, 6, 6, generator=g)
    y = x + 0.1 * torch.randn(x.shape, generator=g)
    return y, x


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 1, 3, padding=1))


if __name__ == "__main__":
    torch.set_num_threads(1)
    m = model()
    Trainer(m, supervised(), data(), steps=12, batch_size=8, lr=1e-2, progress=False, val_every=100).fit()
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_rank() == 0:
        save_model(sys.argv[1], m)
    if dist.is_initialized():
        # wait for rank 0's save: tearing gloo down while the other rank still works aborts it now and then
        # ("terminate called without an active exception"); proxlab.cli.run does the same
        dist.barrier()
        dist.destroy_process_group()

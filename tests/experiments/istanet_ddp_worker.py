"""Run by test_istanet_experiment.py under torchrun: a tiny ISTA-Net training; rank 0 writes the largest weight
difference between the ranks' models to argv[2] (0 when DistributedDataParallel synchronised the gradients)."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from proxlab.experiments import istanet as exp

if __name__ == "__main__":
    built = []
    build = exp.build
    exp.build = lambda cfg, op: built.append(build(cfg, op)) or built[-1]  # keep this rank's model
    settings = {"model": "istanet", "ratio": "10", "steps": "3", "batch": "4", "val_every": "3",
                "qinit_blocks": "2000", "threads": "1", "gamma": "0.5"}
    exp.run(Path(sys.argv[1]), settings, progress=False, log=lambda m: None)
    flat = torch.cat([p.detach().flatten() for p in built[0].parameters()])
    every = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(every, flat)
    if dist.get_rank() == 0:
        Path(sys.argv[2]).write_text(str(max(float((w - flat).abs().max()) for w in every)))
    dist.barrier()
    dist.destroy_process_group()

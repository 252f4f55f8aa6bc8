"""Run by test_istanet_experiment.py under torchrun: a tiny ISTA-Net training; rank 0 writes the largest weight
difference between the ranks' models to argv[2] (0 when DistributedDataParallel synchronised the gradients); every
rank writes rank<N>.json next to it (blocks drawn per training step, whether its run wrote the summary)."""

import json

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from proxlab.experiments import istanet as exp

if __name__ == "__main__":
    built = []
    build = exp.build
    exp.build = lambda cfg, op: built.append(build(cfg, op)) or built[-1]  # keep this rank's model
    drawn, patches = [], exp.random_patches

    def counting(images, n, *args, **kwargs):
        if isinstance(images, list):  # training blocks from the pool (validation draws from one image)
            drawn.append(n)
        return patches(images, n, *args, **kwargs)

    exp.random_patches = counting
    settings = {"model": "istanet", "ratio": "10", "steps": "3", "batch": "4", "val_every": "3",
                "qinit_blocks": "2000", "threads": "1", "gamma": "0.5"}
    summary = exp.run(Path(sys.argv[1]), settings, progress=False, log=lambda m: None)
    rank = dist.get_rank()
    (Path(sys.argv[2]).parent / f"rank{rank}.json").write_text(json.dumps({"blocks_per_step": drawn[1:],
                                                                          "wrote": "parameters" in summary}))
    flat = torch.cat([p.detach().flatten() for p in built[0].parameters()])
    every = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(every, flat)
    if dist.get_rank() == 0:
        Path(sys.argv[2]).write_text(str(max(float((w - flat).abs().max()) for w in every)))
    dist.barrier()
    dist.destroy_process_group()

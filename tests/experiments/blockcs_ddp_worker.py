"""Run by test_blockcs_experiment.py under torchrun: a tiny ISTA-Net training of the istanet-cs10 spec; rank 0 writes
the largest weight difference between the ranks' models to argv[2] (0 when DistributedDataParallel synchronised the
gradients); every rank writes rank<N>.json next to it (blocks drawn per training step, whether its run wrote
metrics.json)."""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from proxlab.experiments import blockcs, runner
from proxlab.experiments.config import load_config
from proxlab.registry import list_models

if __name__ == "__main__":
    built = []
    build = runner.build_experiment_model
    runner.build_experiment_model = lambda cfg, op: built.append(build(cfg, op)) or built[-1]  # keep this rank's model
    drawn, patches = [], blockcs.random_patches

    def counting(images, n, *args, **kwargs):
        if isinstance(images, list) and n < 100:  # training blocks from the pool (not Qinit's or validation's)
            drawn.append(n)
        return patches(images, n, *args, **kwargs)

    blockcs.random_patches = counting
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    cfg = load_config(runner.find_experiment("istanet-cs10"), known_models=list_models(),
                      overrides=["training.steps=3", "training.batch_size=4", "training.val_every=3",
                                 "data.options.qinit_blocks=2000", "data.options.val_blocks=16",
                                 "training.loss_options.gamma=0.5", "training.device=cpu", "training.precision=fp32"])
    result, _ = runner.run_config(cfg, folder, progress=False, log=lambda m: None)
    rank = dist.get_rank()
    (Path(sys.argv[2]).parent / f"rank{rank}.json").write_text(json.dumps({"blocks_per_step": drawn,
                                                                          "wrote": "training" in result.metrics}))
    flat = torch.cat([p.detach().flatten() for p in built[0].parameters()])
    every = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(every, flat)
    if rank == 0:
        Path(sys.argv[2]).write_text(str(max(float((w - flat).abs().max()) for w in every)))
    dist.barrier()
    dist.destroy_process_group()

"""Subnormal floats are flushed to zero inside ``flushing_denormals`` (so inside ``Trainer.fit``) and kept after."""

import torch

from proxlab.training.trainer import flushing_denormals


def test_subnormals_are_flushed_inside_and_kept_after():
    tiny = torch.tensor([1e-40], dtype=torch.float32)  # a float32 subnormal
    with flushing_denormals() as supported:
        inside = float(tiny * 1.0)
    after = float(tiny * 1.0)
    if supported:
        assert inside == 0.0
    else:  # a CPU without flush-to-zero: nothing changes
        assert inside == after
    assert after > 0.0

"""Data-parallel training: 2 CPU processes under torchrun (gloo) match one process on the same global batch."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from proxlab.training import load_model_weights

WORKER = Path(__file__).with_name("ddp_worker.py")


def _worker_module():
    sys.path.insert(0, str(WORKER.parent))
    try:
        import ddp_worker
    finally:
        sys.path.pop(0)
    return ddp_worker


def _load(path):
    m = _worker_module().model()
    load_model_weights(path, m)
    return m


@pytest.mark.slow  # torchrun: two processes start torch and gloo (the default run keeps the one-process DDP checks)
def test_two_processes_match_one(tmp_path):
    single, multi = tmp_path / "single.safetensors", tmp_path / "multi.safetensors"
    subprocess.run([sys.executable, str(WORKER), str(single)], check=True, capture_output=True, timeout=120)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(WORKER), str(multi)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = _load(single), _load(multi)
    start = _worker_module().model()
    moved = sum(float((p - q).detach().abs().sum()) for p, q in zip(a.parameters(), start.parameters()))
    assert moved > 1e-3  # training changed the weights
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)


@pytest.mark.slow  # torchrun
def test_experiment_under_torchrun(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        'name = "tiny-ddp"\n[data]\nsource = "mnist5k"\n[operator]\ntask = "denoise"\nnoise = 0.1\n'
        '[model]\nname = "dncnn"\n[model.options]\ndepth = 3\nfeatures = 4\n'
        '[training]\nsteps = 4\nbatch_size = 16\nval_every = 2\ncheckpoint_every = 2\n'
        '[evaluation]\nbaselines = ["init"]\nmax_test_images = 4\n'
    )
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "proxlab.cli.main", "run", str(cfg), "--out", str(tmp_path / "run"), "--threads", "1",
                        "--no-progress"], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "run" / "report.html").is_file()
    assert r.stdout.count("test dncnn:") == 1  # only rank 0 evaluates and reports

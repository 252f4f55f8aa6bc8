"""The Trainer: exact resume, faults (NaN, Ctrl-C, corrupt or foreign checkpoints, tiny datasets), features."""

import json
import os
import signal

import pytest
import torch
from torch import nn

from proxlab.losses import simulated, supervised
from proxlab.operators import Denoising
from proxlab.training import CheckpointError, Trainer, TrainingDiverged, load_model_weights, lr_factor, save_model

CLEAN = torch.rand(48, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def net(seed=0, width=4):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1))


def trainer(model, out=None, **kw):
    args = dict(steps=25, batch_size=8, checkpoint_every=5, val_every=5, log_every=1, progress=False, out_dir=out)
    args.update(kw)
    return Trainer(model, simulated(Denoising(), 0.1), CLEAN, **args)


def weights_equal(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_resume_after_crash_is_bit_for_bit(tmp_path):
    ref = net()
    trainer(ref, tmp_path / "ref").fit()

    class Crash(Exception):
        pass

    def crash_at_13(model, _state={"n": 0}):
        _state["n"] += 1
        if _state["n"] == 13:
            raise Crash

    crashed = net()
    with pytest.raises(Crash):
        trainer(crashed, tmp_path / "run", post_step=crash_at_13).fit()
    state = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert state["step"] == 10  # the last checkpoint before the crash
    resumed = net(seed=123)  # different init: everything must come from the checkpoint
    trainer(resumed, tmp_path / "run").resume().fit()
    assert weights_equal(ref, resumed)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    steps = [h["step"] for h in log if "loss" in h]
    assert steps == list(range(1, 26))  # the log has no duplicate steps after the resume


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_checkpoints_then_stops_cleanly(tmp_path, sig):
    before = signal.getsignal(sig)  # default_int_handler, or SIG_IGN when pytest runs as a background job
    ref = net()
    trainer(ref).fit()

    def interrupt_at_7(model, _state={"n": 0}):
        _state["n"] += 1
        if _state["n"] == 7:
            os.kill(os.getpid(), sig)

    m = net()
    result = trainer(m, tmp_path, post_step=interrupt_at_7).fit()
    assert result.stop_reason == "interrupted" and result.step == 7
    assert json.loads((tmp_path / "checkpoint.json").read_text())["step"] == 7
    assert signal.getsignal(sig) is before  # the caller's handler restored
    resumed = net(seed=5)
    trainer(resumed, tmp_path).resume().fit()
    assert weights_equal(ref, resumed)


def test_first_checkpoint_comes_early_then_every_n_steps(tmp_path, monkeypatch):
    monkeypatch.setattr(Trainer, "early_checkpoint_seconds", 0.0)  # "a minute" is due at once
    t = trainer(net(), tmp_path, steps=12, checkpoint_every=10)
    saved = []
    real = t.save_checkpoint
    monkeypatch.setattr(t, "save_checkpoint", lambda: saved.append(t.step) or real())
    t.fit()
    assert saved == [1, 10, 12]  # one early checkpoint, then the cadence (and the end)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def loss_fn(model, batch, ctx):
        calls["n"] += 1
        out = model(batch).pow(2).mean()
        return out * float("nan") if calls["n"] == 8 else out

    t = Trainer(net(), loss_fn, CLEAN, steps=20, batch_size=8, checkpoint_every=5, progress=False, out_dir=tmp_path)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 8; .*last good checkpoint is in"):
        t.fit()
    assert json.loads((tmp_path / "checkpoint.json").read_text())["step"] == 5
    restored = net(seed=9)
    load_model_weights(tmp_path / json.loads((tmp_path / "checkpoint.json").read_text())["weights"], restored, prefix="model.")
    assert all(torch.isfinite(p).all() for p in restored.parameters())


def test_dataset_smaller_than_batch():
    with pytest.raises(ValueError, match="train_data has 5 samples, fewer than batch_size=8"):
        Trainer(net(), simulated(Denoising(), 0.1), CLEAN[:5], batch_size=8, progress=False)


def test_missing_and_corrupt_checkpoints(tmp_path):
    t = trainer(net(), tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        t.resume()
    (tmp_path / "checkpoint.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt checkpoint pointer"):
        t.resume()
    trainer(net(), tmp_path, steps=5).fit()
    weights = tmp_path / json.loads((tmp_path / "checkpoint.json").read_text())["weights"]
    weights.write_bytes(weights.read_bytes()[:100])  # truncated file, and no earlier checkpoint to fall back to
    with pytest.raises(CheckpointError, match=r"no usable checkpoint in .*: ckpt-00000005\.safetensors fails its "
                                              r"SHA-256 check"):
        trainer(net(), tmp_path).resume()


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    ref = net()
    trainer(ref, tmp_path / "ref").fit()
    trainer(net(), tmp_path / "run", steps=20).fit()  # checkpoints every 5 steps: 15 and 20 are kept
    ptr = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert ptr["step"] == 20 and ptr["previous"]["step"] == 15 and len(ptr["sha256"]) == 64
    newest = tmp_path / "run" / ptr["weights"]
    data = bytearray(newest.read_bytes())
    data[-4096:] = bytes(4096)  # 4 KB zeroed inside the tensor data: the file still parses
    newest.write_bytes(bytes(data))
    resumed = net(seed=123)
    t = trainer(resumed, tmp_path / "run")
    with pytest.warns(RuntimeWarning, match=r"ckpt-00000020\.safetensors fails its SHA-256 check.*resuming from the "
                                            r"previous checkpoint \(ckpt-00000015\.safetensors, step 15\)"):
        t.resume()
    assert t.step == 15
    t.fit()
    assert weights_equal(ref, resumed)  # steps 16-25 again from step 15's state: the same weights as one straight run
    (tmp_path / "run" / json.loads((tmp_path / "run" / "checkpoint.json").read_text())["previous"]["weights"]).unlink()
    data = bytearray((tmp_path / "run" / "ckpt-00000025.safetensors").read_bytes())
    data[-8:] = bytes(b ^ 0xFF for b in data[-8:])  # flipped bits
    (tmp_path / "run" / "ckpt-00000025.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"no usable checkpoint .*25\.safetensors fails its SHA-256 check .*; ckpt-00000020\.safetensors is missing"):
        trainer(net(), tmp_path / "run").resume()


def test_weights_from_another_architecture(tmp_path):
    save_model(tmp_path / "m.safetensors", net(width=4))
    with pytest.raises(CheckpointError, match=r"do not match Sequential: shape mismatch for '0.weight'"):
        load_model_weights(tmp_path / "m.safetensors", net(width=6))
    with pytest.raises(CheckpointError, match=r"missing 6 tensor\(s\), e.g. '0.0.bias'; 4 unexpected tensor\(s\)"):
        load_model_weights(tmp_path / "m.safetensors", nn.Sequential(net(), nn.Conv2d(1, 1, 1)))


def test_param_groups_schedule_clip_and_hook():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)
            self.step_size = nn.Parameter(torch.tensor(0.5))

        def forward(self, y):
            return self.conv(y) * self.step_size

    seen = []
    t = Trainer(Model(), simulated(Denoising(), 0.1), CLEAN, steps=10, batch_size=8, lr=1e-3,
                lr_groups={"step_size": 1e-1}, schedule="cosine", grad_clip=0.5, progress=False,
                post_step=lambda m: (m.conv.weight.clamp_(min=0), seen.append(1)))
    groups = {g["name"]: g for g in t.optimizer.param_groups}
    assert groups["step_size"]["base_lr"] == 1e-1 and groups["default"]["base_lr"] == 1e-3
    t.fit()
    assert len(seen) == 10 and bool((t.model.conv.weight >= 0).all())
    assert groups["step_size"]["lr"] == pytest.approx(1e-1 * lr_factor("cosine", 10)(9))
    with pytest.raises(ValueError, match=r"lr_groups\['nope'\]: no parameter name contains 'nope'"):
        Trainer(Model(), simulated(Denoising(), 0.1), CLEAN, batch_size=8, lr_groups={"nope": 1e-2}, progress=False)


def test_validation_best_model_and_early_stopping(tmp_path):
    g = torch.Generator().manual_seed(2)
    val = (CLEAN[:16] + 0.1 * torch.randn(16, 1, 8, 8, generator=g), CLEAN[:16])
    calls = {"n": 0}

    def validate(model):  # improves twice, then gets worse
        calls["n"] += 1
        return {"psnr": [10.0, 12.0, 11.0, 11.5, 9.0, 8.0][calls["n"] - 1]}

    r = trainer(net(), tmp_path, steps=100, val_every=5, validate=validate, patience=3).fit()
    assert r.stop_reason == "early_stopping" and r.best_metric == 12.0 and r.best_step == 10 and r.step == 25
    assert (tmp_path / "best.safetensors").is_file()
    r = trainer(net(), None, steps=10, val_every=5, val_data=val).fit()
    vals = [h for h in r.history if "val_psnr" in h]
    assert len(vals) == 2 and vals[1]["val_psnr"] > vals[0]["val_psnr"] > 0 and -1 <= vals[1]["val_ssim"] <= 1
    assert vals[1]["val_mse"] < vals[0]["val_mse"]


def test_default_validation_covers_every_pair():
    from proxlab.metrics import psnr
    from proxlab.training import default_validate

    g = torch.Generator().manual_seed(4)
    x = torch.rand(37, 1, 8, 8, generator=g)
    y = x + 0.1 * torch.randn(x.shape, generator=g)
    model = nn.Identity()
    got = default_validate(model, (y, x), 8, torch.device("cpu"))
    assert got["psnr"] == pytest.approx(float(psnr(y.clamp(0, 1), x).mean()), rel=1e-6)
    from proxlab.data import MeasurementPairs

    pairs = MeasurementPairs(x, Denoising(), noise=0.1, seed=0)
    ys = torch.stack([pairs[i][0] for i in range(len(pairs))])
    assert default_validate(model, pairs, 8, torch.device("cpu"))["psnr"] == pytest.approx(
        float(psnr(ys.clamp(0, 1), x).mean()), rel=1e-6)


def test_pairs_dataset_and_dataloader_workers():
    from proxlab.data import MeasurementPairs

    pairs = MeasurementPairs(CLEAN, Denoising(), noise=0.1, seed=0)
    a, b = net(), net()
    Trainer(a, supervised(), pairs, steps=6, batch_size=8, progress=False).fit()
    Trainer(b, supervised(), pairs, steps=6, batch_size=8, progress=False, num_workers=1).fit()
    assert weights_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": 0}, "steps must be an int >= 1"),
        ({"lr": 0}, "lr must be > 0"),
        ({"metric": "psnrr"}, "did you mean 'psnr'"),
        ({"schedule": "linear"}, "schedule must be one of"),
        ({"grad_clip": -1}, "grad_clip must be >= 0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Trainer(net(), simulated(Denoising(), 0.1), CLEAN, batch_size=8, progress=False, **kwargs)


def test_schedules():
    f = lr_factor("multistep", 100, milestones=[10, 20], gamma=0.5)
    assert [f(0), f(10), f(25)] == [1.0, 0.5, 0.25]
    w = lr_factor("constant", 100, warmup_steps=4)
    assert [w(0), w(3), w(4)] == [0.25, 1.0, 1.0]
    c = lr_factor("cosine", 10)
    assert c(0) == 1.0 and c(10) == pytest.approx(0.0, abs=1e-12)


def test_training_seconds_add_up_over_a_resume(tmp_path):
    first = trainer(net(), tmp_path / "run", steps=10).fit()
    state = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert first.train_seconds > 0 and state["train_seconds"] == pytest.approx(first.train_seconds)
    t = trainer(net(), tmp_path / "run", steps=20).resume()
    assert t.train_seconds == pytest.approx(first.train_seconds)  # restored from the checkpoint
    second = t.fit()
    assert second.step == 20 and second.train_seconds > first.train_seconds


def test_other_ranks_continue_on_their_own_random_streams_after_a_resume(tmp_path):
    # the checkpoint holds rank 0's generator; a rank > 0 must not replay it (it would draw rank 0's noise/batches)
    from proxlab.training.distributed import DistributedContext

    trainer(net(), tmp_path / "run", steps=10).fit()
    rank0 = trainer(net(), tmp_path / "run", steps=20).resume()
    rank1 = trainer(net(), tmp_path / "run", steps=20)
    rank1.dist = DistributedContext(rank=1, world_size=2)
    rank1.resume()
    draw = lambda t: torch.rand(5, generator=t.generator)  # noqa: E731
    assert not torch.equal(draw(rank0), draw(rank1))
    again = trainer(net(), tmp_path / "run", steps=20)
    again.dist = DistributedContext(rank=1, world_size=2)
    again.resume()
    twin = trainer(net(), tmp_path / "run", steps=20)
    twin.dist = DistributedContext(rank=1, world_size=2)
    twin.resume()
    assert torch.equal(draw(again), draw(twin))  # and the stream is reproducible

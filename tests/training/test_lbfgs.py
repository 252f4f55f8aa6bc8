"""The Trainer's L-BFGS optimiser: it solves a least-squares fit, every line-search evaluation of a step sees the
same batch and noise, its history survives a checkpoint, and options it cannot honour are refused."""

import json

import pytest
import torch
from torch import nn

from proxlab.training import Trainer

G = torch.Generator().manual_seed(0)
X = torch.randn(64, 5, generator=G, dtype=torch.float64)
W_TRUE = torch.randn(5, 1, generator=G, dtype=torch.float64)
Y = X @ W_TRUE + 0.1 * torch.randn(64, 1, generator=G, dtype=torch.float64)


def linear(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(5, 1, bias=False).double()


def lsq_loss(model, batch, ctx):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def trainer(model, steps, **kw):
    kw = {"batch_size": 64, "lr": 1.0, "val_every": 1000, "checkpoint_every": 1000, "log_every": 1000,
          "progress": False, "optimizer": "lbfgs", **kw}
    return Trainer(model, lsq_loss, (X, Y), steps=steps, **kw)


def test_full_batch_lbfgs_reaches_the_least_squares_solution():
    w_star = torch.linalg.lstsq(X, Y).solution.T
    lbfgs, adam = linear(), linear()
    trainer(lbfgs, 8).fit()
    trainer(adam, 8, optimizer="adam", lr=1e-2).fit()
    err = float((lbfgs.weight.detach() - w_star).norm() / w_star.norm())
    assert err < 1e-4  # a 5-parameter quadratic: a few L-BFGS iterations (here about 8e-6 after 8)
    assert float((adam.weight.detach() - w_star).norm() / w_star.norm()) > 100 * err


def test_every_evaluation_of_a_step_sees_the_same_noise():
    draws: dict[int, list[torch.Tensor]] = {}

    def noisy(model, batch, ctx):
        x, y = batch
        n = torch.randn(y.shape, generator=ctx.generator, dtype=y.dtype)
        draws.setdefault(ctx.step, []).append(n)
        return ((model(x) - y - 0.5 * n) ** 2).mean()

    Trainer(linear(), noisy, (X, Y), steps=3, batch_size=64, lr=1.0, optimizer="lbfgs", lbfgs_iterations=2,
            progress=False, val_every=1000).fit()
    assert sorted(draws) == [0, 1, 2] and all(len(d) >= 2 for d in draws.values())  # the start + line-search trials
    for d in draws.values():
        assert all(torch.equal(d[0], n) for n in d[1:])
    assert not torch.equal(draws[0][0], draws[1][0])  # the next step draws new noise


def test_history_survives_a_checkpoint(tmp_path):
    straight = linear()
    trainer(straight, 4, lbfgs_history=3).fit()
    first = linear()
    trainer(first, 3, lbfgs_history=3, out_dir=tmp_path, checkpoint_every=3).fit()
    info = json.loads((tmp_path / "checkpoint.json").read_text())["optimizer"]["scalars"]
    assert info["0.old_dirs"] == {"__list__": 2}  # iterations 2 and 3 each stored a curvature pair
    resumed = linear(seed=7)  # a different start: the weights and the history must come from the checkpoint
    t = trainer(resumed, 4, lbfgs_history=3, out_dir=tmp_path, checkpoint_every=3)
    t.resume()
    assert t.step == 3 and len(t.optimizer.state[t.optimizer.param_groups[0]["params"][0]]["old_dirs"]) == 2
    t.fit()
    torch.testing.assert_close(resumed.weight, straight.weight, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kw, msg", [
    ({"lr_groups": {"weight": 0.1}}, r"^lr_groups: optimizer 'lbfgs' takes one parameter group"),
    ({"weight_decay": 1e-4}, r"^weight_decay: optimizer 'lbfgs' takes no decay"),
    ({"grad_clip": 1.0}, r"^grad_clip: optimizer 'lbfgs' takes .* line search"),
    ({"lbfgs_iterations": 0}, r"^lbfgs_iterations must be an int >= 1, got 0"),
    ({"optimizer": "sgd"}, r"optimizer.*'adam'.*'lbfgs'.*'sgd'"),
])
def test_options_lbfgs_cannot_honour_are_refused(kw, msg):
    with pytest.raises(ValueError, match=msg):
        trainer(linear(), 2, **kw)


@pytest.mark.parametrize("optimizer, lr", [("lbfgs", 1.0), ("adam", 1e-2)])
def test_micro_batches_give_the_whole_batch_step(optimizer, lr):
    whole, pieces = linear(), linear()
    trainer(whole, 3, optimizer=optimizer, lr=lr).fit()
    t = trainer(pieces, 3, optimizer=optimizer, lr=lr, micro_batch=10)  # 64 samples as 10 + ... + 4
    t.fit()
    torch.testing.assert_close(pieces.weight, whole.weight, rtol=0, atol=1e-12)
    assert [h["loss"] for h in t.history if "loss" in h] == pytest.approx(
        [h["loss"] for h in trainer(linear(), 3, optimizer=optimizer, lr=lr).fit().history if "loss" in h], abs=1e-12)


def test_the_line_search_gets_evaluations_when_the_first_trial_overshoots():
    """With one L-BFGS iteration per step, torch's default budget (1.25 evaluations) leaves the strong-Wolfe search
    none, and a first trial that overshoots became a zero step (what stalled ADMM-Net's full-batch training)."""
    w = nn.Parameter(torch.full((4,), 3.0, dtype=torch.float64))
    model = nn.Module()
    model.w = w

    def steep(m, batch, ctx):
        return 50.0 * (m.w ** 2).sum() + 0.0 * batch.sum()

    t = Trainer(model, steep, torch.zeros(8, 1, dtype=torch.float64), steps=3, batch_size=8, lr=10.0,
                optimizer="lbfgs", progress=False, val_every=1000, log_every=1)
    t.fit()
    losses = [h["loss"] for h in t.history if "loss" in h]
    assert losses[1] < 0.5 * losses[0] and losses[2] < losses[1]

"""``proxlab reconstruct --task ct --method zoo:NAME`` on a user's own slice: a CT zoo model runs on the geometry it
was trained on, a slice of another size gets an error that names --size, and another number of angles one that
names --angles."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from proxlab.cli.main import main
from proxlab.operators import ParallelBeamCT
from proxlab.reconstruction import measure
from proxlab.registry import build_model
from proxlab.tasks import make_task
from proxlab.training.checkpoint import save_model


@pytest.fixture
def ct_zoo(tmp_path, monkeypatch):
    import proxlab.weights
    import proxlab.zoo as zoo

    folder = tmp_path / "zoo"
    folder.mkdir()
    opts = {"phases": 2, "features": 4, "gradient": "adjoint"}
    save_model(folder / "tiny-fista.safetensors", build_model("fistanet", operator=ParallelBeamCT(16, 8), **opts))
    (folder / "tiny-fista.json").write_text(json.dumps({
        "name": "tiny-fista", "model": {"name": "fistanet", "options": opts},
        "task": {"name": "ct", "options": {"noise": 0.1, "angles": 8}}, "data": {"source": "ct_volume", "image_size": [16, 16]}}))
    monkeypatch.setattr(zoo, "ZOO_DIR", folder)
    monkeypatch.setattr(proxlab.weights, "ZOO_DIR", folder)
    return folder


def test_ct_zoo_model_runs_on_its_geometry_and_refuses_others(ct_zoo):
    x = torch.rand(1, 1, 16, 16)
    A, y = measure("zoo:tiny-fista", x, make_task("ct", angles=8, noise=0.1))
    assert y.shape == (1, 1, 8, 16)
    with pytest.raises(ValueError, match=r"trained on 16×16 images, got 24×24; resize the input \(--size 16"):
        measure("zoo:tiny-fista", torch.rand(1, 1, 24, 24), make_task("ct", angles=8))
    with pytest.raises(ValueError, match=r"trained for ct with angles = 8, got 12 \(--angles 8\)"):
        measure("zoo:tiny-fista", x, make_task("ct", angles=12))


def test_cli_reconstructs_a_users_slice_with_resize(ct_zoo, tmp_path, capsys):
    from skimage.io import imsave

    img = tmp_path / "slice.png"
    imsave(img, (np.random.default_rng(0).random((40, 40)) * 255).astype(np.uint8))
    out = tmp_path / "out.png"
    assert main(["reconstruct", "--task", "ct", "--angles", "8", "--method", "zoo:tiny-fista", "--size", "16",
                 "--threads", "1", str(img), str(out)]) == 0
    assert out.is_file() and "PSNR" in capsys.readouterr().out
    assert main(["reconstruct", "--task", "ct", "--angles", "8", "--method", "zoo:tiny-fista", "--threads", "1",
                 str(img), str(out)]) == 2
    assert "--size 16" in capsys.readouterr().err

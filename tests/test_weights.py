"""Reading model weights and resolving ``zoo:NAME`` (proxlab.weights)."""

import pytest
import torch
from torch import nn

from proxlab.training import save_model
from proxlab.weights import ZOO_DIR, CheckpointError, load_model_weights, resolve_weights, zoo_names


def test_zoo_folder_is_package_data_and_resolves_names():
    assert ZOO_DIR.name == "zoo" and (ZOO_DIR / "__init__.py").is_file()
    assert "dncnn-mnist-s0.1" in zoo_names()
    assert resolve_weights("zoo:dncnn-mnist-s0.1") == ZOO_DIR / "dncnn-mnist-s0.1.safetensors"
    with pytest.raises(ValueError, match="did you mean 'dncnn-mnist-s0.1'"):
        resolve_weights("zoo:dncnn-mnist-s0.2")


def test_paths_and_a_private_zoo(tmp_path):
    net = nn.Linear(3, 2)
    save_model(tmp_path / "lin.safetensors", net, metadata={"note": "x"})
    (tmp_path / "lin.json").write_text("{}")
    assert zoo_names(tmp_path) == ["lin"]
    assert resolve_weights("zoo:lin", zoo_dir=tmp_path) == tmp_path / "lin.safetensors"
    assert resolve_weights(tmp_path / "lin.safetensors") == tmp_path / "lin.safetensors"
    other = nn.Linear(3, 2)
    assert load_model_weights(resolve_weights(str(tmp_path / "lin.safetensors")), other) == {"note": "x"}
    torch.testing.assert_close(other.weight, net.weight)
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        resolve_weights(tmp_path / "nope.safetensors")
    with pytest.raises(TypeError, match="weights: expected 'zoo:NAME' or a path, got int"):
        resolve_weights(3)
    with pytest.raises(CheckpointError, match="do not match Linear: shape mismatch for 'weight'"):
        load_model_weights(tmp_path / "lin.safetensors", nn.Linear(4, 2))


def test_training_re_exports_the_same_objects():
    import proxlab.training as training
    import proxlab.weights as weights

    assert training.CheckpointError is weights.CheckpointError
    assert training.load_model_weights is weights.load_model_weights
    assert training.resolve_weights is weights.resolve_weights

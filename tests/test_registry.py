import pytest
from torch import nn

from proxlab.registry import build_model, get_model, list_models, register_model


def test_builtin_models_are_registered():
    assert {"dncnn", "unrolled", "lpn-conv", "lpn-fc", "lpn-fully-conv"} <= set(list_models())
    assert sum(p.numel() for p in build_model("lpn-conv").parameters()) == 317_056


def test_register_and_errors():
    @register_model("test-tiny-net")
    class Tiny(nn.Module):
        def __init__(self, width: int = 2):
            super().__init__()
            self.lin = nn.Linear(width, 1)

    assert isinstance(build_model("test-tiny-net", width=3), Tiny)
    with pytest.raises(ValueError, match="already registered"):
        register_model("test-tiny-net")(nn.Identity)
    with pytest.raises(ValueError, match="did you mean 'dncnn'"):
        get_model("dncn")
    with pytest.raises(TypeError, match="model 'test-tiny-net':.*unexpected keyword argument 'depth'"):
        build_model("test-tiny-net", depth=3)

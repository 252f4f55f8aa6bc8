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


def test_entries_record_whether_a_model_needs_or_carries_an_operator():
    from proxlab.registry import model_entry

    assert model_entry("unrolled").needs_operator and not model_entry("unrolled").carries_operator
    for name in ("istanet", "resnet-pgd"):
        assert model_entry(name).carries_operator and not model_entry(name).needs_operator
    for name in ("dncnn", "lpn-conv", "lpn-fc", "lpn-fully-conv"):
        assert not model_entry(name).needs_operator and not model_entry(name).carries_operator
    with pytest.raises(ValueError, match="did you mean 'istanet'"):
        model_entry("istanet+")


def test_operator_flags_are_checked_when_registering():
    def needs(operator, width: int = 2):
        return nn.Linear(width, 1)

    def carries_without_default(operator):
        return nn.Identity()

    with pytest.raises(ValueError, match="needs_operator and carries_operator exclude each other"):
        register_model("test-both", needs_operator=True, carries_operator=True)
    with pytest.raises(TypeError, match="needs_operator must be a bool, got int"):
        register_model("test-int", needs_operator=1)
    with pytest.raises(TypeError, match="registered with needs_operator=True, but .* has no 'operator' argument"):
        register_model("test-no-operator", needs_operator=True)(nn.Identity)
    with pytest.raises(TypeError, match="its 'operator' argument needs a default"):
        register_model("test-carries", carries_operator=True)(carries_without_default)
    assert "test-no-operator" not in list_models() and "test-carries" not in list_models()
    register_model("test-needs", needs_operator=True)(needs)
    from proxlab.registry import model_entry

    assert model_entry("test-needs").needs_operator and get_model("test-needs") is needs

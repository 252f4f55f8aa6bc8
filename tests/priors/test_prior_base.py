"""The Prior protocol: declared capabilities, plain callables as priors, require()'s errors, the solvers' checks."""

import functools

import pytest
import torch

import proxlab.priors as priors
from proxlab.operators import Denoising
from proxlab.priors import CAPABILITIES, Prior, capabilities, require
from proxlab.priors.classic import L1, TV, Box, WaveletL1
from proxlab.priors.lpn import LPNConv, LPNFullyConnected, LPNFullyConvolutional
from proxlab.priors.networks import DnCNN
from proxlab.solvers import admm, fista, hqs, least_squares_objective, pgd

REG = frozenset({"prox", "regularizer"})


class Flow(Prior):
    """A prior with a density: log p and its gradient (standard normal), prox of -log p (a shrink)."""

    def forward(self, v, tau=1.0):
        return v / (1.0 + tau)

    def log_prob(self, x):
        return -0.5 * x.flatten(1).pow(2).sum(1)

    def grad_log_prob(self, x):
        return -x


class NoRegularizer(L1):
    """Opts out of an inherited capability."""

    regularizer = None


class NoProx(Prior):
    def regularizer(self, x):
        return x.flatten(1).sum(1)


class LegacyModule(torch.nn.Module):
    """Has a regularizer method but is not a Prior: a prox only (no attribute sniffing)."""

    def forward(self, v, tau=1.0):
        return v

    def regularizer(self, x):
        return x.flatten(1).sum(1)


class WithSubmodule(torch.nn.Module):
    """A submodule *called* regularizer: hasattr would have taken it for a g."""

    def __init__(self):
        super().__init__()
        self.regularizer = torch.nn.Identity()

    def forward(self, v, tau=1.0):
        return v


def shrink(v, tau):
    return 0.5 * v


class TestCapabilities:
    @pytest.mark.parametrize(
        "prior, expected",
        [
            (L1(0.1), REG),
            (Box(0, 1), REG),
            (TV(0.1), REG),
            (WaveletL1(0.1, "haar", 1), REG),
            (LPNFullyConnected(hidden=2, layers=1), REG | {"after_optimizer_step"}),
            (LPNConv(image_size=8, hidden=2, depth=1, features=2), REG | {"after_optimizer_step"}),
            (LPNFullyConvolutional(hidden=2, depth=1, features=2), REG | {"after_optimizer_step"}),
            (DnCNN(depth=3, features=2), frozenset({"prox"})),
            (Flow(), frozenset({"prox", "log_prob", "grad_log_prob"})),
            (NoRegularizer(0.1), frozenset({"prox"})),
            (NoProx(), frozenset({"regularizer"})),
        ],
        ids=lambda p: type(p).__name__ if isinstance(p, torch.nn.Module) else "",
    )
    def test_declared_by_overriding(self, prior, expected):
        assert capabilities(prior) == expected
        assert capabilities(prior) <= set(CAPABILITIES)

    @pytest.mark.parametrize(
        "prior",
        [lambda v, tau: v, shrink, functools.partial(shrink), torch.nn.Identity(), LegacyModule(), WithSubmodule()],
        ids=["lambda", "function", "partial", "nn.Identity", "module-with-regularizer-method",
             "submodule-named-regularizer"],
    )
    def test_plain_callables_are_prox_only(self, prior):
        assert capabilities(prior) == frozenset({"prox"})

    @pytest.mark.parametrize("prior", [None, 3, "tv", torch.zeros(2)])
    def test_non_callables_have_nothing(self, prior):
        assert capabilities(prior) == frozenset()

    def test_prox_is_the_call_and_runs_forward_hooks(self):
        prior, v = L1(0.2), torch.tensor([[-1.0, 0.1, 0.5]])
        seen = []
        prior.register_forward_hook(lambda m, args, out: seen.append(args[1]))
        torch.testing.assert_close(prior.prox(v, 0.5), torch.tensor([[-0.9, 0.0, 0.4]]))
        assert seen == [0.5]

    def test_a_prior_without_forward_cannot_be_called(self):
        with pytest.raises(NotImplementedError, match="NoProx must implement forward"):
            NoProx()(torch.zeros(1, 2))

    @pytest.mark.parametrize("method, args", [("regularizer", (torch.zeros(1, 2),)), ("log_prob", (torch.zeros(1, 2),)),
                                              ("grad_log_prob", (torch.zeros(1, 2),)), ("after_optimizer_step", ())])
    def test_undeclared_base_methods_raise_naming_the_method(self, method, args):
        with pytest.raises(TypeError, match=rf"DnCNN\.{method}: needs prior\.{method}\(.*DnCNN does not have it"):
            getattr(DnCNN(depth=3, features=2), method)(*args)

    def test_exported_from_proxlab_priors(self):
        for name in ("Prior", "CAPABILITIES", "capabilities", "require"):
            assert name in priors.__all__ and getattr(priors, name) is not None
        assert CAPABILITIES == ("prox", "regularizer", "log_prob", "grad_log_prob", "after_optimizer_step")


class TestRequire:
    def test_returns_the_prior(self):
        prior = TV(0.1)
        assert require(prior, "regularizer", "fista") is prior
        fn = lambda v, tau: v  # noqa: E731
        assert require(fn, "prox", "admm") is fn

    def test_message_names_who_why_what_and_the_prior(self):
        with pytest.raises(TypeError) as err:
            require(lambda v, tau: v, "regularizer", "fista", why="the objective history")
        msg = str(err.value)
        assert msg.startswith("fista: the objective history needs prior.regularizer(x); <lambda> does not have it "
                              "(a plain callable is a prox only; its capabilities: prox).")
        assert "Priors with it:" in msg and "TV" in msg and "L1" in msg and "DnCNN" not in msg

    @pytest.mark.parametrize(
        "prior, name, has",
        [(shrink, "shrink", "a plain callable is a prox only"),
         (DnCNN(depth=3, features=2), "DnCNN", "its capabilities: prox"),
         (Flow(), "Flow", "its capabilities: prox, log_prob, grad_log_prob"),
         (NoProx(), "NoProx", "its capabilities: regularizer")],
    )
    def test_message_names_the_prior_and_its_capabilities(self, prior, name, has):
        start = rf"^Unrolled: needs prior\.after_optimizer_step\(\); {name} does not have it \({has}"
        with pytest.raises(TypeError, match=start):
            require(prior, "after_optimizer_step", "Unrolled")

    def test_a_prior_without_forward_is_no_prox(self):
        with pytest.raises(TypeError, match=r"^pgd: needs prior\(v, tau\) \(a prox\); NoProx does not have it"):
            require(NoProx(), "prox", "pgd")

    def test_hint_for_a_module_that_has_the_method_but_does_not_declare_it(self):
        with pytest.raises(TypeError, match="it defines regularizer but does not subclass proxlab.priors.Prior"):
            require(LegacyModule(), "regularizer", "fista")
        with pytest.raises(TypeError) as err:
            require(WithSubmodule(), "regularizer", "fista")
        assert "it defines" not in str(err.value)  # a submodule is not a method

    @pytest.mark.parametrize("prior, shown", [("tv", "str 'tv'"), (None, "NoneType None"), ("x" * 80, "str 'xxx")])
    def test_non_callable(self, prior, shown):
        start = r"^hqs: the prior must be callable as prior\(v, tau\) \(a prox\), got "
        with pytest.raises(TypeError, match=start) as err:
            require(prior, "prox", "hqs")
        assert shown in str(err.value) and len(str(err.value)) < 120

    def test_unknown_capability_has_a_close_match(self):
        with pytest.raises(ValueError, match=r"one of .*'regulariser'; did you mean 'regularizer'\?"):
            require(L1(), "regulariser", "fista")

    @pytest.mark.parametrize("who", ["", None, 3])
    def test_who_must_be_named(self, who):
        with pytest.raises(TypeError, match="who: expected a non-empty str"):
            require(L1(), "prox", who)


class TestLPNWeightClamp:
    def test_after_optimizer_step_clamps_the_z_path_and_clamp_weights_is_its_alias(self):
        torch.manual_seed(0)
        for method in ("after_optimizer_step", "clamp_weights"):
            m = LPNFullyConnected(hidden=4, layers=2)
            with torch.no_grad():
                for w in m.z_path_parameters():
                    w.normal_()
            free = m.first.weight.detach().clone()
            assert any(bool((w < 0).any()) for w in m.z_path_parameters())
            getattr(m, method)()
            assert all(bool((w >= 0).all()) for w in m.z_path_parameters())
            assert torch.equal(m.first.weight, free)  # the free first layer is untouched


class TestSolversCheckBeforeIterating:
    A, y = Denoising(), torch.rand(1, 1, 4, 4)

    @pytest.mark.parametrize("solver", [pgd, fista, admm, hqs])
    def test_a_non_callable_prior_is_named_with_the_solver(self, solver):
        with pytest.raises(TypeError, match=rf"^{solver.__name__}: the prior must be callable as prior\(v, tau\)"):
            solver(self.A, self.y, "tv")

    def test_objective_recorded_only_where_declared(self):
        assert "objective" in fista(self.A, self.y, L1(0.1), max_iter=2, tol=0).history[0]
        for prior in (lambda v, tau: v, LegacyModule(), WithSubmodule()):
            res = fista(self.A, self.y, prior, max_iter=2, tol=0)
            assert "objective" not in res.history[0] and "residual" in res.history[0]

    def test_least_squares_objective_modes(self):
        x = torch.zeros(1, 1, 4, 4)
        y = torch.ones(1, 1, 4, 4)
        assert least_squares_objective(self.A, y, L1(0.5))(x) == {"residual": pytest.approx(4.0),
                                                                 "objective": pytest.approx(8.0)}
        assert least_squares_objective(self.A, y, L1(0.5), objective=False)(x) == {"residual": pytest.approx(4.0)}
        assert least_squares_objective(self.A, y, L1(0.5), objective=True)(y)["objective"] == pytest.approx(8.0)
        with pytest.raises(TypeError, match=r"^least_squares_objective: the objective history needs prior\.reg"):
            least_squares_objective(self.A, y, lambda v, tau: v, objective=True)

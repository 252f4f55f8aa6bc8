"""Properties every operator must have: dot test (float64 and float32), shapes, gradcheck, normal equations."""

import pytest
import torch

from proxlab.operators import (
    MRI,
    ParallelBeamCT,
    BlockCompressedSensing,
    CompressedSensing,
    Convolution,
    Denoising,
    GaussianBlur,
    Inpainting,
    adjoint_test,
)


def _cases():
    g = torch.Generator().manual_seed(3)
    return {
        "denoising": (lambda: Denoising(), (2, 8, 8)),
        "inpainting-random": (lambda: Inpainting.random(8, 0.5, seed=1), (1, 8, 8)),
        "inpainting-box-colour": (lambda: Inpainting.box((8, 10), 3), (3, 8, 10)),
        "gaussian-blur": (lambda: GaussianBlur(1.0), (1, 12, 12)),
        "convolution-asymmetric": (lambda: Convolution(torch.rand(3, 4, generator=g)), (2, 9, 10)),
        "cs-dense": (lambda: CompressedSensing(12, 30, seed=2), (30,)),
        "cs-dense-image": (lambda: CompressedSensing(20, 36, signal_shape=(1, 6, 6)), (1, 6, 6)),
        "block-cs": (lambda: BlockCompressedSensing(0.25, block=5), (1, 10, 15)),
        "block-cs-padded": (lambda: BlockCompressedSensing(0.1, image_size=(40, 35)), (1, 40, 35)),
        "mri-radial": (lambda: MRI.radial(12, 0.3), (1, 12, 12)),
        "mri-cartesian-odd": (lambda: MRI.cartesian((9, 11), 0.4), (1, 9, 11)),
        "composition": (lambda: GaussianBlur(0.8) @ Inpainting.box(10, 4), (1, 10, 10)),
        "ct-symmetric": (lambda: ParallelBeamCT(12, 6), (1, 12, 12)),
        "ct-plain-odd-angles": (lambda: ParallelBeamCT(10, 7, circle=False), (1, 10, 10)),
    }


CASES = _cases()


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_dot_product(name, dtype, dot_tol):
    make, shape = CASES[name]
    assert adjoint_test(make(), shape, dtype=dtype) <= dot_tol[dtype]


@pytest.mark.parametrize("name", list(CASES))
def test_output_dtype_follows_input(name):
    make, shape = CASES[name]
    op = make()
    for dtype in (torch.float32, torch.float64):
        x = torch.rand((2,) + shape, dtype=dtype)
        y = op(x)
        assert (y.real if y.is_complex() else y).dtype == dtype
        back = op.adjoint(y)
        assert back.shape == x.shape and back.dtype == dtype


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck_forward_and_adjoint(name):
    make, shape = CASES[name]
    op = make()
    x = torch.rand((1,) + shape, dtype=torch.float64, requires_grad=True)
    # large inputs (block CS on 40x35 pixels): the fast mode checks random Jacobian-vector products instead of the
    # whole Jacobian column by column (one random direction instead of one per input entry)
    fast = x.numel() > 500
    assert torch.autograd.gradcheck(lambda v: op(v), (x,), fast_mode=fast)
    y = op(x.detach()).clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: op.adjoint(v), (y,), fast_mode=fast)


@pytest.mark.parametrize("name", list(CASES))
def test_solve_normal_matches_cg(name):
    make, shape = CASES[name]
    op = make()
    b = torch.randn((2,) + shape, dtype=torch.float64)
    rho = 0.3
    x = op.solve_normal(b, rho, tol=1e-10, max_iter=500)  # closed forms ignore tol; CG fallbacks honour it
    assert x.shape == b.shape
    residual = (op.gram(x) + rho * x - b).norm() / b.norm()
    assert residual < 1e-6
    # against the base-class CG, run to high precision
    from proxlab.operators.base import conjugate_gradient

    x_cg = conjugate_gradient(lambda v: op.gram(v) + rho * v, b, tol=1e-12, max_iter=500)
    torch.testing.assert_close(x, x_cg, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", list(CASES))
def test_solve_normal_per_sample_rho(name):
    make, shape = CASES[name]
    op = make()
    b = torch.randn((2,) + shape, dtype=torch.float64)
    rho = torch.tensor([0.2, 2.0], dtype=torch.float64)
    x = op.solve_normal(b, rho, tol=1e-10, max_iter=500)
    for i in range(2):
        xi = op.solve_normal(b[i : i + 1], float(rho[i]), tol=1e-10, max_iter=500)
        torch.testing.assert_close(x[i : i + 1], xi, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", list(CASES))
def test_norm_is_largest_gram_eigenvalue(name):
    make, shape = CASES[name]
    op = make()
    lam = op.norm(shape)
    g = torch.Generator().manual_seed(0)
    x = torch.randn((8,) + shape, generator=g, dtype=torch.float64)
    rayleigh = (x * op.gram(x)).reshape(8, -1).sum(1) / (x * x).reshape(8, -1).sum(1)
    assert float(rayleigh.max()) <= lam * (1 + 1e-5)
    assert lam > 0


@pytest.mark.parametrize("name", list(CASES))
def test_wrong_input_shape_names_both_shapes(name):
    make, shape = CASES[name]
    op = make()
    bad = torch.zeros((2,) + shape + (1,))
    with pytest.raises(ValueError, match=r"must have shape .* got shape"):
        op(bad)


def test_aliases_and_transpose():
    op = GaussianBlur(1.0)
    x = torch.rand(1, 1, 8, 8)
    torch.testing.assert_close(op.A(x), op(x))
    torch.testing.assert_close(op.A_adjoint(x), op.adjoint(x))
    torch.testing.assert_close(op.T(x), op.adjoint(x))
    torch.testing.assert_close(op.T.adjoint(x), op(x))


def test_compose_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="cannot compose"):
        CompressedSensing(5, 10) @ CompressedSensing(4, 8)


def test_base_class_cg_default_solve_normal():
    # A composition has no closed form, so it goes through CG in the base class.
    op = GaussianBlur(1.0) @ Inpainting.random(8, 0.5)
    b = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    x = op.solve_normal(b, 0.1, tol=1e-10, max_iter=300)
    assert (op.gram(x) + 0.1 * x - b).norm() / b.norm() < 1e-9
    with pytest.raises(ValueError, match="rho"):
        op.solve_normal(b, -1.0)


def test_adjoint_test_requires_shape_for_free_dims():
    with pytest.raises(ValueError, match="x_shape must be given"):
        adjoint_test(Denoising())


def test_an_operator_must_define_forward_and_adjoint():
    from proxlab.operators import LinearOperator

    class Half(LinearOperator):
        def _forward(self, x):
            return x

    with pytest.raises(TypeError, match="abstract"):
        Half((1,), (1,))


def test_power_iteration_norm_is_recomputed_after_loading_buffers():
    from proxlab.operators.base import LinearOperator

    class Diag(LinearOperator):
        def __init__(self, w):
            super().__init__((3,), (3,))
            self.register_buffer("w", w)

        def _forward(self, x):
            return x * self.w

        def _adjoint(self, y):
            return y * self.w

    a, b = Diag(torch.tensor([1.0, 2.0, 0.5])), Diag(torch.tensor([4.0, 1.0, 1.0]))
    assert a.norm() == pytest.approx(4.0, rel=1e-4)
    a.load_state_dict(b.state_dict())
    assert a.norm() == pytest.approx(16.0, rel=1e-4)


def test_blur_transfer_function_is_recomputed_after_loading_a_kernel():
    from proxlab.operators import Convolution

    a, b = Convolution(torch.tensor([[0.0, 1.0, 0.0]])), Convolution(torch.tensor([[0.25, 0.5, 0.25]]))
    x = torch.rand(1, 1, 8, 8)
    a(x)  # caches a's transfer function for 8x8
    a.load_state_dict(b.state_dict())
    torch.testing.assert_close(a(x), b(x))

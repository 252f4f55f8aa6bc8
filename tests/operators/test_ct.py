"""ParallelBeamCT: geometry against skimage's radon/iradon, exact adjoint, FBP, errors."""

import math
import warnings

import numpy as np
import pytest
import torch

from proxlab.metrics import psnr
from proxlab.operators.base import adjoint_test
from proxlab.operators.ct import FBP_FILTERS, ParallelBeamCT


def _skimage_radon(image, theta, circle=True):
    from skimage.transform import radon

    with warnings.catch_warnings():  # skimage warns when the image is nonzero outside the circle
        warnings.simplefilter("ignore", UserWarning)
        return radon(image, theta=np.asarray(theta, dtype=np.float64), circle=circle)


@pytest.fixture(scope="module")
def phantom128():
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    return resize(shepp_logan_phantom(), (128, 128))


@pytest.fixture(scope="module")
def op128():
    return ParallelBeamCT(128, 180)


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


class TestSmokeAndShapes:
    def test_output_shapes(self):
        op = ParallelBeamCT(16, 7)
        x = torch.rand(3, 1, 16, 16)
        y = op(x)
        assert y.shape == (3, 1, 7, 16)
        assert op.adjoint(y).shape == x.shape
        assert op.fbp(y).shape == x.shape
        assert op.in_shape == (1, 16, 16) and op.out_shape == (1, 7, 16)

    def test_detectors_and_circle_defaults(self):
        assert ParallelBeamCT(10, 3, detectors=15).out_shape == (1, 3, 15)
        assert ParallelBeamCT(10, 3, circle=False).out_shape == (1, 3, math.ceil(math.sqrt(2) * 10))

    def test_int_angles_are_skimage_linspace(self):
        op_int = ParallelBeamCT(12, 9)
        np.testing.assert_allclose(op_int.angles.numpy(), np.linspace(0, 180, 9, endpoint=False), atol=1e-12)
        op_arr = ParallelBeamCT(12, np.linspace(0, 180, 9, endpoint=False))
        x = torch.rand(2, 1, 12, 12, dtype=torch.float64)
        torch.testing.assert_close(op_int(x), op_arr(x))

    def test_batch_equals_single_samples(self):
        op = ParallelBeamCT(20, 11)
        x = torch.rand(3, 1, 20, 20, dtype=torch.float64)
        y = op(x)
        for b in range(3):
            torch.testing.assert_close(y[b : b + 1], op(x[b : b + 1]))
            torch.testing.assert_close(op.adjoint(y)[b : b + 1], op.adjoint(y[b : b + 1]))

    def test_matrices_not_in_state_dict(self):
        assert len(ParallelBeamCT(8, 4).state_dict()) == 0


class TestBadInput:
    @pytest.mark.parametrize("size", [0, -3])
    def test_size_not_positive(self, size):
        with pytest.raises(ValueError, match="size must be a positive int"):
            ParallelBeamCT(size, 4)

    @pytest.mark.parametrize("size", [8.0, "8", True, None])
    def test_size_not_int(self, size):
        with pytest.raises(TypeError, match="size: expected a positive int"):
            ParallelBeamCT(size, 4)

    def test_angles_count_zero(self):
        with pytest.raises(ValueError, match="angles must be >= 1"):
            ParallelBeamCT(8, 0)

    @pytest.mark.parametrize("angles", [[], np.zeros((2, 3)), torch.tensor(5.0)])
    def test_angles_empty_or_not_1d(self, angles):
        with pytest.raises(ValueError, match="angles must be a non-empty 1-D array"):
            ParallelBeamCT(8, angles)

    def test_angles_not_finite(self):
        with pytest.raises(ValueError, match="angles must be finite"):
            ParallelBeamCT(8, [0.0, float("nan")])

    @pytest.mark.parametrize("angles", [True, "abc", object()])
    def test_angles_wrong_type(self, angles):
        with pytest.raises(TypeError, match="angles: expected an int or a 1-D array"):
            ParallelBeamCT(8, angles)

    @pytest.mark.parametrize("detectors", [0, -1])
    def test_detectors_not_positive(self, detectors):
        with pytest.raises(ValueError, match="detectors must be a positive int"):
            ParallelBeamCT(8, 4, detectors=detectors)

    def test_detectors_not_int(self):
        with pytest.raises(TypeError, match="detectors: expected a positive int"):
            ParallelBeamCT(8, 4, detectors=8.5)

    def test_circle_not_bool(self):
        with pytest.raises(TypeError, match="circle: expected a bool"):
            ParallelBeamCT(8, 4, circle="yes")

    @pytest.mark.parametrize("shape", [(1, 1, 8, 9), (1, 2, 8, 8), (8, 8), (1, 8, 8)])
    def test_forward_wrong_shape(self, shape):
        op = ParallelBeamCT(8, 4)
        with pytest.raises(ValueError, match=r"ParallelBeamCT.forward: x must have shape \(B, 1, 8, 8\)"):
            op(torch.zeros(shape))

    def test_adjoint_and_fbp_wrong_shape(self):
        op = ParallelBeamCT(8, 4)
        with pytest.raises(ValueError, match=r"ParallelBeamCT.adjoint: y must have shape \(B, 1, 4, 8\)"):
            op.adjoint(torch.zeros(1, 1, 8, 4))
        with pytest.raises(ValueError, match=r"ParallelBeamCT.fbp: y must have shape \(B, 1, 4, 8\)"):
            op.fbp(torch.zeros(1, 1, 5, 8))

    def test_unknown_filter_has_hint(self):
        op = ParallelBeamCT(8, 4)
        with pytest.raises(ValueError, match="filter must be one of .*did you mean 'hann'"):
            op.fbp(torch.zeros(1, 1, 4, 8), filter="han")

    @pytest.mark.parametrize("dtype", [torch.uint8, torch.complex64, torch.float16])
    def test_input_dtype(self, dtype):
        with pytest.raises(TypeError, match="expected a float32 or float64 tensor, got dtype"):
            ParallelBeamCT(8, 4)(torch.zeros(1, 1, 8, 8, dtype=dtype))
        with pytest.raises(TypeError, match="expected a float32 or float64 tensor, got dtype"):
            ParallelBeamCT(8, 4).fbp(torch.zeros(1, 1, 4, 8, dtype=dtype))

    def test_input_not_tensor(self):
        with pytest.raises(TypeError, match="x: expected a torch.Tensor"):
            ParallelBeamCT(8, 4)(np.zeros((1, 1, 8, 8)))


class TestAdjoint:
    @pytest.mark.parametrize(
        "kwargs",
        [
            dict(size=16, angles=7),
            dict(size=33, angles=[3.0, 47.0, 91.5, 170.0, 250.0, -20.0]),
            dict(size=24, angles=10, detectors=31, circle=False),
            dict(size=64, angles=60),
        ],
    )
    @pytest.mark.parametrize("symmetry", [False, True])
    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    def test_dot_product(self, kwargs, symmetry, dtype, dot_tol):
        op = ParallelBeamCT(**kwargs, symmetry=symmetry)
        assert op.symmetric is symmetry
        assert adjoint_test(op, dtype=dtype) <= dot_tol[dtype]

    @pytest.mark.parametrize("symmetry", [False, True])
    def test_gradcheck_forward_and_adjoint(self, symmetry):
        op = ParallelBeamCT(8, 5, symmetry=symmetry)
        x = torch.rand(2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(op, (x,))
        y = torch.rand(2, 1, 5, 8, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(op.adjoint, (y,))
        assert torch.autograd.gradgradcheck(op, (x,))

    def test_gradient_of_forward_is_adjoint(self):
        op = ParallelBeamCT(12, 6)
        x = torch.rand(2, 1, 12, 12, dtype=torch.float64, requires_grad=True)
        w = torch.randn(2, 1, 6, 12, dtype=torch.float64)
        (op(x) * w).sum().backward()
        torch.testing.assert_close(x.grad, op.adjoint(w))

    def test_matches_dense_matrix_transpose(self):
        op = ParallelBeamCT(6, 4)
        eye = torch.eye(36, dtype=torch.float64).reshape(36, 1, 6, 6)
        A = op(eye).reshape(36, -1).T  # columns are A e_j
        y = torch.randn(1, 1, 4, 6, dtype=torch.float64)
        torch.testing.assert_close(op.adjoint(y).reshape(-1), A.T @ y.reshape(-1))
        # the spectral norm by power iteration is the largest singular value squared
        assert abs(op.norm() - float(torch.linalg.matrix_norm(A, 2)) ** 2) < 1e-5 * op.norm()


class TestSymmetryPath:
    """The symmetric path (base angles in [0°, 45°] on four re-indexed copies) is the same operator."""

    @pytest.mark.parametrize(
        "kwargs",
        [
            dict(size=12, angles=6),  # even size: padded grid, end sample
            dict(size=15, angles=[0.0, 90.0, 180.0, 270.0, 45.0, -45.0, 135.5, 44.5, 30.0, 60.0, 120.0, 150.0]),
            dict(size=17, angles=12, detectors=20),
            dict(size=20, angles=16, detectors=19, circle=False),
            dict(size=16, angles=7),  # not closed under the symmetries: correct, only wasteful
            dict(size=10, angles=[10.0, 10.0, 190.0, 100.0]),  # the same ray twice: adjoint by index_add
        ],
    )
    def test_equals_plain_matrix(self, kwargs):
        plain, sym = ParallelBeamCT(**kwargs, symmetry=False), ParallelBeamCT(**kwargs, symmetry=True)
        x = torch.rand(3, 1, kwargs["size"], kwargs["size"], dtype=torch.float64)
        y = plain(x)
        torch.testing.assert_close(sym(x), y, rtol=0, atol=1e-12)
        w = torch.randn_like(y)
        torch.testing.assert_close(sym.adjoint(w), plain.adjoint(w), rtol=0, atol=1e-12)
        assert adjoint_test(sym) < 1e-12

    def test_duplicate_rays_use_index_add(self):
        assert not ParallelBeamCT(10, [10.0, 10.0, 100.0], symmetry=True)._select_injective
        assert ParallelBeamCT(10, 4)._select_injective

    def test_automatic_choice_and_storage(self):
        full = ParallelBeamCT(32, 60)
        assert full.symmetric  # 16 base angles 0, 3, ..., 45 for 60 angles
        plain = ParallelBeamCT(32, 60, symmetry=False)
        assert full.nnz < 0.35 * plain.nnz
        assert not ParallelBeamCT(32, 7).symmetric  # odd count: only the flip maps the set to itself
        rng = np.random.default_rng(0)
        assert not ParallelBeamCT(32, rng.uniform(0, 180, 20)).symmetric

    def test_symmetry_argument_type(self):
        with pytest.raises(TypeError, match="symmetry: expected a bool or None"):
            ParallelBeamCT(8, 4, symmetry="yes")


class TestGeometry:
    def test_matches_skimage_radon_on_phantom(self, phantom128, op128):
        y = op128(torch.from_numpy(phantom128)[None, None])[0, 0].numpy()
        ref = _skimage_radon(phantom128, np.linspace(0, 180, 180, endpoint=False))
        assert y.shape == ref.T.shape
        assert _rel(y, ref.T) < 1e-10

    @pytest.mark.parametrize("circle", [True, False])
    def test_matches_skimage_on_asymmetric_image_and_angles(self, circle):
        rng = np.random.default_rng(0)
        image = rng.random((21, 21))
        theta = [0.0, 13.0, 90.0, 137.5, 200.0, -45.0]
        y = ParallelBeamCT(21, theta, circle=circle)(torch.from_numpy(image)[None, None])[0, 0].numpy()
        assert _rel(y, _skimage_radon(image, theta, circle=circle).T) < 1e-10

    def test_orientation_of_off_centre_points(self):
        # detector offset t = x cos(theta) - y sin(theta), x = column - c, y = row - c, bin = t + n_d // 2
        n, c = 64, 32
        image = np.zeros((n, n))
        image[20, 45] = 1.0  # x = 13, y = -12
        theta = [0.0, 90.0, 45.0]
        y = ParallelBeamCT(n, theta)(torch.from_numpy(image)[None, None])[0, 0].numpy()
        assert int(y[0].argmax()) == 13 + c
        assert int(y[1].argmax()) == 12 + c
        assert int(y[2].argmax()) == round((13 + 12) / math.sqrt(2)) + c
        ref = _skimage_radon(image, theta)
        np.testing.assert_allclose(y, ref.T, atol=1e-12)
        # a flipped sinogram (either axis) would not match
        assert _rel(y[:, ::-1], ref.T) > 0.5 and _rel(y[::-1], ref.T) > 0.5


class TestFBP:
    def test_matches_skimage_iradon(self, phantom128, op128):
        from skimage.transform import iradon

        theta = np.linspace(0, 180, 180, endpoint=False)
        sino = _skimage_radon(phantom128, theta)
        y = torch.from_numpy(sino.T.copy())[None, None]
        for name in FBP_FILTERS:
            ours = op128.fbp(y, filter=name)[0, 0].numpy()
            assert _rel(ours, iradon(sino, theta, filter_name=name)) < 0.02, name

    def test_filtered_sinogram_matches_skimage_filter(self, op128):
        # skimage's filtering step, written out: pad to the square's diagonal, zero-pad to 512, multiply
        from skimage.transform.radon_transform import _get_fourier_filter

        sino = np.random.default_rng(1).random((128, 180))
        pad_before = math.ceil(math.sqrt(2) * 128) // 2 - 64
        padded = np.zeros((512, 180))
        padded[pad_before : pad_before + 128] = sino
        for name in ("ramp", "hann"):
            ref = np.real(np.fft.ifft(np.fft.fft(padded, axis=0) * _get_fourier_filter(512, name), axis=0))
            ref = ref[pad_before : pad_before + 128]
            ours = op128.filter_sinogram(torch.from_numpy(sino.T.copy())[None, None], name)[0, 0].numpy()
            np.testing.assert_allclose(ours, ref.T, atol=1e-12)

    def test_reconstructs_phantom_from_180_angles(self, phantom128, op128):
        x = torch.from_numpy(phantom128)[None, None]
        rec = op128.fbp(op128(x))
        assert float(psnr(rec.clamp(0, 1), x)) > 29.0
        torch.testing.assert_close(op128.init(op128(x)), rec)

    def test_circle_mask_and_circle_false(self):
        x = torch.rand(1, 1, 16, 16, dtype=torch.float64)
        rec = ParallelBeamCT(16, 30).fbp(ParallelBeamCT(16, 30)(x))
        assert float(rec[0, 0, 0, 0]) == 0.0 and float(rec[0, 0, 8, 8]) != 0.0
        full = ParallelBeamCT(16, 30, circle=False)
        assert float(full.fbp(full(x))[0, 0, 0, 0]) != 0.0


class TestSolveAndDevice:
    def test_solve_normal_by_cg(self):
        op = ParallelBeamCT(16, 12)
        b = op.adjoint(op(torch.rand(2, 1, 16, 16, dtype=torch.float64)))
        x = op.solve_normal(b, 0.5, tol=1e-10, max_iter=500)
        assert float(((op.gram(x) + 0.5 * x - b).norm() / b.norm())) < 1e-8

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_dtype_follows_input(self, dtype):
        op = ParallelBeamCT(10, 6)
        x = torch.rand(2, 1, 10, 10, dtype=dtype)
        y = op(x)
        assert y.dtype == dtype and op.adjoint(y).dtype == dtype and op.fbp(y).dtype == dtype

    def test_float32_agrees_with_float64(self):
        op = ParallelBeamCT(16, 9)
        x = torch.rand(2, 1, 16, 16, dtype=torch.float64)
        torch.testing.assert_close(op(x.float()), op(x).float(), rtol=1e-5, atol=1e-5)

    def test_module_cast_refreshes_cached_matrices(self):
        op = ParallelBeamCT(10, 6)
        x = torch.rand(1, 1, 10, 10, dtype=torch.float64)
        y64 = op(x)
        op.float()  # buffers become float32; the cached float64 matrices must be rebuilt from them
        assert all(b.dtype == torch.float32 for b in op.buffers() if b.is_floating_point())
        torch.testing.assert_close(op(x), y64, rtol=1e-6, atol=1e-6)
        assert op(x.float()).dtype == torch.float32

    def test_deepcopy_and_pickle_after_use(self):
        import copy
        import io

        op = ParallelBeamCT(16, 8)
        x = torch.rand(1, 1, 16, 16)
        y = op(x)  # fills the cache of sparse tensors, which cannot be deep-copied
        torch.testing.assert_close(copy.deepcopy(op)(x), y)
        buffer = io.BytesIO()
        torch.save(op, buffer)
        buffer.seek(0)
        torch.testing.assert_close(torch.load(buffer, weights_only=False)(x), y)

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    def test_cuda_matches_cpu(self):
        op = ParallelBeamCT(16, 9)
        x = torch.rand(2, 1, 16, 16)
        y = op.to("cuda")(x.cuda())
        assert y.device.type == "cuda"
        torch.testing.assert_close(y.cpu(), op.cpu()(x), rtol=1e-5, atol=1e-5)

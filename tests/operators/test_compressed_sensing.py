import numpy as np
import pytest
import torch

from proxlab.operators import BlockCompressedSensing, CompressedSensing, fit_qinit

DATA = "ISTA-Net_sampling_matrix"


class TestCompressedSensing:
    def test_gaussian_entries_and_seed(self):
        a, b = CompressedSensing(200, 300, seed=1), CompressedSensing(200, 300, seed=1)
        assert torch.equal(a.matrix, b.matrix)
        assert abs(float(a.matrix.var()) - 1 / 200) < 5e-4

    def test_custom_matrix_and_signal_shape(self):
        M = torch.arange(12.0).reshape(3, 4)
        op = CompressedSensing(matrix=M, signal_shape=(1, 2, 2))
        x = torch.ones(1, 1, 2, 2)
        torch.testing.assert_close(op(x), M.sum(1, keepdim=True).T)

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            ({"m": 0, "n": 5}, "m and n must be positive"),
            ({"matrix": torch.zeros(2, 3, 4)}, r"matrix must have shape \(m, n\)"),
            ({"matrix": torch.zeros(2, 6), "signal_shape": (1, 2, 2)}, "has 4 entries"),
        ],
    )
    def test_bad_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            CompressedSensing(**kwargs)

    def test_solve_normal_requires_positive_rho(self):
        with pytest.raises(ValueError, match="rho must be > 0"):
            CompressedSensing(3, 5).solve_normal(torch.zeros(1, 5), 0.0)


class TestBlockCompressedSensing:
    def test_istanet_measurement_counts(self):
        for pct, m in {1: 10, 4: 43, 10: 109, 25: 272, 30: 327, 40: 436, 50: 545}.items():
            assert BlockCompressedSensing(pct / 100).m == m

    def test_seeded_phi_has_orthonormal_rows(self):
        phi = BlockCompressedSensing(0.1, seed=3).phi.double()
        torch.testing.assert_close(phi @ phi.T, torch.eye(phi.shape[0], dtype=torch.float64), atol=1e-6, rtol=0)

    def test_blocks_are_row_major_tiles(self):
        op = BlockCompressedSensing(0.25, block=2)
        x = torch.arange(16.0).reshape(1, 1, 4, 4)
        blocks = op.to_blocks(x)
        assert blocks.shape == (1, 1, 2, 2, 4)
        torch.testing.assert_close(blocks[0, 0, 0, 1], torch.tensor([2.0, 3.0, 6.0, 7.0]))
        torch.testing.assert_close(op.from_blocks(blocks), x)

    def test_matches_istanet_column_loop_with_shared_phi(self, shared_data):
        # Reference: the loop over 33x33 tiles of ISTA-Net's img2col, then Phi @ col
        op = BlockCompressedSensing.from_mat(shared_data / DATA / "phi_0_25_1089.mat",
                                             shared_data / DATA / "Initialization_Matrix_25.mat", image_size=(70, 40))
        img = np.random.default_rng(0).random((70, 40))
        pad = np.zeros((99, 66))
        pad[:70, :40] = img
        cols = [pad[r : r + 33, c : c + 33].reshape(-1) for r in range(0, 99, 33) for c in range(0, 66, 33)]
        phi = op.phi.double().numpy()
        ref = np.stack(cols) @ phi.T
        ours = op(torch.from_numpy(img)[None, None]).reshape(-1, op.m).numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-12)
        # init uses Qinit per tile
        qinit = op.qinit.double().numpy()
        ref_init = np.stack(cols) @ phi.T @ qinit.T
        ours_init = op.to_blocks(torch.nn.functional.pad(op.init(op(torch.from_numpy(img)[None, None])), (0, 26, 0, 29)))
        np.testing.assert_allclose(ours_init.reshape(-1, 1089).numpy(), ref_init * _valid_mask(), atol=1e-10)

    def test_shared_phi_rows_orthonormal(self, shared_data):
        op = BlockCompressedSensing.from_mat(shared_data / DATA / "phi_0_10_1089.mat")
        assert op.m == 109 and abs(op.ratio - 0.1) < 1e-3
        assert abs(op.norm() - 1.0) < 1e-5

    def test_unpadded_size_must_be_multiple(self):
        with pytest.raises(ValueError, match="multiples of block=33"):
            BlockCompressedSensing(0.25)(torch.rand(1, 1, 40, 33))

    def test_resized_shares_phi(self):
        op = BlockCompressedSensing(0.1)
        other = op.resized((50, 50))
        assert other.phi.data_ptr() == op.phi.data_ptr()
        assert other(torch.rand(1, 1, 50, 50)).shape == (1, 1, 2, 2, op.m)

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            ({"ratio": 0.7}, r"ratio must be in \[0.01, 0.5\]"),
            ({"ratio": None}, "ratio must be given"),
            ({"phi": torch.zeros(10, 100)}, r"phi must have shape \(m, 1089\)"),
            ({"phi": torch.zeros(10, 1089), "qinit": torch.zeros(10, 1089)}, r"qinit must have shape \(1089, 10\)"),
            ({"block": 0}, "block must be a positive int"),
            ({"image_size": (0, 5)}, "image_size must be"),
        ],
    )
    def test_bad_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            BlockCompressedSensing(**kwargs)

    def test_fit_qinit_recovers_exact_inverse_on_subspace(self):
        g = torch.Generator().manual_seed(0)
        phi = BlockCompressedSensing(0.5, block=4).phi.double()
        basis = torch.randn(16, 8, generator=g, dtype=torch.float64)  # training blocks in an 8-D subspace
        blocks = (basis @ torch.randn(8, 200, generator=g, dtype=torch.float64)).T
        Q = fit_qinit(phi, blocks)
        assert Q.shape == (16, 8)
        torch.testing.assert_close((blocks @ phi.T) @ Q.T, blocks, atol=1e-8, rtol=1e-8)

    def test_fit_qinit_refuses_too_few_or_misshaped_blocks(self):
        phi = BlockCompressedSensing(0.5, block=4).phi.double()  # m = 8
        with pytest.raises(ValueError, match=r"blocks: expected at least 2·m = 16 blocks to fit Qinit \(m = 8 "
                                             r"measurements per block\), got 15"):
            fit_qinit(phi, torch.rand(15, 16, dtype=torch.float64))
        with pytest.raises(ValueError, match=r"blocks: expected \(N, 16\) flattened blocks for a Φ of shape "
                                             r"\(8, 16\), got \(40, 4, 4\)"):
            fit_qinit(phi, torch.rand(40, 4, 4, dtype=torch.float64))

    def test_missing_mat_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="no such .mat file"):
            BlockCompressedSensing.from_mat(tmp_path / "nope.mat")

    def test_wrong_variable_in_mat_file(self, tmp_path):
        import scipy.io as sio

        sio.savemat(tmp_path / "x.mat", {"other": np.zeros((2, 2))})
        with pytest.raises(ValueError, match=r"expected a variable named 'phi' or 'Phi', found \['other'\]"):
            BlockCompressedSensing.from_mat(tmp_path / "x.mat")


def _valid_mask():
    """1 for tile entries inside the 70x40 image, 0 for padding, in the (tiles, 1089) layout."""
    m = np.zeros((99, 66))
    m[:70, :40] = 1
    return np.stack([m[r : r + 33, c : c + 33].reshape(-1) for r in range(0, 99, 33) for c in range(0, 66, 33)])

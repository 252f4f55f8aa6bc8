import pytest
import torch

import proxlab.data as data


def _batch(n=2, c=3, h=10, w=12, dtype=torch.float32):
    return torch.arange(n * c * h * w, dtype=dtype).reshape(n, c, h, w) / (n * c * h * w)


class TestExtractPatches:
    def test_against_loops(self):
        x = _batch()
        p = data.extract_patches(x, (4, 5), stride=(3, 2))
        ref = torch.stack(
            [x[b, :, i : i + 4, j : j + 5] for b in range(2) for i in range(0, 7, 3) for j in range(0, 8, 2)]
        )
        assert p.shape == (2 * 3 * 4, 3, 4, 5)
        assert torch.equal(p, ref)

    def test_default_stride_tiles(self):
        x = _batch(1, 1, 8, 8)
        p = data.extract_patches(x, 4)
        assert p.shape == (4, 1, 4, 4)
        assert torch.equal(p[1], x[0, :, :4, 4:])

    def test_float64_and_gradcheck(self):
        x = _batch(1, 2, 5, 5, torch.float64).requires_grad_()
        assert data.extract_patches(x, 3, 1).dtype == torch.float64
        assert torch.autograd.gradcheck(lambda t: data.extract_patches(t, 3, 2), (x,))

    def test_errors(self):
        with pytest.raises(ValueError, match=r"images must have shape \(N, C, H, W\)"):
            data.extract_patches(torch.zeros(3, 8, 8), 4)
        with pytest.raises(TypeError, match="images: expected a torch.Tensor"):
            data.extract_patches([[0.0]], 4)
        with pytest.raises(ValueError, match=r"size \(9, 9\) is larger than the images \(8, 8\)"):
            data.extract_patches(torch.zeros(1, 1, 8, 8), 9)
        with pytest.raises(ValueError, match="stride must be positive"):
            data.extract_patches(torch.zeros(1, 1, 8, 8), 4, 0)


class TestBlocks:
    def test_padding_like_ista_net(self):
        x = torch.rand(2, 1, 40, 70)
        blocks = data.extract_blocks(x, 33)
        assert blocks.shape == (2 * 2 * 3, 1, 33, 33)
        # block (row 1, col 2) of image 1 holds x[1, :, 33:40, 66:70] and zeros elsewhere
        b = blocks[6 + 5]
        assert torch.equal(b[:, :7, :4], x[1, :, 33:, 66:])
        assert b[:, 7:].abs().sum() == 0 and b[:, :, 4:].abs().sum() == 0

    def test_roundtrip(self):
        x = torch.rand(3, 2, 50, 66)
        back = data.assemble_blocks(data.extract_blocks(x, 33), (50, 66), 33)
        assert torch.equal(back, x)
        square = torch.rand(1, 1, 99, 99)
        assert data.extract_blocks(square).shape == (9, 1, 33, 33)
        assert torch.equal(data.assemble_blocks(data.extract_blocks(square), 99), square)

    def test_assemble_gradcheck(self):
        b = torch.rand(4, 1, 3, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t: data.assemble_blocks(t, (5, 6), 3), (b,))

    def test_errors(self):
        with pytest.raises(ValueError, match="block must be >= 1"):
            data.extract_blocks(torch.zeros(1, 1, 8, 8), 0)
        with pytest.raises(ValueError, match=r"blocks must have shape \(N \* L, C, 33, 33\)"):
            data.assemble_blocks(torch.zeros(4, 1, 32, 32), 64)
        with pytest.raises(ValueError, match="holds 3 blocks, not a multiple of the 4 blocks"):
            data.assemble_blocks(torch.zeros(3, 1, 33, 33), 66)


class TestRandomPatches:
    def test_shape_and_content(self):
        x = _batch(3, 2, 20, 16)
        p = data.random_patches(x, 50, (5, 7), seed=3)
        assert p.shape == (50, 2, 5, 7)
        # every patch is a crop of some image: find it by brute force
        all_crops = data.extract_patches(x, (5, 7), stride=1)
        matches = (p[:, None] == all_crops[None]).flatten(2).all(-1).any(-1)
        assert bool(matches.all())

    def test_deterministic(self):
        x = torch.rand(4, 1, 16, 16)
        a = data.random_patches(x, 10, 8, seed=1)
        assert torch.equal(a, data.random_patches(x, 10, 8, seed=1))
        assert not torch.equal(a, data.random_patches(x, 10, 8, seed=2))

    def test_covers_positions_and_images(self):
        x = torch.arange(2 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
        p = data.random_patches(x, 2000, 2, seed=0)
        # top-left values identify (image, top, left): all 2 * 5 * 5 positions appear
        assert p[:, 0, 0, 0].unique().numel() == 50

    def test_list_of_sizes(self):
        imgs = [torch.rand(1, 1, 256, 256), torch.rand(1, 512, 512), torch.rand(1, 1, 40, 33)]
        p = data.random_patches(imgs, 30, 33, seed=0)
        assert p.shape == (30, 1, 33, 33)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"size \(9, 9\) is larger than image 0"):
            data.random_patches(torch.zeros(1, 1, 8, 8), 2, 9)
        with pytest.raises(ValueError, match="n must be >= 1"):
            data.random_patches(torch.zeros(1, 1, 8, 8), 0, 4)
        with pytest.raises(TypeError, match="images: expected a tensor"):
            data.random_patches([], 2, 4)
        with pytest.raises(ValueError, match=r"images\[1\] has 3 channels, images\[0\] has 1"):
            data.random_patches([torch.zeros(1, 8, 8), torch.zeros(3, 8, 8)], 2, 4)
        with pytest.raises(ValueError, match=r"images\[0\] must have shape \(1, C, H, W\)"):
            data.random_patches([torch.zeros(2, 1, 8, 8)], 2, 4)


class TestAugmentDihedral:
    def test_eight_distinct_elements(self):
        x = torch.arange(9.0).reshape(1, 1, 3, 3)
        outs = [data.augment_dihedral(x, k) for k in range(8)]
        assert len({tuple(o.flatten().tolist()) for o in outs}) == 8
        assert torch.equal(outs[0], x)
        assert torch.equal(outs[1], torch.rot90(x, 1, (-2, -1)))
        assert torch.equal(outs[4], x.flip(-1))

    @pytest.mark.parametrize("k", range(8))
    def test_inverse(self, k):
        x = torch.rand(2, 3, 5, 7)
        y = data.augment_dihedral(x, k)
        assert torch.equal(data.augment_dihedral(y, k, inverse=True), x)

    def test_per_sample_k(self):
        x = torch.rand(8, 1, 6, 6)
        k = torch.arange(8).flip(0)
        out = data.augment_dihedral(x, k)
        for i in range(8):
            assert torch.equal(out[i], data.augment_dihedral(x[i], int(k[i])))
        assert torch.equal(data.augment_dihedral(out, k, inverse=True), x)

    def test_non_square_odd_rotation(self):
        x = torch.rand(1, 1, 4, 6)
        assert data.augment_dihedral(x, 3).shape == (1, 1, 6, 4)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"k must be in 0..7, got 8"):
            data.augment_dihedral(torch.zeros(1, 1, 4, 4), 8)
        with pytest.raises(TypeError, match="k: expected an int"):
            data.augment_dihedral(torch.zeros(1, 1, 4, 4), 1.5)
        with pytest.raises(ValueError, match=r"k must hold values in 0..7"):
            data.augment_dihedral(torch.zeros(2, 1, 4, 4), torch.tensor([0, 9]))
        with pytest.raises(ValueError, match=r"integer tensor of shape \(2,\)"):
            data.augment_dihedral(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1, 2]))
        with pytest.raises(ValueError, match="needs square images"):
            data.augment_dihedral(torch.zeros(2, 1, 4, 6), torch.tensor([0, 1]))
        with pytest.raises(ValueError, match="at least 2 dims"):
            data.augment_dihedral(torch.zeros(4), 1)

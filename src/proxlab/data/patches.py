r"""Patches and blocks of image batches, and the 8 dihedral augmentations.

* :func:`extract_patches` -- all ``h x w`` patches at a stride (``F.unfold``, one op per batch).
* :func:`extract_blocks` / :func:`assemble_blocks` -- non-overlapping ``B x B`` blocks of block
  compressed sensing after zero padding to multiples of ``B`` at the bottom and right, as ISTA-Net
  does (Zhang & Ghanem, *ISTA-Net*, CVPR 2018; ``B = 33``), and back.
* :func:`random_patches` -- seeded random crops for training.
* :func:`augment_dihedral` -- the dihedral group :math:`D_4` of the square: 4 rotations x 2 flips.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .._checks import check_tensor
from ._common import as_size, check_int

__all__ = ["extract_patches", "extract_blocks", "assemble_blocks", "random_patches", "augment_dihedral"]


def _check_batch(name: str, images: object) -> torch.Tensor:
    check_tensor(name, images)
    if images.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W) (4 dims), got shape {tuple(images.shape)}")
    return images


def extract_patches(
    images: torch.Tensor, size: int | Sequence[int], stride: int | Sequence[int] | None = None
) -> torch.Tensor:
    r"""All patches of ``size`` (int or ``(h, w)``) at ``stride`` (default: ``size``, no overlap).

    ``(N, C, H, W) -> (N * L, C, h, w)`` with :math:`L = (\lfloor (H-h)/s_h \rfloor + 1)
    (\lfloor (W-w)/s_w \rfloor + 1)`, image-major, patches in row-major order of their top-left
    corners. Pixels beyond the last full patch are not covered.
    """
    _check_batch("images", images)
    h, w = as_size("size", size)
    sh, sw = (h, w) if stride is None else as_size("stride", stride)
    n, c, H, W = images.shape
    if h > H or w > W:
        raise ValueError(f"size {(h, w)} is larger than the images {(H, W)}")
    cols = F.unfold(images, kernel_size=(h, w), stride=(sh, sw))  # (N, C*h*w, L)
    return cols.transpose(1, 2).reshape(-1, c, h, w)


def extract_blocks(images: torch.Tensor, block: int = 33) -> torch.Tensor:
    r"""Non-overlapping ``block x block`` tiles after zero padding to multiples of ``block``.

    ``(N, C, H, W) -> (N * L, C, block, block)`` with :math:`L = \lceil H/B \rceil \lceil W/B \rceil`,
    row-major per image; padding is added at the bottom and the right (as ISTA-Net's
    ``imread_CS_py``). :func:`assemble_blocks` inverts it.
    """
    _check_batch("images", images)
    block = check_int("block", block, low=1)
    H, W = images.shape[-2:]
    ph, pw = (-H) % block, (-W) % block
    padded = F.pad(images, (0, pw, 0, ph)) if ph or pw else images
    return extract_patches(padded, block, block)


def assemble_blocks(blocks: torch.Tensor, size: int | Sequence[int], block: int = 33) -> torch.Tensor:
    r"""Inverse of :func:`extract_blocks`: ``(N * L, C, B, B) -> (N, C, H, W)``, padding cropped.

    ``size`` is the original ``(H, W)`` (or an int for a square).
    """
    _check_batch("blocks", blocks)
    block = check_int("block", block, low=1)
    H, W = as_size("size", size)
    if blocks.shape[-2:] != (block, block):
        raise ValueError(f"blocks must have shape (N * L, C, {block}, {block}), got shape {tuple(blocks.shape)}")
    nh, nw = -(-H // block), -(-W // block)
    if blocks.shape[0] % (nh * nw):
        raise ValueError(
            f"blocks holds {blocks.shape[0]} blocks, not a multiple of the {nh * nw} blocks of one {H}x{W} image"
        )
    n, c = blocks.shape[0] // (nh * nw), blocks.shape[1]
    cols = blocks.reshape(n, nh * nw, c * block * block).transpose(1, 2)
    out = F.fold(cols, output_size=(nh * block, nw * block), kernel_size=block, stride=block)
    return out[..., :H, :W]


def random_patches(
    images: torch.Tensor | Sequence[torch.Tensor], n: int, size: int | Sequence[int], seed: int = 0
) -> torch.Tensor:
    r"""``n`` random ``size`` crops ``(n, C, h, w)``, deterministic from ``seed``.

    Each crop picks an image uniformly, then a top-left corner uniformly among the valid ones.
    ``images`` is a batch ``(N, C, H, W)`` or a sequence of ``(1, C, H_i, W_i)`` / ``(C, H_i, W_i)``
    tensors of different sizes (e.g. :func:`load_set11`'s images) with the same ``C``. Crops are
    gathered by one indexing op per image (no loop over crops). Random numbers come from a CPU
    generator, so results do not depend on the device.
    """
    n = check_int("n", n, low=1)
    seed = check_int("seed", seed, low=0)
    h, w = as_size("size", size)
    if isinstance(images, torch.Tensor):
        _check_batch("images", images)
        imgs = [images]
        counts = [images.shape[0]]
    else:
        if not isinstance(images, Sequence) or not images:
            raise TypeError(
                f"images: expected a tensor (N, C, H, W) or a non-empty sequence of tensors, got {images!r}"
            )
        imgs = []
        for i, im in enumerate(images):
            check_tensor(f"images[{i}]", im)
            if im.ndim == 3:
                im = im.unsqueeze(0)
            if im.ndim != 4 or im.shape[0] != 1:
                raise ValueError(f"images[{i}] must have shape (1, C, H, W) or (C, H, W), got shape {tuple(im.shape)}")
            if imgs and im.shape[1] != imgs[0].shape[1]:
                raise ValueError(f"images[{i}] has {im.shape[1]} channels, images[0] has {imgs[0].shape[1]}")
            imgs.append(im)
        counts = [1] * len(imgs)
    for i, im in enumerate(imgs):
        if im.shape[-2] < h or im.shape[-1] < w:
            raise ValueError(f"size {(h, w)} is larger than image {i} of size {tuple(im.shape[-2:])}")
    g = torch.Generator().manual_seed(seed)
    total = sum(counts)
    which = torch.randint(total, (n,), generator=g)
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    # Map the flat image index to (group, row within group) once; groups are the list entries.
    offsets = torch.tensor([0] + counts).cumsum(0)
    group = torch.bucketize(which, offsets[1:], right=True)
    c = imgs[0].shape[1]
    out = torch.empty(n, c, h, w, dtype=imgs[0].dtype, device=imgs[0].device)
    ar_h, ar_w = torch.arange(h), torch.arange(w)
    for gi, im in enumerate(imgs):
        sel = (group == gi).nonzero().squeeze(1)
        if sel.numel() == 0:
            continue
        H, W = im.shape[-2:]
        top = (u[sel, 0] * (H - h + 1)).long().clamp_(max=H - h)
        left = (u[sel, 1] * (W - w + 1)).long().clamp_(max=W - w)
        row = (which[sel] - offsets[gi]).view(-1, 1, 1)
        rr = (top.view(-1, 1) + ar_h).view(-1, h, 1)
        cc = (left.view(-1, 1) + ar_w).view(-1, 1, w)
        dev = im.device
        crops = im[row.to(dev), :, rr.to(dev), cc.to(dev)]  # advanced dims first: (k, h, w, C)
        out[sel.to(out.device)] = crops.permute(0, 3, 1, 2)
    return out


def augment_dihedral(x: torch.Tensor, k: int | torch.Tensor, inverse: bool = False) -> torch.Tensor:
    r"""Element ``k`` of the dihedral group :math:`D_4` applied to ``x (..., H, W)``.

    ``k = r + 4 f`` with ``r in {0, 1, 2, 3}``, ``f in {0, 1}``: rotate by :math:`90° r`
    counter-clockwise (``torch.rot90`` over the last two dims), then flip left-right if ``f = 1``.
    ``k = 0`` is the identity. ``inverse=True`` applies the inverse element (undo: flip, then rotate
    by :math:`-90° r`), so ``augment_dihedral(augment_dihedral(x, k), k, inverse=True) == x``.

    ``k`` is an int, or an int tensor of shape ``(B,)`` giving one element per sample of a batch
    ``x (B, ..., H, W)``; a per-sample ``k`` with odd rotations needs square images. One op per group
    element (8 at most), not per sample.
    """
    check_tensor("x", x)
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dims (..., H, W), got shape {tuple(x.shape)}")
    if isinstance(k, torch.Tensor):
        if k.ndim != 1 or k.shape[0] != x.shape[0] or k.dtype.is_floating_point or k.is_complex():
            raise ValueError(
                f"k must be an int or an integer tensor of shape ({x.shape[0]},), "
                f"got {k.dtype} of shape {tuple(k.shape)}"
            )
        if bool(((k < 0) | (k > 7)).any()):
            raise ValueError(f"k must hold values in 0..7, got {k.tolist()}")
        if x.shape[-1] != x.shape[-2] and bool((k % 2 == 1).any()):
            raise ValueError(f"a per-sample k with odd rotations needs square images, got size {tuple(x.shape[-2:])}")
        out = torch.empty_like(x)
        kk = k.to(x.device)
        for value in torch.unique(k).tolist():
            mask = kk == value
            out[mask] = augment_dihedral(x[mask], int(value), inverse)
        return out
    k = check_int("k", k, low=0)
    if k > 7:
        raise ValueError(f"k must be in 0..7, got {k}")
    r, f = k % 4, k // 4
    if inverse:
        if f:
            x = torch.flip(x, dims=(-1,))
        return torch.rot90(x, -r, dims=(-2, -1)) if r else x
    if r:
        x = torch.rot90(x, r, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if f else x

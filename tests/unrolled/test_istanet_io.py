"""istanet_from_pytorch: ISTA-Net-PyTorch's state_dict layout against a transcription of the authors' forward pass.

The reference functions below restate the authors' ``BasicBlock.forward`` (TEST_MRI_CS_ISTA_Net_plus.py and
TEST_CS_ISTA_Net(_plus).py) in plain torch on random weights saved the way their scripts save them; the loaded
proxlab network must give the same output.
"""

import pytest
import torch
from torch.nn import functional as F

from proxlab.operators import MRI, BlockCompressedSensing, Denoising
from proxlab.unrolled import ISTANet, ISTANetProx, Unrolled, istanet_from_pytorch


def _released_state(phases: int, channels: int, plus: bool, seed: int = 0, prefix: str = "module.") -> dict:
    g = torch.Generator().manual_seed(seed)
    conv = lambda o, i: 0.2 * torch.randn(o, i, 3, 3, generator=g, dtype=torch.float64)  # noqa: E731
    state = {}
    for k in range(phases):
        p = f"{prefix}fcs.{k}."
        state[p + "lambda_step"] = torch.tensor([0.3 + 0.2 * k], dtype=torch.float64)
        state[p + "soft_thr"] = torch.tensor([0.01 + 0.005 * k], dtype=torch.float64)
        if plus:
            state[p + "conv_D"] = conv(channels, 1)
            state[p + "conv1_forward"], state[p + "conv2_forward"] = conv(channels, channels), conv(channels, channels)
            state[p + "conv1_backward"], state[p + "conv2_backward"] = conv(channels, channels), conv(channels, channels)
            state[p + "conv_G"] = conv(1, channels)
        else:
            state[p + "conv1_forward"], state[p + "conv2_forward"] = conv(channels, 1), conv(channels, channels)
            state[p + "conv1_backward"], state[p + "conv2_backward"] = conv(channels, channels), conv(1, channels)
    return state


def _authors_phase(s: dict, k: int, x_input: torch.Tensor, plus: bool) -> torch.Tensor:
    w = lambda n: s[f"module.fcs.{k}.{n}"]  # noqa: E731
    if plus:
        x_D = F.conv2d(x_input, w("conv_D"), padding=1)
        x = F.relu(F.conv2d(x_D, w("conv1_forward"), padding=1))
    else:
        x = F.relu(F.conv2d(x_input, w("conv1_forward"), padding=1))
    x_forward = F.conv2d(x, w("conv2_forward"), padding=1)
    x = torch.mul(torch.sign(x_forward), F.relu(torch.abs(x_forward) - w("soft_thr")))
    x = F.relu(F.conv2d(x, w("conv1_backward"), padding=1))
    x_backward = F.conv2d(x, w("conv2_backward"), padding=1)
    return x_input + F.conv2d(x_backward, w("conv_G"), padding=1) if plus else x_backward


def _authors_mri(s: dict, phases: int, mask: torch.Tensor, image: torch.Tensor, plus: bool) -> torch.Tensor:
    """ISTANetplus.forward of TEST_MRI_CS_ISTA_Net_plus.py with FFT_Mask_ForBack (unnormalised fft2 / ifft2)."""
    fft_forback = lambda x: torch.real(torch.fft.ifft2(torch.fft.fft2(x) * mask))  # noqa: E731
    PhiTb = fft_forback(image)
    x = PhiTb
    for k in range(phases):
        lam = s[f"module.fcs.{k}.lambda_step"]
        x = x - lam * fft_forback(x) + lam * PhiTb
        x = _authors_phase(s, k, x, plus)
    return x


def _authors_block_cs(s: dict, phases: int, Phi: torch.Tensor, Qinit: torch.Tensor, Phix: torch.Tensor,
                      plus: bool) -> torch.Tensor:
    """ISTANet(plus).forward of TEST_CS_ISTA_Net(_plus).py on rows of 1089-pixel blocks."""
    PhiTPhi, PhiTb = Phi.t() @ Phi, Phix @ Phi
    x = Phix @ Qinit.t()
    for k in range(phases):
        lam = s[f"module.fcs.{k}.lambda_step"]
        x = x - lam * (x @ PhiTPhi) + lam * PhiTb
        x = _authors_phase(s, k, x.view(-1, 1, 33, 33), plus).view(-1, 1089)
    return x


@pytest.mark.parametrize("plus,negative", [(True, False), (False, False), (True, True)])
def test_mri_network_equals_the_authors_forward(tmp_path, plus, negative):
    """``negative``: one threshold below zero (the authors learn it unconstrained; their 30 % net has one)."""
    torch.manual_seed(0)
    A = MRI.radial(32, 0.3).to(torch.float64)
    state = _released_state(3, 6, plus)
    if negative:  # the authors learn both unconstrained; their released nets have a negative threshold and step
        state["module.fcs.2.soft_thr"] = torch.tensor([-0.02], dtype=torch.float64)
        state["module.fcs.1.lambda_step"] = torch.tensor([-0.1], dtype=torch.float64)
    path = tmp_path / "net_params_200.pkl"
    torch.save(state, path)
    net = istanet_from_pytorch(path, A, dtype=torch.float64)
    assert isinstance(net, Unrolled) and net.stages == 3
    assert all(p.threshold_param == ("free" if negative else "softplus") for p in net.proxes)
    assert net.step == ("pgd-free" if negative else "pgd")
    x = torch.rand(2, 1, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        ours = net(A(x))
    theirs = _authors_mri(state, 3, A.mask.to(torch.float64), x, plus)
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=1e-12, rtol=0), float((ours - theirs).abs().max())


@pytest.mark.parametrize("plus,negative", [(True, False), (False, False), (False, True)])
def test_block_cs_network_equals_the_authors_forward(plus, negative):
    g = torch.Generator().manual_seed(1)
    Phi = torch.linalg.qr(torch.randn(1089, 272, generator=g, dtype=torch.float64))[0].t().contiguous()
    Qinit = torch.randn(1089, 272, generator=g, dtype=torch.float64) * 0.05
    Phi, Qinit = Phi.float().double(), Qinit.float().double()  # the operator keeps float32 buffers: make them exact
    A = BlockCompressedSensing(None, phi=Phi, qinit=Qinit)
    state = _released_state(2, 4, plus, seed=2)
    if negative:
        state["module.fcs.0.soft_thr"] = torch.tensor([-0.03], dtype=torch.float64)
        state["module.fcs.1.lambda_step"] = torch.tensor([-0.2], dtype=torch.float64)
    net = istanet_from_pytorch(dict(state), A, dtype=torch.float64)
    assert isinstance(net, ISTANet) and net.plus is plus
    x = torch.rand(1, 1, 66, 33, dtype=torch.float64, generator=g)
    blocks = torch.stack([x[0, 0, :33].reshape(-1), x[0, 0, 33:].reshape(-1)])  # row-major blocks, top then bottom
    y = A.resized((66, 33))(x)
    with torch.no_grad():
        ours = net(y)
    theirs = _authors_block_cs(state, 2, Phi, Qinit, blocks @ Phi.t(), plus)
    assert torch.allclose(ours[0, 0, :33].reshape(-1), theirs[0], atol=1e-12, rtol=0)
    assert torch.allclose(ours[0, 0, 33:].reshape(-1), theirs[1], atol=1e-12, rtol=0)


def test_bad_files_are_refused_with_what_was_expected(tmp_path):
    A = MRI.radial(16, 0.3)
    with pytest.raises(FileNotFoundError, match="path: no file"):
        istanet_from_pytorch(tmp_path / "missing.pkl", A)
    with pytest.raises(ValueError, match="fcs.0.lambda_step"):
        istanet_from_pytorch({"conv.weight": torch.zeros(1)}, A)
    state = _released_state(2, 4, True)
    del state["module.fcs.1.conv_G"]
    with pytest.raises(ValueError, match="missing module.fcs.1.conv_G|missing fcs.1.conv_G"):
        istanet_from_pytorch(state, A)
    state = _released_state(2, 4, True)
    state["module.fcs.0.lambda_step"] = torch.tensor([float("nan")])
    with pytest.raises(ValueError, match="lambda_step must be one finite number"):
        istanet_from_pytorch(state, A)
    with pytest.raises(ValueError, match="threshold_param must be 'softplus' or 'free'"):
        ISTANetProx(4, threshold_param="relu")
    state = _released_state(2, 4, True)
    state["module.fcs.1.conv_G"] = torch.zeros(1, 5, 3, 3)
    with pytest.raises(ValueError, match=r"conv_G has shape \(1, 5, 3, 3\)"):
        istanet_from_pytorch(state, A)
    with pytest.raises(TypeError, match="operator must be an MRI or a BlockCompressedSensing"):
        istanet_from_pytorch(_released_state(1, 4, True), Denoising())
    torch.save([1, 2], tmp_path / "list.pkl")
    with pytest.raises(ValueError, match="holds a list"):
        istanet_from_pytorch(tmp_path / "list.pkl", A)


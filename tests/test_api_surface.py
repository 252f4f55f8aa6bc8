"""Public names that must not disappear, and a light ``import proxlab``."""

import subprocess
import sys

import pytest

import proxlab

PUBLIC = {
    "proxlab.operators": ["LinearOperator", "adjoint_test", "Denoising", "Inpainting", "GaussianBlur", "Convolution",
                          "CompressedSensing", "BlockCompressedSensing", "MRI", "ParallelBeamCT", "GaussianNoise",
                          "Measurement", "conjugate_gradient"],
    "proxlab.priors.classic": ["L1", "soft_threshold", "Box", "project_box", "TV", "prox_tv", "total_variation",
                               "WaveletTransform", "WaveletL1", "prox_wavelet_l1"],
    "proxlab.solvers": ["solve", "SolveResult", "pgd", "ista", "fista", "admm", "hqs", "cg", "pgd_step", "fista_step",
                        "admm_step", "hqs_step"],
    "proxlab.metrics": ["psnr", "ssim", "mse", "nmse"],
    "proxlab.data": ["mnist5k", "skimage_image", "lfw_faces", "shepp_logan", "random_ellipses", "read_idx",
                     "load_idx_images", "load_image", "ImageFolder", "load_set11", "extract_patches", "extract_blocks",
                     "MeasurementPairs"],
    "proxlab.experiments": ["make_task", "TASKS", "CLASSIC_METHODS", "reconstruct"],
}


@pytest.mark.parametrize("module", list(PUBLIC))
def test_public_names_exist(module):
    import importlib

    mod = importlib.import_module(module)
    missing = [n for n in PUBLIC[module] if getattr(mod, n, None) is None]
    assert not missing, f"{module} lost {missing}"


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, proxlab, proxlab.operators, proxlab.solvers, proxlab.data, proxlab.priors.classic;"
        "print(','.join(m for m in ('matplotlib', 'skimage', 'scipy', 'mlxtend', 'PIL', 'h5py') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import proxlab loaded {out}"


def test_version():
    assert proxlab.__version__.count(".") == 2

import os
from pathlib import Path

import pytest
import torch

# Two cores: parallel intra-op threads distort timings and make runs noisy. One thread is the rule;
# PROXLAB_TEST_THREADS=2 runs the suite on two (results must not depend on it).
torch.set_num_threads(int(os.environ.get("PROXLAB_TEST_THREADS", "1")))

SHARED_DATA = Path(os.environ.get("PROXLAB_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Reference data beside the repository (``../shared/data``); tests that need it skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def dot_tol():
    """Dot-test tolerance by dtype: float64 1e-10, float32 1e-5 (the foundation issue's bar)."""
    return {torch.float64: 1e-10, torch.float32: 1e-5}


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _import_benchmark(stem: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(stem, BENCHMARKS / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def load_benchmark():
    """``load_benchmark("stem")`` imports ``benchmarks/stem.py`` as a module (the scripts are not a package)."""
    return _import_benchmark

import importlib.util

import numpy as np
import pytest

import featlib as fl

HAVE_CVXPY = importlib.util.find_spec("cvxpy") is not None
HAVE_TORCH = importlib.util.find_spec("torch") is not None

needs_cvxpy = pytest.mark.skipif(not HAVE_CVXPY, reason="cvxpy not installed (pip install 'featlib[sdp]')")
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed (pip install 'featlib[torch]')")
HAVE_CUDA = HAVE_TORCH and __import__("torch").cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAVE_CUDA, reason="no CUDA device")


def run_under_address_limit(code: str, gib: float, timeout: int = 600) -> str:
    """Run ``code`` in a fresh Python with its address space capped at ``gib`` GiB (RLIMIT_AS) and two
    BLAS threads; assert it exits cleanly and return its stdout.  Memory-ceiling tests use it: a p x p
    array that the code must never form would exceed the cap and fail the run."""
    import subprocess
    import sys

    cap = int(gib * 2**30)
    limit = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))\n"
    env = {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", limit + code], capture_output=True, text=True, env=env,
                         timeout=timeout)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def target(p, r, seed=0, **kw):
    return fl.datasets.random_feature_matrix(p, r, seed=seed, **kw)


from hypothesis import settings  # noqa: E402

# Reproducible property tests in CI (CI=true); random exploration locally.
settings.register_profile("ci", derandomize=True, deadline=None)
import os  # noqa: E402

if os.environ.get("CI"):
    settings.load_profile("ci")


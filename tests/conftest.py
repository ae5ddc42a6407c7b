import importlib.util
import os

# before numpy is imported: idle BLAS/OpenMP threads sleep instead of spinning, here and in the chapter
# kernels nbval and papermill start (they inherit this environment); on a busy 2-core machine spinning pools
# made the RFM chapter 4.5x slower (featlib._blas.IDLE_THREADS_SLEEP, which the assertion below keeps equal)
_IDLE = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}
for _key, _value in _IDLE.items():
    os.environ.setdefault(_key, _value)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import featlib as fl  # noqa: E402
from featlib._blas import IDLE_THREADS_SLEEP  # noqa: E402

assert _IDLE == IDLE_THREADS_SLEEP, "tests/conftest.py's copy of featlib._blas.IDLE_THREADS_SLEEP is stale"

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


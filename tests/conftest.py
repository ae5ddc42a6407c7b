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


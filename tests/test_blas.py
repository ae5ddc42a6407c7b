"""featlib._blas: numpy's bundled OpenBLAS at one thread while the exact solver runs, restored after."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import featlib as fl
from featlib import _blas


def _numpy_pool_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas" and "numpy" in i["filepath"]]


def test_numpy_pool_is_limited_inside_and_restored_after(monkeypatch):
    if _blas._numpy_own_blas() is None:
        pytest.skip("numpy shares its BLAS with scipy here (e.g. conda): nothing is limited")
    before = _numpy_pool_threads()
    with _blas.numpy_blas_single_thread():
        assert _numpy_pool_threads() == [1] * len(before)
    assert _numpy_pool_threads() == before
    seen = []
    real = _blas.numpy_blas_single_thread

    def spy():
        seen.append(True)
        return real()

    monkeypatch.setattr("featlib.solvers.exact.numpy_blas_single_thread", spy)
    phi = fl.datasets.random_feature_matrix(6, 3, seed=0)
    assert fl.solve(fl.teach(phi, "gaussian", seed=0), "exact").identified and seen  # the dense path uses it
    assert _numpy_pool_threads() == before


def test_without_a_separate_numpy_blas_nothing_changes(monkeypatch):
    monkeypatch.setattr(_blas, "_numpy_own_blas", lambda: None)
    before = [i["num_threads"] for i in threadpool_info()]
    with _blas.numpy_blas_single_thread():
        assert [i["num_threads"] for i in threadpool_info()] == before
        x = np.linalg.eigvalsh(np.eye(3))
    assert np.allclose(x, 1.0)

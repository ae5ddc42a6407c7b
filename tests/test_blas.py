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


def test_idle_threads_sleep_settings_reach_the_book_kernels_and_keep_a_users_choice(monkeypatch):
    # the settings: added where unset, a user's own value kept
    env = _blas.idle_threads_sleep_env({"PATH": "/bin", "OMP_WAIT_POLICY": "ACTIVE"})
    assert env["OMP_WAIT_POLICY"] == "ACTIVE" and env["OPENBLAS_THREAD_TIMEOUT"] == "4" and env["PATH"] == "/bin"
    assert set(_blas.IDLE_THREADS_SLEEP) == {"OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT"}
    # the book build hands them to jupyter-book, whose chapter kernels inherit them
    import importlib.util
    import pathlib
    import subprocess

    spec = importlib.util.spec_from_file_location("book_build", pathlib.Path(__file__).parents[1] / "book" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    seen = {}

    def fake_run(cmd, **kw):
        seen.update(kw)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(build, "fetch_mathjax", lambda: None)
    monkeypatch.setattr(build.subprocess, "run", fake_run)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert build.main([]) == 0
    assert seen["env"]["OMP_WAIT_POLICY"] == "PASSIVE" and seen["env"]["OPENBLAS_THREAD_TIMEOUT"] == "4"
    # and the test run's kernels (nbval, papermill) inherit them from this process (tests/conftest.py)
    import os

    assert os.environ["OPENBLAS_THREAD_TIMEOUT"] == "4"

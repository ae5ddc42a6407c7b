"""Bad input gets a clear exception: type and message are part of the interface."""
import builtins
import sys

import numpy as np
import pytest

import featlib as fl
from conftest import target


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (np.ones((3, 4)), fl.ShapeError, r"square.*\(3, 4\)"),
        (np.ones(3), fl.ShapeError, "square"),
        (np.array([[1.0, 2.0], [0.0, 1.0]]), fl.NotSymmetricError, "symmetric"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), fl.NonFiniteError, "NaN"),
        (np.array([[1.0, np.inf], [np.inf, 1.0]]), fl.NonFiniteError, "finite"),
        (np.diag([1.0, -0.5]), fl.NotPSDError, "positive semi-definite.*-0.5"),
        (np.zeros((3, 3)), fl.NotPSDError, "zero matrix"),
    ],
)
def test_bad_feature_matrices(bad, exc, match):
    with pytest.raises(exc, match=match):
        fl.Agent(bad)
    with pytest.raises(exc, match=match):
        fl.teach(bad, "sparse")
    assert issubclass(exc, ValueError) and issubclass(exc, fl.FeatlibError)


def test_psd_tolerance_accepts_rounding():
    phi = target(5, 2)
    fl.Agent(phi + 1e-14 * np.eye(5) - 2e-14 * np.eye(5))  # tiny negative eigenvalues: fine


def test_large_psd_check_by_cholesky():
    """Above CHOLESKY_PSD_MIN rows the check is a shifted Cholesky: same verdicts, same messages."""
    from featlib import _checks

    p = _checks.CHOLESKY_PSD_MIN + 60
    rng = np.random.default_rng(0)
    D = rng.standard_normal((40, p))
    phi = D.T @ D  # rank 40: many eigenvalues zero up to rounding, still accepted
    agent = fl.Agent(phi)
    assert np.isclose(agent._norm, np.linalg.eigvalsh(phi)[-1], rtol=1e-10)
    bad = phi - 1e-3 * np.max(np.linalg.eigvalsh(phi)) * np.outer(np.ones(p), np.ones(p)) / p
    with pytest.raises(fl.NotPSDError, match="smallest eigenvalue is -"):
        fl.Agent(bad)
    with pytest.raises(fl.NotPSDError, match="zero matrix"):
        fl.Agent(np.zeros((p, p)))


def test_unknown_methods_list_valid_ones():
    phi = target(3, 3)
    with pytest.raises(fl.UnknownMethodError, match="'eigen', 'compact', 'sparse', 'gaussian', 'sparse-sampled'"):
        fl.teach(phi, "eigenvalue")
    fb = fl.teach(phi, "sparse")
    with pytest.raises(fl.UnknownMethodError, match="'auto', 'exact', 'sdp', 'gd'"):
        fl.solve(fb, "cvx")
    with pytest.raises(TypeError, match="valid options are: rank, rtol, storage"):
        fl.teach(phi, "eigen", mu=0.3)
    with pytest.raises(fl.UnknownMethodError, match="storage"):
        fl.teach(phi, "eigen", storage="csr")


def test_mismatched_dimensions():
    phi = target(4, 4)
    with pytest.raises(fl.ShapeError, match=r"shape \(4,\)"):
        fl.teach(phi, "gaussian", reference=np.ones(5))
    with pytest.raises(ValueError, match="out of range"):
        fl.teach(phi, "sparse", reference=7)
    fb = fl.teach(phi, "sparse")
    with pytest.raises(fl.ShapeError, match="4 x 4"):
        fb.residuals(np.eye(3))
    with pytest.raises(fl.ShapeError, match="p = 4 and p = 3"):
        fb + fl.teach(target(3, 3), "sparse")
    with pytest.raises(fl.ShapeError, match=r"p = 4; got shape \(3,\)"):
        fl.Agent(phi).distance(np.ones(3), np.ones(3))
    with pytest.raises(fl.ShapeError, match="same shape"):
        fl.pcc(np.eye(3), np.eye(4))


def test_teacher_argument_errors():
    phi = target(4, 2)
    with pytest.raises(ValueError, match="fixed by the theorem"):
        fl.teach(phi, "eigen", n=5)
    with pytest.raises(TypeError, match="needs mu"):
        fl.teach(phi, "sparse-sampled", n=5)
    with pytest.raises(ValueError, match=r"mu must lie in \[0, 1\)"):
        fl.teach(phi, "sparse-sampled", n=5, mu=1.0)
    with pytest.raises(TypeError, match="pass s and not mu"):
        fl.teach(phi, "sparse-sampled", n=5, sampler="exact", mu=0.5, s=2)
    with pytest.raises(TypeError, match="pass s and not mu"):
        fl.teach(phi, "sparse-sampled", n=5, sampler="exact")
    with pytest.raises(fl.UnknownMethodError, match="'bernoulli', 'exact'"):
        fl.teach(phi, "sparse-sampled", n=5, mu=0.5, sampler="uniform")
    with pytest.raises(ValueError, match="cannot exceed"):
        fl.teach(phi, "eigen", rank=9)
    with pytest.raises(TypeError, match="PairFeedback"):
        fl.solve(np.ones((3, 4)))


def _hide(monkeypatch, name):
    real_import = builtins.__import__

    def fake_import(mod, *args, **kwargs):
        if mod == name or mod.startswith(name + "."):
            raise ImportError(f"No module named {name!r}")
        return real_import(mod, *args, **kwargs)

    for key in list(sys.modules):
        if key == name or key.startswith(name + "."):
            monkeypatch.delitem(sys.modules, key)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    import importlib

    real_import_module = importlib.import_module

    def fake_import_module(mod, *args, **kwargs):
        if mod == name or mod.startswith(name + "."):
            raise ImportError(f"No module named {name!r}")
        return real_import_module(mod, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fake_import_module)


def test_missing_cvxpy_names_the_extra(monkeypatch):
    fb = fl.teach(target(3, 3), "sparse")
    _hide(monkeypatch, "cvxpy")
    with pytest.raises(fl.MissingDependencyError, match=r"pip install 'featlib\[sdp\]'"):
        fl.solve(fb, "sdp")


def test_missing_torch_names_the_extra(monkeypatch):
    fb = fl.teach(target(3, 3), "sparse")
    _hide(monkeypatch, "torch")
    with pytest.raises(fl.MissingDependencyError, match=r"pip install 'featlib\[torch\]'") as info:
        fl.solve(fb, "gd")
    assert isinstance(info.value, ImportError)


def test_exact_refuses_huge_dense_feedback(monkeypatch):
    from featlib.solvers import exact

    monkeypatch.setattr(exact, "DENSE_MAX_ENTRIES", 100)
    fb = fl.teach(target(6, 6), "gaussian", seed=0)
    with pytest.raises(fl.FeedbackError, match="too many for the dense exact path"):
        fl.solve(fb, "exact")


def test_exact_refuses_large_unidentified_sparse_feedback_quickly():
    # p = 200: 20,100 unknowns, beyond the Lanczos limit; 300 sampled pairs cannot identify Phi*
    phi = fl.datasets.random_dictionary(10, 200, seed=0)
    phi = phi.T @ phi
    fb = fl.teach(phi, "sparse-sampled", n=300, mu=0.99, s=3, seed=0)
    with pytest.raises(fl.FeedbackError, match="method='gd'"):
        fl.solve(fb, "exact")

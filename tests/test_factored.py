"""Feature matrices held as factors (featlib.Factored): exact metrics and eigen recovery without Phi*."""
import numpy as np
import pytest

import featlib as fl
from featlib import factored
from conftest import run_under_address_limit


@pytest.fixture
def dicts():
    rng = np.random.default_rng(0)
    D = fl.datasets.random_dictionary(12, 80, seed=0)
    return D, D + 0.05 * rng.standard_normal(D.shape), rng.standard_normal((15, 80))


def test_factored_metrics_equal_the_dense_ones(dicts):
    D, E, F = dicts
    A, B, C = D.T @ D, E.T @ E, F.T @ F
    for (x, y), (X, Y) in [((D, E), (A, B)), ((D, F), (A, C)), ((F, E), (C, B))]:
        fx, fy = fl.Factored(x), fl.Factored(y)
        for a, b in [(fx, fy), (fx, Y), (X, fy)]:  # factored on either side, or both
            assert fl.pcc(a, b) == pytest.approx(fl.pcc(X, Y), abs=1e-13)
            assert fl.relative_error(a, b) == pytest.approx(fl.relative_error(X, Y), abs=1e-13)
    assert fl.relative_error(fl.Factored(3 * D), fl.Factored(D)) < 1e-14  # scale-free, exact
    assert fl.pcc(fl.Factored(D), fl.Factored(-2 * D)) == pytest.approx(1.0)  # -2D gives 4 D^T D


def test_factored_refuses_what_it_cannot_be():
    with pytest.raises(fl.ShapeError):
        fl.Factored(np.ones(3))
    with pytest.raises(fl.FeatlibError, match="zero"):
        fl.Factored(np.zeros((2, 3)))
    with pytest.raises(fl.NonFiniteError):
        fl.Factored(np.full((2, 3), np.nan))
    big = fl.Factored(np.ones((1, 20000)))
    with pytest.raises(fl.ResourceError, match="GiB"):
        big.dense(max_bytes=2**20)
    with pytest.raises(fl.ShapeError):
        fl.pcc(fl.Factored(np.ones((2, 3))), np.eye(4))
    assert big.quadratic(np.ones(20000)) == pytest.approx(20000.0**2)


@pytest.mark.parametrize("d,p", [(5, 40), (30, 300)])
def test_eigen_recovery_in_factored_form(d, p):
    D = fl.datasets.random_dictionary(d, p, seed=1)
    sol = factored.recover_eigen(fl.Factored(D))
    assert sol.identified and sol.factor.shape == (p, d)
    assert sol.info["pairs"] == d * (d + 1) // 2 + (p - d)  # Theorem 1's count, the null pairs as their span
    assert fl.relative_error(sol.as_factored(), fl.Factored(D)) < 1e-12
    assert np.allclose(sol.phi * np.trace(D.T @ D), D.T @ D, atol=1e-10)
    assert fl.verify(sol.info["feedback"], sol.certificate).valid  # the r-dimensional certificate re-checks


def test_eigen_recovery_of_a_lower_rank_dictionary():
    rng = np.random.default_rng(2)
    D = rng.standard_normal((8, 3)) @ rng.standard_normal((3, 50))  # d = 8 but rank 3
    sol = factored.recover_eigen(fl.Factored(D))
    assert sol.info["rank"] == 3 and sol.identified
    assert fl.relative_error(sol.as_factored(), fl.Factored(D)) < 1e-10
    with pytest.raises(fl.ArgumentError, match="numerical rank 3"):
        factored.recover_eigen(fl.Factored(D), rank=5)


def test_sae_scale_benchmark_prints_rows():
    lines = []
    rows = fl.benchmarks.sae_scale(ps=(200,), d=16, out=lines.append)
    assert rows[0]["identified"] and rows[0]["pcc"] > 1 - 1e-12 and len(lines) == 2


def test_no_p_by_p_array_at_p_32768_under_a_6_gb_ceiling():
    """recover_eigen and the exact metrics at p = 32,768 (d = 512) under an address-space limit of
    6 GB: one p x p float64 array alone would need 8.6 GB, so the run proves none is formed."""
    out = run_under_address_limit(
        "import featlib as fl\n"
        "from featlib import factored\n"
        "D = fl.datasets.random_dictionary(512, 32768, seed=0)\n"
        "sol = factored.recover_eigen(fl.Factored(D))\n"
        "assert sol.identified\n"
        "print(fl.pcc(sol.as_factored(), fl.Factored(D)))\n"
        "try:\n"
        "    fl.Factored(D).dense(max_bytes=2**40)\n"
        "except MemoryError:\n"
        "    print('dense refused by the ceiling')\n", gib=6)
    lines = out.split()
    assert float(lines[0]) > 0.99999 and "refused" in out


def test_an_agent_holding_a_factor_answers_and_teaches_as_the_dense_one():
    D = fl.datasets.random_dictionary(6, 30, seed=3)
    dense, fact = fl.Agent(D.T @ D), fl.Agent(fl.Factored(D))
    rng = np.random.default_rng(0)
    x, y, z = rng.standard_normal((3, 50, 30))
    assert np.array_equal(dense.compare(x, y, z), fact.compare(x, y, z))
    assert np.allclose(dense.quadratic(x), fact.quadratic(x))
    assert fact.spectral_norm == pytest.approx(dense.spectral_norm)
    assert np.allclose(fact.diagonal(), np.diag(D.T @ D))
    for teacher, opts in (("gaussian", {"n": 40}), ("sparse-sampled", {"n": 40, "sampler": "exact", "s": 3})):
        a, b = fl.teach(D.T @ D, teacher, seed=1, **opts), fl.teach(fl.Factored(D), teacher, seed=1, **opts)
        assert np.allclose(a.dense_y(), b.dense_y()) and np.allclose(a.dense_z(), b.dense_z())
    tf = fl.sample_triplets(fact, 100, seed=0)
    assert tf.agreement(D.T @ D) == 1.0
    big = fl.Agent(fl.Factored(np.ones((1, 20000))))
    assert big.p == 20000 and big.quadratic(np.ones(20000)) == pytest.approx(4e8)
    with pytest.raises(fl.ResourceError):
        big.phi_star  # 3.2 GB: refused, with its size


def test_a_solution_held_as_a_factor_forms_phi_only_when_asked_and_refuses_huge_ones():
    from featlib.solvers._result import Solution

    F = np.random.default_rng(0).standard_normal((6, 2))
    F /= np.linalg.norm(F)
    sol = Solution(phi=None, factor=F, identified=False, version_space_dim=-1, residual=0.0, method="gd", seconds=0.0)
    assert sol._phi is None and sol.p == 6 and "rank=2" in repr(sol)
    assert np.allclose(sol.phi, F @ F.T) and sol._phi is not None
    assert fl.relative_error(sol.as_factored(), F @ F.T) < 1e-12
    big = Solution(phi=None, factor=np.ones((20000, 1)) / 200.0, identified=False, version_space_dim=-1,
                   residual=0.0, method="gd", seconds=0.0)
    with pytest.raises(fl.ResourceError, match="GiB"):
        big.phi
    dense = fl.solve(fl.teach(F @ F.T + np.eye(6), "eigen"), "exact")  # no factor: from the eigendecomposition
    assert dense.factor is None and fl.relative_error(dense.as_factored(), dense.phi) < 1e-12


def test_constructive_teachers_on_a_factored_agent_never_form_phi(monkeypatch):
    D = fl.datasets.random_dictionary(5, 40, seed=0)
    phi = D.T @ D
    dense = {t: fl.teach(phi, t) for t in ("eigen", "compact")}

    def refuse(self, **kw):
        raise AssertionError("Phi* was formed")

    monkeypatch.setattr(fl.Factored, "dense", refuse)
    for t in ("eigen", "compact"):
        fb = fl.teach(fl.Factored(D), t)  # spectrum from the 5 x 5 Gram matrix, Gram products through D
        assert len(fb) == len(dense[t])
        sol = fl.solve(fb, "exact")
        learned = sol.as_factored()  # span and frame feedback: the answer is a factor
        assert sol.identified and fl.relative_error(learned, phi) < 1e-12
        assert np.max(fb.relative_residuals(phi)) < 1e-13
    assert dense["eigen"].storage == "basis" and fl.teach(fl.Factored(D), "eigen").storage == "span"
    assert dense["compact"].storage == "basis" and fl.teach(fl.Factored(D), "compact").storage == "frame"
    w, V = fl.Agent(fl.Factored(D)).eigh()
    assert np.allclose(V.T @ V, np.eye(40), atol=1e-12) and np.allclose((V * w) @ V.T, phi, atol=1e-12)

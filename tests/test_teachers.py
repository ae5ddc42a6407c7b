"""Every teacher: valid pairs, counts equal to the theorems' bounds, identification."""
import numpy as np
import scipy.stats
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import featlib as fl
from featlib import bounds
from conftest import target

PR = [(1, 1), (2, 1), (2, 2), (3, 1), (5, 2), (6, 6), (8, 3), (10, 4), (10, 8), (12, 5)]


def assert_valid(fb, phi, tol=1e-10):
    assert np.max(fb.relative_residuals(phi), initial=0.0) < tol


@pytest.mark.parametrize("p,r", PR)
def test_eigen_count_validity_identification(p, r):
    phi = target(p, r, seed=p * 31 + r)
    fb = fl.teach(phi, "eigen")
    assert len(fb) == bounds.constructive_low_rank(p, r)
    assert fb.meta["rank"] == r and fb.storage == "basis"
    assert_valid(fb, phi)
    sol = fl.solve(fb, "exact")
    assert sol.identified and sol.decided and sol.version_space_dim == 1
    assert fl.relative_error(sol.phi, phi) < 1e-8


@pytest.mark.parametrize("p,r", PR)
def test_sparse_count_validity_identification(p, r):
    phi = target(p, r, seed=p * 17 + r)
    fb = fl.teach(phi, "sparse")
    assert len(fb) == bounds.sparse_constructive(p)
    assert fb.storage == "sparse"
    nnz = np.diff(fb.y.indptr)
    assert nnz.max() <= 2
    assert_valid(fb, phi)
    sol = fl.solve(fb, "exact")
    assert sol.identified and sol.version_space_dim == 1
    assert fl.relative_error(sol.phi, phi) < 1e-8


@pytest.mark.parametrize("p,r", PR)
def test_gaussian_validity_identification(p, r):
    phi = target(p, r, seed=p * 7 + r)
    fb = fl.teach(phi, "gaussian", seed=p)
    assert len(fb) == bounds.sampled(p) - 1
    assert_valid(fb, phi)
    sol = fl.solve(fb, "exact")
    assert sol.identified
    assert fl.relative_error(sol.phi, phi) < 1e-8


def test_sparse_sampled_distribution_and_cap():
    phi = target(10, 10, seed=5)
    fb = fl.teach(phi, "sparse-sampled", n=3000, mu=0.7, seed=0)
    Y = fb.y.toarray()
    assert len(fb) == 3000
    assert abs(np.mean(Y == 0) - 0.7) < 0.02  # each coordinate zero w.p. mu
    nz = Y[Y != 0]
    assert nz.min() > 0 and nz.max() <= 1 and abs(nz.mean() - 0.5) < 0.02  # U(0, 1]
    capped = fl.teach(phi, "sparse-sampled", n=2000, mu=0.5, s=3, seed=1)
    counts = np.diff(capped.y.indptr)
    assert counts.max() <= 3 and np.all(np.diff(capped.z.indptr) <= 1)
    assert_valid(fb, phi)
    assert_valid(capped, phi)


def test_sparse_sampled_cap_follows_the_truncated_binomial():
    # counts are drawn from Binomial(p, 1 - mu) conditioned on <= s, supports uniformly
    p, mu, s, n = 40, 0.5, 3, 40000
    fb = fl.teach(target(p, 5, seed=1), "sparse-sampled", n=n, mu=mu, s=s, seed=0)
    counts = np.bincount(np.diff(fb.y.indptr), minlength=s + 1)
    law = scipy.stats.binom.pmf(np.arange(s + 1), p, 1 - mu)
    law /= law.sum()
    assert scipy.stats.chisquare(counts[1:], n * law[1:] * counts[1:].sum() / (n * law[1:].sum())).pvalue > 1e-3
    per_coord = np.bincount(fb.y.indices, minlength=p)
    assert scipy.stats.chisquare(per_coord).pvalue > 1e-3  # uniform supports
    # a cap that rejection sampling would meet with probability ~1e-10 is no obstacle
    tight = fl.teach(target(p, 5, seed=1), "sparse-sampled", n=500, mu=0.01, s=2, seed=0)
    assert np.diff(tight.y.indptr).max() <= 2 and np.mean(np.diff(tight.y.indptr) == 2) > 0.9


def test_sparse_sampled_exact_sparsity():
    phi = target(30, 6, seed=2)
    fb = fl.teach(phi, "sparse-sampled", n=5000, sampler="exact", s=3, seed=4)
    assert np.all(np.diff(fb.y.indptr) == 3)
    rows = np.split(fb.y.indices, fb.y.indptr[1:-1])
    assert all(len(set(r)) == 3 for r in rows[:500])  # distinct coordinates
    assert fb.meta["sampler"] == "exact" and fb.meta["mu"] is None
    assert_valid(fb, phi)
    again = fl.teach(phi, "sparse-sampled", n=5000, sampler="exact", s=3, seed=4)
    assert (fb.y != again.y).nnz == 0  # reproducible


def test_sparse_sampled_identifies_with_enough_samples():
    phi = target(6, 6, seed=9)
    fb = fl.teach(phi, "sparse-sampled", n=200, mu=0.5, s=3, seed=3)
    sol = fl.solve(fb, "exact")
    assert sol.identified and fl.relative_error(sol.phi, phi) < 1e-8


def test_repeated_eigenvalues():
    phi = fl.datasets.random_feature_matrix(7, eigenvalues=[2.0, 2.0, 2.0, 1.0], seed=4)
    for method in ("eigen", "sparse", "gaussian"):
        fb = fl.teach(phi, method, seed=0)
        assert_valid(fb, phi)
        sol = fl.solve(fb, "exact")
        assert sol.identified and fl.relative_error(sol.phi, phi) < 1e-8
    assert len(fl.teach(phi, "eigen")) == bounds.constructive_low_rank(7, 4)


def test_sparse_teacher_zero_diagonal_entries():
    # Phi*_11 = 0 (and Phi*_33 = 0): the reference must move, and e_1, e_3 become null pairs
    D = np.array([[0.0, 1.0, 0.0, 1.0, 2.0], [0.0, 1.0, 0.0, -1.0, 0.5]])
    phi = D.T @ D
    fb = fl.teach(phi, "sparse")
    assert fb.meta["reference"] == 4  # the largest diagonal entry
    assert fl.solve(fl.teach(phi, "sparse", reference=1), "exact").identified
    assert_valid(fb, phi)
    sol = fl.solve(fb, "exact")
    assert sol.identified and fl.relative_error(sol.phi, phi) < 1e-8
    with pytest.raises(fl.FeedbackError, match="null space"):
        fl.teach(phi, "sparse", reference=0)


def test_eigen_rank_override_truncates():
    w = np.array([5.0, 3.0, 1.0, 1e-3, 1e-4])
    phi = fl.datasets.random_feature_matrix(5, eigenvalues=w, seed=0)
    fb = fl.teach(phi, "eigen", rank=3)
    assert len(fb) == bounds.constructive_low_rank(5, 3) and fb.meta["truncated"]
    V = np.linalg.eigh(phi)[1][:, ::-1][:, :3]
    phi3 = (V * w[:3]) @ V.T
    assert_valid(fb, phi3)
    assert fl.relative_error(fl.solve(fb, "exact").phi, phi3) < 1e-8
    # the rank threshold is documented and adjustable
    assert fl.teach(phi, "eigen", rtol=1e-2).meta["rank"] == 3


def test_teachers_accept_an_agent_and_are_reproducible():
    phi = target(5, 3)
    agent = fl.Agent(phi)
    a = fl.teach(agent, "gaussian", n=10, seed=1)
    b = fl.teach(phi, "gaussian", n=10, seed=1)
    np.testing.assert_array_equal(a.y, b.y)
    c = fl.teach(phi, "gaussian", n=10, seed=np.random.default_rng(1))
    np.testing.assert_array_equal(a.y, c.y)


# ------------------------------------------------------------------ hypothesis properties

small = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def targets(draw, max_p=7):
    p = draw(st.integers(1, max_p))
    r = draw(st.integers(1, p))
    seed = draw(st.integers(0, 2**31 - 1))
    return p, r, fl.datasets.random_feature_matrix(p, r, seed=seed)


@small
@given(targets())
def test_property_eigen(t):
    p, r, phi = t
    fb = fl.teach(phi, "eigen")
    assert len(fb) == r * (r + 1) // 2 + p - r
    assert_valid(fb, phi)
    sol = fl.solve(fb, "exact")
    assert sol.identified and fl.relative_error(sol.phi, phi) < 1e-8


@small
@given(targets())
def test_property_sparse(t):
    p, r, phi = t
    fb = fl.teach(phi, "sparse")
    assert len(fb) == p * (p + 1) // 2
    assert_valid(fb, phi)
    sol = fl.solve(fb, "exact")
    assert sol.identified and fl.relative_error(sol.phi, phi) < 1e-8


@small
@given(targets(), st.integers(0, 1000))
def test_property_gaussian(t, seed):
    p, r, phi = t
    fb = fl.teach(phi, "gaussian", seed=seed)
    assert len(fb) == p * (p + 1) // 2 - 1
    assert_valid(fb, phi)
    sol = fl.solve(fb, "exact")
    assert sol.identified and fl.relative_error(sol.phi, phi) < 1e-7


@small
@given(targets(max_p=5), st.floats(0.05, 0.9), st.integers(0, 1000))
def test_property_sparse_sampled(t, mu, seed):
    p, r, phi = t
    n = 40
    fb = fl.teach(phi, "sparse-sampled", n=n, mu=mu, seed=seed)
    assert len(fb) == n
    assert_valid(fb, phi)
    Y = fb.y.toarray()
    assert np.all((Y == 0) | ((Y > 0) & (Y <= 1)))
    sol = fl.solve(fb, "exact", warn=False)  # identified or not, the answer satisfies the pairs
    assert sol.residual < 1e-8 or not sol.decided

"""The normal-equation least squares of the exact solver (featlib.solvers._lsq): each helper against
the dense rank-revealing solve it replaces, its refusals, and the solver on sampled sparse pairs without
any dense least squares (its certificate re-checked by verify)."""
import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp

import featlib as fl
from featlib import linalg
from featlib.solvers import _lsq


def _sparse_pairs(n, p, nnz, seed):
    rng = np.random.default_rng(seed)
    Y, Z = np.zeros((n, p)), np.zeros((n, p))
    for C in (Y, Z):
        for k in range(n):
            C[k, rng.choice(p, nnz, replace=False)] = rng.standard_normal(nnz)
    return Y, Z


def _pinv_solve(A, b):
    return sla.lstsq(A, b, cond=1e-13, lapack_driver="gelsy")[0]


def test_sparse_helpers_are_the_dense_matrices():
    Y, Z = _sparse_pairs(30, 12, 2, seed=0)
    A = _lsq.pair_matrix_rows(Y, Z)
    assert np.array_equal(A.toarray(), linalg.svec_outer(Y) - linalg.svec_outer(Z))
    assert _lsq.pair_matrix_rows(np.ones((3, 4)), np.ones((3, 4))) is None  # dense rows: the caller's dense path
    L = np.random.default_rng(1).standard_normal((12, 3))
    scale = np.einsum("ij,ij->i", Y, Y) + np.einsum("ij,ij->i", Z, Z)
    J = 2 * ((Y[:, :, None] * (Y @ L)[:, None, :] - Z[:, :, None] * (Z @ L)[:, None, :]) / scale[:, None, None])
    assert np.allclose(_lsq.factor_jacobian(Y, Z, L, scale).toarray(), J.reshape(30, -1), atol=1e-14)
    K = np.linalg.qr(np.random.default_rng(2).standard_normal((12, 3)))[0]
    G = (Y[:, :, None] * (Y @ K)[:, None, :] - Z[:, :, None] * (Z @ K)[:, None, :]).transpose(2, 1, 0).reshape(36, 30)
    Gs = _lsq.combination_times(Y, Z, K)
    assert np.allclose(Gs.toarray(), G, atol=1e-14)
    # the known null spaces: orthonormal, and null
    P = _lsq.antisymmetric_directions(K)
    assert P.shape == (36, 3) and np.allclose(P.T @ P, np.eye(3)) and np.abs(P.T @ G).max() < 1e-13
    N = _lsq.rotation_basis(L)
    assert N.shape == (36, 3) and np.allclose(N.T @ N, np.eye(3)) and np.abs(J.reshape(30, -1) @ N).max() < 1e-12


def test_min_norm_combination_is_the_pseudo_inverse_solution():
    p = 6
    D = np.random.default_rng(3).standard_normal((2, p))
    phi = D.T @ D
    fb = fl.teach(phi, "sparse-sampled", n=40, s=2, sampler="exact", seed=3)
    Y, Z = fb.dense_y(), fb.dense_z()
    A = _lsq.pair_matrix_rows(Y, Z)
    kernel = linalg.null_space(A.toarray(), rtol=1e-10)
    s = A.T @ np.random.default_rng(4).standard_normal(len(Y))  # a combination of the pairs
    beta = _lsq.min_norm_combination(A, s, kernel)
    assert beta is not None
    ref = _pinv_solve(A.toarray().T, s)
    assert np.allclose(beta, ref, atol=1e-10 * np.abs(ref).max())
    # without the kernel the shifted factorisation still solves it (the shift leaves the kernel untouched)
    assert _lsq.min_norm_combination(A, s, np.zeros((A.shape[1], 0))) is not None
    # a right-hand side that is no combination of the pairs: refused, never a wrong "solution"
    assert _lsq.min_norm_combination(A, s + kernel[:, 0], kernel) is None


def test_least_squares_with_null_and_projection_match_gelsy():
    rng = np.random.default_rng(5)
    Y, Z = _sparse_pairs(60, 12, 2, seed=5)  # J: rank 36 - 3 (the rotations only)
    L = rng.standard_normal((12, 3))
    scale = np.ones(60)
    J = _lsq.factor_jacobian(Y, Z, L, scale)
    b = rng.standard_normal(60)
    x = _lsq.least_squares_with_null(J, b, _lsq.rotation_basis(L))
    assert x is not None and np.allclose(x, _pinv_solve(J.toarray(), b), atol=1e-9)
    K = np.linalg.qr(rng.standard_normal((12, 2)))[0]
    G = _lsq.combination_times(Y, Z, K)
    alpha = rng.standard_normal(60)
    out = _lsq.project_off_rows(G, alpha, _lsq.antisymmetric_directions(K))
    ref = alpha - _pinv_solve(G.toarray(), G @ alpha)
    assert out is not None and np.allclose(out, ref, atol=1e-9) and np.linalg.norm(G @ out) < 1e-12


def test_spd_solve_refuses_what_it_cannot_solve():
    M = np.diag([1.0, 1.0, 0.0])
    apply = lambda x: M @ x  # noqa: E731
    assert _lsq.spd_solve(M, np.array([1.0, 2.0, 0.0]), apply) is not None
    assert _lsq.spd_solve(M, np.array([1.0, 2.0, 3.0]), apply) is None  # not in the range: refused
    assert _lsq.spd_solve(-np.eye(3), np.ones(3), lambda x: -x) is None  # not positive: refused
    assert _lsq.spd_solve(np.eye(2), np.array([np.nan, 1.0]), lambda x: x) is None


def _solve_forbidding(monkeypatch, fb, owner, name, **options):
    """``solve(fb, "exact")`` with ``owner.name`` replaced by a function that fails the test if called."""

    def forbidden(*args, **kwargs):
        raise AssertionError(f"{name} called")

    monkeypatch.setattr(owner, name, forbidden)
    try:
        return fl.solve(fb, "exact", warn=False, **options)
    finally:
        monkeypatch.undo()


def test_sampled_sparse_pairs_need_no_dense_least_squares(monkeypatch):
    """The sampled low-rank case of the solver benchmark at p = 16: a boundary-point combination step,
    its refinement and the polish all go through the normal equations (a dense lstsq would raise here),
    and verify proves the answer at its default margin (6e-10 here: the step's combination computed
    exactly and the coupling block solved for; 8.4e-3 before that, 1.7e-2 with the dense least squares)."""
    p = 16
    phi = fl.datasets.random_feature_matrix(p, p // 2, seed=0)
    fb = fl.teach(phi, "sparse-sampled", n=3 * p * (p + 1) // 2, mu=1 - 2 / p, s=3, seed=0)
    sol = _solve_forbidding(monkeypatch, fb, sla, "lstsq")
    assert sol.decided and sol.identified and fl.relative_error(sol.phi, phi) < 1e-10
    assert any(st.kind == "combination" for st in sol.certificate.steps)
    out = fl.verify(fb, sol)
    assert out.verdict == "identified" and out.valid and out.margin < 1e-8


def test_min_norm_combination_through_a_singular_value_below_the_shift():
    # one singular value of the rows 3e-6 of the largest: its square (9e-12) is below the Cholesky factor's
    # shift (SHIFT trace(A^T A) = 1.1e-11), so iterative refinement with that factor contracted by about
    # 0.55 a step and stopped above the acceptance test (the case of sampled pairs at p = 40, seed 1, which
    # then fell back to a dense solve); conjugate gradients preconditioned by the factor remove that one
    # eigenvalue in a step or two
    rng = np.random.default_rng(0)
    n, P = 150, 100
    U = np.linalg.qr(rng.standard_normal((n, P)))[0]
    V = np.linalg.qr(rng.standard_normal((P, P)))[0]
    sv = np.r_[np.logspace(0, -2, P - 3), 3e-6, 0.0, 0.0]
    A = (U * sv) @ V.T
    K = V[:, -2:]
    s = A.T @ rng.standard_normal(n)
    assert sv[-3] ** 2 < _lsq.SHIFT * np.sum(sv ** 2)
    beta = _lsq.min_norm_combination(sp.csr_matrix(A), s, K)
    assert beta is not None
    assert np.linalg.norm(A.T @ beta - s) <= 1e-12 * (np.linalg.norm(A) * np.linalg.norm(beta) + np.linalg.norm(s))
    assert np.linalg.norm(beta - _pinv_solve(A.T, s)) < 1e-6 * np.linalg.norm(beta)


def test_sampled_low_rank_solve_takes_the_boundary_step_before_the_second_positive_definite_search(monkeypatch):
    """A PSD combination that vanishes on a boundary point proves that no solution is positive definite, so
    the solver looks for it after the first floor of the search for a positive definite solution and skips
    the second (500 projections, most of 0.13 s at p = 40, that find nothing)."""
    from featlib.solvers import decide

    p = 16
    phi = fl.datasets.random_feature_matrix(p, p // 2, seed=0)
    fb = fl.teach(phi, "sparse-sampled", n=3 * p * (p + 1) // 2, mu=1 - 2 / p, s=3, seed=0)
    floors = []
    search = decide.find_pd_point

    def recorded(*args, **kwargs):
        floors.append(tuple(kwargs.get("floors", ())))
        return search(*args, **kwargs)

    monkeypatch.setattr(decide, "find_pd_point", recorded)
    sol = fl.solve(fb, "exact", warn=False)
    monkeypatch.undo()
    assert floors == [(1e-3,)]  # the first floor only
    assert sol.identified and fl.relative_error(sol.phi, phi) < 1e-10
    assert fl.verify(fb, sol).valid
    # without combinations there is no boundary step, and the search runs both floors as before
    floors.clear()
    monkeypatch.setattr(decide, "find_pd_point", recorded)
    sol = fl.solve(fb, "exact", warn=False, combinations=False)
    monkeypatch.undo()
    assert floors == [(1e-3,), (1e-6,)] and not sol.decided


def test_multipliers_that_are_not_psd_from_the_normal_equations_fall_back_to_the_dense_solve(monkeypatch):
    """p = 40, seed 5 (the solver benchmark's sampled case): the minimum-norm multipliers pass through a
    singular value of 1e-4 of the largest, and those of the normal equations leave the combination
    indefinite at -1.3e-8 of its top eigenvalue; the rank-revealing solve gives a PSD one.  Without that
    fallback the step went to the combination SDP and its Newton polish (14 s instead of 0.7 s)."""
    from featlib.solvers import reduce

    p = 40
    phi = fl.datasets.random_feature_matrix(p, p // 2, seed=5)
    fb = fl.teach(phi, "sparse-sampled", n=3 * p * (p + 1) // 2, mu=1 - 2 / p, s=3, seed=5)
    sol = _solve_forbidding(monkeypatch, fb, reduce, "combination_step")
    assert sol.identified and fl.relative_error(sol.phi, phi) < 1e-10
    assert any(st.kind == "combination" for st in sol.certificate.steps)
    assert fl.verify(fb, sol).valid


def test_a_boundary_point_short_of_the_boundary_is_polished_instead_of_calling_the_sdp(monkeypatch):
    """700 sampled 3-sparse pairs at p = 40 (fewer than the 820 unknowns; a rank-20 target identified only
    through the PSD constraint): the projections stall at eigenvalues down to -7e-4 below a clear gap of
    rank 20, so the boundary step failed and the combination SDP ran (13 to 30 s).  Gauss-Newton on a rank-20
    factor reaches the boundary, and the step is found from it (about 1 s)."""
    from featlib.solvers import reduce

    p, r, n = 40, 20, 700
    phi = fl.datasets.random_feature_matrix(p, r, seed=0)
    fb = fl.teach(phi, "sparse-sampled", n=n, seed=0, s=3, mu=None, sampler="exact")
    sol = _solve_forbidding(monkeypatch, fb, reduce, "combination_step")
    assert sol.identified and fl.relative_error(sol.phi, phi) < 1e-10
    assert [st.kind for st in sol.certificate.steps] == ["combination"]
    assert fl.verify(fb, sol, margin=1e-4).valid

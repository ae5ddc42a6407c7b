"""Least squares through the normal equations, for the exact solver's multipliers and polish steps.

The facial-reduction steps of the exact solver need three least-squares solves over "pairs x
unknowns" (multipliers of a combination, a Gauss-Newton step on a factor, multipliers whose
combination vanishes on a subspace).  A rank-revealing dense factorisation of those matrices
(LAPACK's ``gelsy``) costs ``O(pairs x unknowns^2)`` with little use of BLAS 3: 0.2 s each at
p = 40 and 12 s each at p = 80 on sampled pairs (measured, 2 cores).  Their null spaces are known
in advance (the solutions of the pair equalities; the rotations of a factor; the antisymmetric
directions of ``S K``), so the regularised normal matrix ``A^T A + c N N^T`` is positive definite,
small (unknowns x unknowns) and cheap to form when the pair rows are sparse.  It is factored once
by Cholesky and the solution refined against the exact products with ``A`` and ``N`` (classical
iterative refinement: each step gains about ``1 / (cond * eps)``).

Nothing here is trusted: every function returns None when the factorisation fails or the refined
residual is not small, and the caller falls back to ``gelsy``; the multipliers are re-checked by
the caller (their combination's spectrum) and by :func:`featlib.verify` as before.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ..linalg import svec_outer_difference_sparse

__all__ = ["pair_matrix_rows", "spd_solve", "min_norm_combination", "least_squares_with_null", "factor_jacobian",
           "rotation_basis", "combination_times", "antisymmetric_directions", "project_off_rows"]

#: the rows of Y and Z are used as sparse matrices below this fraction of non-zeros
SPARSE_DENSITY = 0.25
#: a refined solution is accepted when its residual is below this, relative (refinement itself runs
#: until the residual stops halving)
ACCEPT_RTOL = 1e-12


def _sparse_enough(Y, Z):
    """Whether dense pair arrays Y, Z hold fewer than :data:`SPARSE_DENSITY` non-zeros."""
    return Y.size > 0 and np.count_nonzero(Y) + np.count_nonzero(Z) <= 2 * SPARSE_DENSITY * Y.size


def pair_matrix_rows(Yr, Zr):
    """The rows ``svec(y_k y_k^T - z_k z_k^T)`` as a CSR matrix when Y and Z are sparse (fewer than
    :data:`SPARSE_DENSITY` non-zeros), else None (the caller's dense rows are cheaper)."""
    Yr, Zr = np.asarray(Yr), np.asarray(Zr)
    if not _sparse_enough(Yr, Zr):
        return None
    return svec_outer_difference_sparse(sp.csr_matrix(Yr), sp.csr_matrix(Zr))


def _gram(A):
    G = A.T @ A
    return G.toarray() if sp.issparse(G) else np.asarray(G)


#: the Cholesky factor is of ``M + SHIFT trace(M) I``: positive definite despite rounding, and despite null
#: directions of the operator that the right-hand side does not touch (refinement is against the
#: unshifted operator, so the shift only slows convergence along eigenvalues near it)
SHIFT = 1e-12


def spd_solve(M, rhs, apply, *, steps: int = 40, rhs_scale: float | None = None):
    """``x`` with ``apply(x) = rhs``, where ``M`` is a floating-point copy of the symmetric positive
    semidefinite operator ``apply``: Cholesky of ``M + SHIFT trace(M) I``, then conjugate gradients
    against ``apply`` preconditioned by that factor (at most ``steps`` iterations; the iterate with the
    smallest true residual is kept).  Plain iterative refinement with the same factor contracted by only
    0.27 a step where the shift exceeded a small eigenvalue of ``apply`` (sampled pairs at p = 40, seed 1:
    multipliers through a singular value 3e-6 of the largest) and stopped above the acceptance test;
    conjugate gradients remove such a handful of outlying eigenvalues in about as many steps.  None when the factorisation fails or the
    relative residual stays above :data:`ACCEPT_RTOL` (of ``||M||_F ||x|| + rhs_scale``; ``rhs_scale``,
    default ``||rhs||``, is the size of the data the right-hand side was computed from: its rounding is
    the floor of any residual)."""
    M = M + (SHIFT * abs(float(np.trace(M)))) * np.eye(M.shape[0])
    try:
        c = sla.cho_factor(M, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None
    scale = float(np.linalg.norm(M))
    floor = float(np.linalg.norm(rhs)) if rhs_scale is None else float(rhs_scale)
    x = sla.cho_solve(c, rhs, check_finite=False)
    r = rhs - apply(x)
    best, best_r, since = x, float(np.linalg.norm(r)), 0
    z = sla.cho_solve(c, r, check_finite=False)
    d, rz = z, float(r @ z)
    for _ in range(steps):
        if not best_r > 0:
            break
        Ad = apply(d)
        dAd = float(d @ Ad)
        if not (dAd > 0 and rz > 0):
            break
        x = x + (rz / dAd) * d
        r = rhs - apply(x)  # the true residual (not the recurrence): rounding cannot drift it
        r_norm = float(np.linalg.norm(r))
        if not np.isfinite(r_norm):
            return None
        if r_norm < 0.9 * best_r:
            since = 0
        else:
            since += 1
            if since >= 3:  # stalled at the rounding of apply
                break
        if r_norm < best_r:
            best, best_r = x, r_norm
        z = sla.cho_solve(c, r, check_finite=False)
        rz_new = float(r @ z)
        d, rz = z + (rz_new / rz) * d, rz_new
    if not np.isfinite(best_r) or not best_r <= ACCEPT_RTOL * (scale * float(np.linalg.norm(best)) + floor):
        return None
    return best


def min_norm_combination(A, s, kernel):
    """The minimum-norm ``beta`` with ``A^T beta = s`` (A: pairs x unknowns, dense or sparse) when the
    columns of ``kernel`` (orthonormal) span the null space of A and ``s`` is orthogonal to them:
    ``beta = A w`` with ``(A^T A + K K^T) w = s``.  None when that is not numerically solvable (the
    caller then uses a rank-revealing factorisation)."""
    K = np.asarray(kernel, dtype=float)
    M = _gram(A)
    if K.shape[1]:
        M = M + K @ K.T

    def apply(w):
        return A.T @ (A @ w) + K @ (K.T @ w)

    w = spd_solve(M, np.asarray(s, dtype=float), apply)
    if w is None:
        return None
    beta = np.asarray(A @ w).ravel()
    norm_a = float(np.sqrt(abs(np.trace(M))))  # ||A||_F (plus ||K||_F, at most its column count)
    if not np.linalg.norm(A.T @ beta - s) <= ACCEPT_RTOL * (norm_a * float(np.linalg.norm(beta)) + float(np.linalg.norm(s))):
        return None  # not backward stable: a rank-revealing factorisation decides instead
    return beta


def least_squares_with_null(A, b, null):
    """``argmin ||A x - b||`` orthogonal to ``null`` (orthonormal columns spanning the null space of A,
    or a superset of it that A vanishes on): ``(A^T A + c N N^T) x = A^T b`` with ``c`` the mean
    diagonal of ``A^T A``, by :func:`spd_solve`.  None when not numerically solvable.  Used for a
    Gauss-Newton step, which needs a least-squares solution, not an exact one: a step whose normal
    equations are only nearly singular beyond ``null`` is refused by the residual test of spd_solve."""
    N = np.asarray(null, dtype=float)
    M = _gram(A)
    norm_a = float(np.sqrt(abs(np.trace(M))))  # ||A||_F
    c = float(np.trace(M)) / max(M.shape[0], 1)
    if N.shape[1]:
        M = M + c * (N @ N.T)

    def apply(x):
        return A.T @ (A @ x) + c * (N @ (N.T @ x))

    return spd_solve(M, np.asarray(A.T @ b).ravel(), apply, rhs_scale=norm_a * float(np.linalg.norm(b)))


def factor_jacobian(Y, Z, L, scale):
    """The Jacobian of ``r_k(L) = (|L^T y_k|^2 - |L^T z_k|^2) / scale_k`` with respect to the entries of
    L (row-major ``L.ravel()``), as CSR when the rows of Y and Z are sparse (fewer than
    :data:`SPARSE_DENSITY` non-zeros), else None.  Row k is ``2 (y_k (y_k^T L) - z_k (z_k^T L)) / scale_k``:
    non-zero only in the rows of L that y_k or z_k touch."""
    Y, Z = np.asarray(Y), np.asarray(Z)
    if not _sparse_enough(Y, Z):
        return None
    n, r = Y.shape[0], L.shape[1]
    rows, cols, vals = [], [], []
    for C, sign in ((Y, 2.0), (Z, -2.0)):
        k, i = np.nonzero(C)
        CL = C @ L
        rows.append(np.repeat(k, r))
        cols.append((i[:, None] * r + np.arange(r)[None, :]).ravel())
        vals.append(((sign * C[k, i] / scale[k])[:, None] * CL[k]).ravel())
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, L.size))


def rotation_basis(L):
    """An orthonormal basis of the directions ``vec(L W)``, W antisymmetric (row-major vec): the factor
    rotations, along which ``L L^T`` does not change to first order (a null space of any Jacobian of a
    function of ``L L^T``).  Shape ``(L.size, r (r - 1) / 2)``."""
    p, r = L.shape
    a, b = np.triu_indices(r, 1)
    N = np.zeros((p, r, a.size))
    cols = np.arange(a.size)
    N[:, b, cols] = L[:, a]  # (L W)[:, b] = L[:, a] for W = E_ab - E_ba
    N[:, a, cols] = -L[:, b]
    N = N.reshape(p * r, a.size)
    if not a.size:
        return N
    Q, R = np.linalg.qr(N)
    d = np.abs(np.diag(R))
    return Q[:, d > 1e-12 * d.max()] if d.size and d.max() > 0 else Q[:, :0]


def combination_times(Yr, Zr, K):
    """The matrix G (q f x n, CSR) of the linear map ``alpha -> vec(S(alpha) K)``, ``S(alpha) = sum_k
    alpha_k (y_k y_k^T - z_k z_k^T)``, vec column-major (entry ``c q + i`` is row i of column c), when the
    rows of Y and Z are sparse (fewer than :data:`SPARSE_DENSITY` non-zeros), else None.  Column k is
    ``vec(y_k (y_k^T K) - z_k (z_k^T K))``: non-zero only in the rows that y_k or z_k touch."""
    Yr, Zr = np.asarray(Yr), np.asarray(Zr)
    if not _sparse_enough(Yr, Zr):
        return None
    (n, q), f = Yr.shape, K.shape[1]
    rows, cols, vals = [], [], []
    for C, sign in ((Yr, 1.0), (Zr, -1.0)):
        k, i = np.nonzero(C)
        CK = C @ K
        rows.append((np.arange(f)[None, :] * q + i[:, None]).ravel())
        cols.append(np.repeat(k, f))
        vals.append(((sign * C[k, i])[:, None] * CK[k]).ravel())
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(q * f, n))


def antisymmetric_directions(K):
    """An orthonormal basis of ``{vec(K W) : W antisymmetric}`` (vec column-major, K with orthonormal
    columns): the directions orthogonal to every ``S K`` with S symmetric (``<K W, S K> = trace(W^T K^T S
    K) = 0``), a left null space of :func:`combination_times`.  Shape ``(q f, f (f - 1) / 2)``."""
    q, f = K.shape
    a, b = np.triu_indices(f, 1)
    N = np.zeros((f, q, a.size))  # column-major vec of a q x f matrix: [column][row]
    cols = np.arange(a.size)
    N[b, :, cols] = K[:, a].T  # (K W)[:, b] = K[:, a] for W = E_ab - E_ba
    N[a, :, cols] = -K[:, b].T
    N = N.reshape(f * q, a.size) / np.sqrt(2.0)  # orthonormal: K has orthonormal columns
    return N


def project_off_rows(G, alpha, left_null):
    """``alpha - G^+ G alpha`` (the nearest vector to alpha in the null space of G) through the normal
    equations ``(G G^T + c P P^T) y = G alpha`` with P (orthonormal) spanning the known part of the left
    null space of G.  Other left null directions are harmless: ``G alpha`` has no component along them,
    the shift of :func:`spd_solve` keeps the factorisation definite, and ``G^T`` annihilates whatever y
    picks up there (one such direction is ``vec(K Psi)`` when every pair matrix is orthogonal to
    ``K Psi K^T``, i.e. to the answer itself: found at p = 80, where Cholesky without the shift failed).
    None when that is not numerically solvable or ``G`` times the result is not small (rounding of
    ``||G|| ||alpha||``)."""
    P = np.asarray(left_null, dtype=float)
    M = _gram(G.T)
    c = float(np.trace(M)) / max(M.shape[0], 1)
    if P.shape[1]:
        M = M + c * (P @ P.T)
    rhs = np.asarray(G @ alpha).ravel()

    def apply(y):
        return G @ (G.T @ y) + c * (P @ (P.T @ y))

    norm_g = float(np.sqrt(G.multiply(G).sum())) if sp.issparse(G) else float(np.linalg.norm(G))
    y = spd_solve(M, rhs, apply, rhs_scale=norm_g * float(np.linalg.norm(alpha)))
    if y is None:
        return None
    out = alpha - np.asarray(G.T @ y).ravel()
    if not np.linalg.norm(G @ out) <= ACCEPT_RTOL * norm_g * float(np.linalg.norm(alpha)):
        return None
    return out

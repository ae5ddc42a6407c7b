"""Stage 2 of the exact solver: the null space of the linear system left on the face.

Three ways to compute it, by the size and structure of the problem:

* :func:`dense_null_space`: QR + SVD of the unit-normalised constraint rows (small and medium p);
* :func:`peel`: back substitution over sparse rows, round after round, which proves a
  one-dimensional solution space without any rank decision when it determines every unknown
  (Theorem 2's pairs at p = 4096, the shared-basis path);
* shift-invert Lanczos on ``M^T M`` (in :mod:`featlib.solvers.exact`, for sparse feedback that
  back substitution cannot finish).

Nothing here knows about PSD matrices or teachers: the rows come from the reduced pairs.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from ..linalg import svec_outer

__all__ = ["constraint_rows", "dense_null_space", "peel"]


def constraint_rows(Yr, Zr, scale=None, drop_rtol=1e-12, *, return_index=False):
    """Unit-normalised rows svec(y y^T - z z^T) of dense (reduced) pairs.

    Rows whose norm is at most ``drop_rtol * scale`` (``scale``: ||y||^2 + ||z||^2 of the original
    pair, default of the given one) carry nothing above rounding and are dropped.  With
    ``return_index=True`` also returns the indices of the kept pairs and their row norms.
    """
    M = svec_outer(Yr) - svec_outer(Zr)
    if scale is None:
        scale = np.einsum("ij,ij->i", Yr, Yr) + np.einsum("ij,ij->i", Zr, Zr)
    norms = np.linalg.norm(M, axis=1)
    keep = norms > drop_rtol * scale
    rows = M[keep] / norms[keep, None]
    if return_index:
        return rows, np.flatnonzero(keep), norms[keep]
    return rows


def dense_null_space(M, rtol):
    """(basis of the numerical null space (columns), singular values) of a dense matrix whose rows
    are unit-normalised (as :func:`constraint_rows` returns them).

    The rank counts singular values above ``rtol`` times the largest.
    """
    n, P = M.shape
    if n == 0:
        return np.eye(P), np.zeros(0)
    if M.shape[0] > P:
        M = sla.qr(M, mode="r", overwrite_a=False, check_finite=False)[0][:P]
    _, s, Vt = np.linalg.svd(M, full_matrices=True)
    rank = int(np.count_nonzero(s > rtol * s[0]))
    return Vt[rank:].T, s


def peel(M, dim, b=None):
    """Back substitution on the sparse system ``M x = b`` (unit rows).

    Homogeneous (``b`` None): fix the unknown that occurs in the most rows to 1.  Inhomogeneous:
    no unknown is fixed; the right-hand side ``b`` carries the scale.  Then repeatedly solve every
    row that has exactly one unknown left (when several rows can solve the same unknown, the one
    with the largest coefficient does).  Linear in the number of non-zeros per round; Theorem 2's
    feedback needs two rounds, whatever p.

    Returns x when every unknown gets determined *and* every row is satisfied to
    ``1e3 * eps * max|x| * dim``; then the solution space of the homogeneous system is exactly
    one-dimensional (each unknown is a fixed multiple of the normalised one, or of the common
    scale of ``b``), with no rank decision.  Else None.
    """
    n, P = M.shape
    if n == 0 or P == 0:
        return None
    x = np.zeros(P)
    solved = np.zeros(P, dtype=bool)
    if b is None:
        b = np.zeros(n)
        ref = int(np.argmax(np.bincount(M.indices, minlength=P)))
        x[ref], solved[ref] = 1.0, True
    else:
        b = np.asarray(b, dtype=float)
    row_of = np.repeat(np.arange(n), np.diff(M.indptr))
    while not solved.all():
        open_nnz = ~solved[M.indices]
        single = np.bincount(row_of[open_nnz], minlength=n) == 1
        sel = open_nnz & single[row_of]
        if not sel.any():
            return None
        cols, coef, rows = M.indices[sel], M.data[sel], row_of[sel]
        known = M @ x  # contributions of the solved unknowns (unsolved ones are still 0)
        # by column, largest |coefficient| first: one argsort of a combined key (a lexsort costs ~3x more)
        mag = np.abs(coef)
        order = np.argsort(cols + 0.5 * (1.0 - mag / mag.max()), kind="stable")
        cols, coef, rows = cols[order], coef[order], rows[order]
        first = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
        cols, coef, rows = cols[first], coef[first], rows[first]
        x[cols] = (b[rows] - known[rows]) / coef
        solved[cols] = True
    scale = max(np.max(np.abs(x)), np.max(np.abs(b), initial=0.0))
    if np.max(np.abs(M @ x - b), initial=0.0) > 1e3 * np.finfo(float).eps * scale * max(1, dim):
        return None  # the rows not used for substitution disagree: inconsistent or ill-conditioned
    if not np.any(x):
        return None
    return x


def trace_vector(q):
    """svec(I_q): ``svec(I) @ svec(X) == trace(X)``."""
    iu, ju = np.triu_indices(q)
    return (iu == ju).astype(float)


def _alternating_projections(B, q, floor, iters, accept):
    """Alternate between ``span(B) ∩ {trace = 1}`` and ``{X >= floor * I}``.

    ``B`` has orthonormal svec columns.  Returns (X, lambda_min) for the first affine point with
    ``accept(lambda_min)`` true, else the affine point with the largest smallest eigenvalue seen;
    (None, -inf) when every member of span(B) has zero trace.
    """
    t = trace_vector(q)
    g = B.T @ t  # trace of smat(B a) is g @ a
    gg = float(g @ g)
    if gg == 0:
        return None, -np.inf

    def to_affine(x):
        a = B.T @ x
        return B @ (a - g * ((g @ a - 1.0) / gg))

    # svec / smat with the index arrays computed once (this loop runs thousands of times)
    iu, ju = np.triu_indices(q)
    wts = np.where(iu == ju, 1.0, np.sqrt(2.0))

    def to_mat(x):
        X = np.empty((q, q))
        X[iu, ju] = x / wts
        X[ju, iu] = X[iu, ju]
        return X

    x = to_affine(t / q)
    best, best_min = None, -np.inf
    for _ in range(iters):
        X = to_mat(x)
        w, V = np.linalg.eigh(X)
        if accept(w[0]):
            return X, float(w[0])
        if w[0] > best_min:
            best, best_min = X, float(w[0])
        x_new = to_affine(((V * np.maximum(w, floor)) @ V.T)[iu, ju] * wts)
        if np.linalg.norm(x_new - x) < 1e-15:
            break
        x = x_new
    return best, best_min

"""Stage 3 of the exact solver: decide identification from the null space on the final face.

With L the solutions of the pair equalities on the face (svec columns, orthonormal):

* ``dim L == 1``: the version space is the ray of the PSD generator -> identified;
* ``dim L >= 2`` and L holds a matrix X that is positive *definite* on the face: X and X + eps Y
  (Y another member of L) are two PSD solutions that are not multiples of each other -> not
  identified, and the pair (X, X + eps Y) is the witness;
* ``dim L >= 2`` and no such X: by the theorem of the alternative (Borwein and Wolkowicz), some
  non-zero PSD combination of the pair matrices exists on the face; facial reduction
  (:mod:`featlib.solvers.reduce`) removes it and the solve goes on.  If neither is found
  numerically, the answer is undecided.

The search for X is by alternating projections (no dependency) and, when cvxpy is installed, by
the SDP ``max t : X in L, trace X = 1, X >= t I``.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from ..linalg import smat, svec
from .nullspace import _alternating_projections
from .reduce import _smat_expr, _solved

__all__ = ["find_pd_point", "pd_point_sdp", "psd_point", "witnesses", "PD_CERTIFICATE_MIN"]

#: a trace-1 member of the solution space whose smallest eigenvalue exceeds this (far above
#: rounding) certifies that the feedback does not identify Phi
PD_CERTIFICATE_MIN = 1e-9


def find_pd_point(B, q, *, iters=500, floors=(1e-3, 1e-6)):
    """A trace-1 member of span(B) that is positive definite (lambda_min > PD_CERTIFICATE_MIN).

    Alternating projections towards ``{X >= (floor / q) I}``, for a decreasing floor.  Returns
    (matrix, lambda_min); lambda_min <= PD_CERTIFICATE_MIN means none was found.
    """
    best, best_min = None, -np.inf
    for floor in floors:
        X, lam = _alternating_projections(B, q, floor / q, iters, lambda w: w > PD_CERTIFICATE_MIN)
        if X is None:
            return None, -np.inf
        if lam > best_min:
            best, best_min = X, lam
        if lam > PD_CERTIFICATE_MIN:
            break
    return best, best_min


def pd_point_sdp(B, q):
    """The trace-1 member of span(B) with the largest smallest eigenvalue, by an SDP (cvxpy).

    Returns (matrix, lambda_min), or (None, -inf) when cvxpy is missing or the solver fails.
    """
    if importlib.util.find_spec("cvxpy") is None:
        return None, -np.inf
    import cvxpy as cp

    c = cp.Variable(B.shape[1])
    t = cp.Variable()
    X = _smat_expr(cp, B, c, q)
    prob = cp.Problem(cp.Maximize(t), [cp.trace(X) == 1, X - t * np.eye(q) >> 0])
    if not _solved(cp, prob, c):
        return None, -np.inf
    Xv = smat(B @ c.value, q)
    return Xv, float(np.linalg.eigvalsh(Xv)[0])


def psd_point(B, q, iters=2000):
    """Some trace-1 PSD matrix in span(B) (alternating projections onto the PSD cone)."""
    X, _ = _alternating_projections(B, q, 0.0, iters, lambda w: w >= -1e-12)
    return X


def witnesses(X, L, q):
    """Two linearly independent members of span(L), both positive definite, from a positive
    definite member X: (X, X + eps Y) with Y the member of L farthest from X's direction."""
    x = svec(X)
    x = x / np.linalg.norm(x)
    coef = L.T @ x
    Yv = L @ (np.eye(L.shape[1])[int(np.argmin(np.abs(coef)))] - coef * coef[int(np.argmin(np.abs(coef)))])
    Y = smat(Yv, q)
    lam = float(np.linalg.eigvalsh(X)[0])
    eps = 0.5 * lam / max(float(np.linalg.norm(Y, 2)), np.finfo(float).tiny)
    return X, X + eps * Y

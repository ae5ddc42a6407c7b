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

from .. import _exact
from ..certificates import ROUGH_WEIGHTS
from ..linalg import smat, svec, svec_outer_difference
from .nullspace import _alternating_projections, dense_null_space
from .reduce import solve_in_span

__all__ = ["find_pd_point", "pd_point_sdp", "psd_point", "gap_rank", "gap_ratios", "polish_boundary", "witnesses",
           "rational_face_witnesses", "PD_CERTIFICATE_MIN"]

#: a trace-1 member of the solution space whose smallest eigenvalue exceeds this (far above
#: rounding) certifies that the feedback does not identify Phi
PD_CERTIFICATE_MIN = 1e-9


#: find_pd_point stops a floor's run when its best smallest eigenvalue has not grown for this many
#: iterations (the sets do not meet); measured on sampled pairs at p = 40: the first floor's run
#: stops after 358 of its 500 iterations, the second still improves at 500
PD_STALL = 50


def find_pd_point(B, q, *, iters=500, floors=(1e-3, 1e-6)):
    """A trace-1 member of span(B) that is positive definite (lambda_min > PD_CERTIFICATE_MIN).

    Alternating projections towards ``{X >= (floor / q) I}``, for a decreasing floor, each run
    stopped early once its smallest eigenvalue stalls below zero (:data:`PD_STALL`).  Returns
    (matrix, lambda_min); lambda_min <= PD_CERTIFICATE_MIN means none was found.
    """
    best, best_min = None, -np.inf
    for floor in floors:
        X, lam = _alternating_projections(B, q, floor / q, iters, lambda w: w > PD_CERTIFICATE_MIN, stall=PD_STALL)
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

    t = cp.Variable()
    c = solve_in_span(cp, B, q, lambda X, cons: cp.Problem(cp.Maximize(t), [cp.trace(X) == 1, X - t * np.eye(q) >> 0,
                                                                            *cons]))
    if c is None:
        return None, -np.inf
    Xv = smat(B @ c, q)
    return Xv, float(np.linalg.eigvalsh(Xv)[0])


def psd_point(B, q, iters=2000, chunk=150):
    """Some trace-1 PSD matrix in span(B) (alternating projections onto the PSD cone).

    On a face the projections converge only linearly (a factor of 10 every 150 iterations or so on
    sampled pairs at p = 40: 2,000 iterations to reach -1e-12), while the rank shows after a hundred;
    so every ``chunk`` iterations :func:`polish_boundary` tries projections onto that rank, and the
    cone's projections go on from where they were if it does not get there."""
    X, done, tried = None, 0, set()
    while done < iters:
        n = min(chunk, iters - done)
        X, lam = _alternating_projections(B, q, 0.0, n, lambda w: w >= -1e-12, start=X)
        done += n
        if X is None or lam >= -1e-12:
            return X
        Xp = polish_boundary(B, q, X, tried=tried)
        if Xp is not None:
            return Xp
    return X


def gap_ratios(w):
    """For ascending eigenvalues ``w`` with a positive top: entry i is ``w[i + 1]`` over the largest
    magnitude below it (at least 1e-16 of the top), 0 where ``w[i + 1] <= 0``; a large entry is a gap
    with rank ``len(w) - 1 - i`` above it."""
    w = np.asarray(w, dtype=float)
    top = float(w[-1])
    below = np.maximum.accumulate(np.abs(w[:-1]))
    ratios = w[1:] / np.maximum(below, 1e-16 * top)
    ratios[w[1:] <= 0] = 0.0
    return ratios


def gap_rank(w, *, min_gap=10.0):
    """The rank shown by ascending eigenvalues ``w`` of a nearly PSD matrix: the count above its largest
    gap, an eigenvalue at least ``min_gap`` times every magnitude below it (not just its neighbour:
    near-zero eigenvalues of either sign sit below the gap in any order); None without such a gap or a
    positive top."""
    w = np.asarray(w, dtype=float)
    top = float(w[-1]) if w.size else 0.0
    if not top > 0 or w.size < 2:
        return None
    ratios = gap_ratios(w)
    i = int(np.argmax(ratios))
    if not ratios[i] >= min_gap:
        return None
    return w.size - i - 1


def polish_boundary(B, q, X, *, min_gap=10.0, iters=600, tried=None):
    """A trace-1 PSD member of span(B) of the rank X shows, by projections onto that rank.

    The rank k: the eigenvalues above X's largest gap (an eigenvalue at least ``min_gap`` times every
    magnitude below it).  Alternating projections between span(B) ∩ {trace = 1} and the PSD
    matrices of rank at most k (measured on sampled pairs at p = 40: a factor of 10 every 25
    iterations, against 150 onto the whole cone).  Returns the affine point once its smallest
    eigenvalue is >= -1e-12 (what :func:`psd_point` accepts), else None.  The projections stop when
    the smallest eigenvalue stalls (the rank is wrong); ``tried``: ranks already tried without success
    (skipped; the new one is added), so a failing solve does not pay for the same rank twice."""
    k = gap_rank(np.linalg.eigvalsh((X + X.T) / 2), min_gap=min_gap)
    if k is None:
        return None
    if tried is not None:
        if k in tried:
            return None
        tried.add(k)
    Xp, lam = _alternating_projections(B, q, 0.0, iters, lambda v: v >= -1e-12, start=X, rank=k, stall=50)
    return Xp if Xp is not None and lam >= -1e-12 else None


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


def rational_face_witnesses(Y, Z, X, ranks, *, weights=ROUGH_WEIGHTS):
    """Candidate "not identified" witnesses on a face spanned by short integer vectors.

    ``X``: a PSD solution of the pairs of largest rank (an interior-point SDP's), in the full space, and
    ``ranks`` the ranks its eigenvalue gaps suggest.  Where the solutions have no positive definite
    member, their smallest face is the range of such an X; when short integer vectors span it (integer
    pairs: coordinates that no pair touches, the range of an integer target), LLL recovers them from
    X's top eigenvectors (:func:`featlib._exact.integer_vectors_near`, accepted within ``30 / weight``),
    even where X is accurate only to 1e-3, and on the exact face B two positive definite W with
    ``B W B^T`` solving the pairs prove the pairs do not identify (:func:`featlib.verify` checks that
    exactly: it takes the face as given).  Returns ``(B, W1, W2, m)`` for the first rank and weight whose
    face holds two independent positive definite solutions in floating point: floats (B's entries are
    integers) and m the dimension of the solutions on that face; or None.  Nothing here is trusted: the
    caller verifies."""
    X = (X + X.T) / 2
    w, V = np.linalg.eigh(X)
    for k in ranks:
        if not 0 < k < X.shape[0]:
            continue
        K = V[:, -k:]
        for weight in weights:
            Bq = _exact.integer_vectors_near(K, weight=weight, tol=30.0 / weight)
            if Bq is None:
                continue
            B = np.array(Bq, dtype=float)
            Yb, Zb = Y @ B, Z @ B
            rows = svec_outer_difference(Yb, Zb)
            norms = np.linalg.norm(rows, axis=1)
            live = norms > 1e-13 * max(float(norms.max(initial=0.0)), np.finfo(float).tiny)
            if live.any():
                L, _ = dense_null_space(rows[live] / norms[live, None], 1e-10)
            else:  # no pair touches the face: every symmetric W solves them
                L = np.eye(k * (k + 1) // 2)
            if L.shape[1] < 2:
                continue
            P = np.linalg.pinv(B)
            W = smat(L @ (L.T @ svec(P @ X @ P.T)), k)
            W = W / np.trace(W)
            lam = float(np.linalg.eigvalsh(W)[0])
            if not lam > PD_CERTIFICATE_MIN:
                continue
            W1, W2 = witnesses(W, L, k)
            return B, W1, W2, L.shape[1]
    return None

"""Alternating projections from a prior: a learner for sampled pairs below and near the degrees of freedom.

With fewer pairs in general position than the ``r p - r(r-1)/2 - 1`` degrees of freedom of a rank-r
target, a whole manifold of rank-r PSD matrices satisfies them (the counting argument of
:func:`featlib.bounds.low_rank_dof`; not proved here for sparse samples), and gradient descent from a
random start stops at an arbitrary point of it (measured at p = 1024, rank 128, half the degrees of
freedom: 300 epochs fit the pairs to a loss of order 1e-14 and reached PCC 0.31, below the identity
matrix's 0.33; ``featlib benchmark below-dof``).  Which point is
returned is then a choice of *prior*.  This learner makes the
choice explicit:

1. start from the prior ``Phi_0 = I`` (scaled; "features are nearly orthogonal", the shape of a
   dictionary of unit-norm, incoherent atoms);
2. project onto the pairs' constraints ``<Phi, y y^T - z z^T> = 0`` (the closest matrix in Frobenius
   norm, by LSQR on the sparse ``n x p(p+1)/2`` system, rows scaled by ``||y||^2 + ||z||^2``);
3. project onto rank-r PSD matrices (top r eigenpairs, negative ones dropped);
4. repeat 2-3 (alternating projections, the singular value projection of matrix sensing with unit
   step), for a number of rounds chosen on held-out pairs (see :func:`solve_svp`).

The answer is an estimate (``identified=False``, ``decided=False``), returned with its factor.  It
forms p x p matrices: meant for p up to a few thousand (``experiments.below_dof_curve``,
``featlib benchmark below-dof``); :func:`featlib.solve` with ``init=`` hands its factor to gradient
descent for a final fit.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from .. import _checks
from ..feedback import PairFeedback
from ._result import Solution, max_relative_residual
from ..linalg import smat, svec, svec_dim

__all__ = ["solve_svp"]


def _top_psd_factor(X, r):
    """The factor F (p x r) of the best rank-r PSD approximation of the symmetric X."""
    w, V = np.linalg.eigh((X + X.T) / 2)
    w, V = w[::-1][:r], V[:, ::-1][:, :r]
    return V * np.sqrt(np.clip(w, 0.0, None))


def _constraints(feedback):
    A = feedback.constraints()
    sy, sz = feedback.sq_norms()
    s = sy + sz
    s[s == 0] = 1.0
    return sp.diags(1.0 / s) @ A


def _rounds(A, X, r, count, inner, each=None):
    """``count`` rounds of (projection onto ``A x = 0``, rank-r PSD projection) from ``X``; ``each(round,
    factor)`` after every round returns True to stop early.  The last factor."""
    from scipy.sparse.linalg import lsqr

    p = X.shape[0]
    F = None
    for it in range(count):
        x = svec(X)
        x = x - lsqr(A, A @ x, atol=1e-12, btol=1e-12, iter_lim=inner)[0]
        F = _top_psd_factor(smat(x, p), r)
        if not np.any(F):
            raise _checks.FeedbackError("the projection onto the pairs' constraints has no positive eigenvalue: "
                                        "too few pairs for this prior.")
        X = F @ F.T
        X *= p / np.trace(X)
        if each is not None and each(it + 1, F):
            break
    return F


def solve_svp(feedback: PairFeedback, *, rank: int | None = None, iterations: int = 50, holdout: float = 0.1, patience: int = 5,
              inner: int = 200, prior="identity", seed=0, progress: bool = False) -> Solution:
    """Alternating projections between the pairs' constraints and rank-``rank`` PSD matrices, from a prior
    (see the module docstring).

    Below the degrees of freedom the rounds drift away from the prior along the solution manifold
    (measured at p = 512, rank 64, half the degrees of freedom: PCC 0.49 after 5 rounds, 0.41 after
    40), above them they converge to the target (PCC 0.9999 after 30 rounds at twice the degrees
    of freedom).  So the number of rounds is chosen on held-out pairs: the rounds run on the other
    pairs while the held-out pairs' mean relative residual improves (at most ``iterations``, stopping
    after ``patience`` rounds without a 0.1 % improvement), and then the best number of rounds is
    run again on all the pairs.

    Parameters
    ----------
    rank : int
        The rank r of the answer (e.g. the SAE's residual-stream width); required.
    iterations : int
        Most rounds of (constraints, rank) projections (at least 1).
    holdout : float
        Fraction of the pairs held out to choose the number of rounds; 0: run ``iterations`` rounds
        on all the pairs.
    patience : int
        Rounds without improvement of the held-out residual before stopping.
    inner : int
        LSQR iterations per projection onto the constraints (an approximate projection).
    prior : "identity" or array (p, p)
        The starting matrix.
    seed : int or Generator
        The held-out split.
    progress : bool
        Print the held-out residual per round.
    """
    if not isinstance(feedback, PairFeedback):
        raise _checks.ArgumentTypeError(f"solve(..., 'svp') expects a PairFeedback; got {type(feedback).__name__}.")
    t0 = time.perf_counter()
    p, n = feedback.p, len(feedback)
    if n == 0:
        raise _checks.FeedbackError("no pairs to learn from.")
    if rank is None:
        raise _checks.ArgumentTypeError("method='svp' needs rank=, the rank of the answer (e.g. the SAE's "
                                        "residual-stream width).")
    r = _checks.check_positive_int(rank, "rank")
    if r > p:
        raise _checks.ArgumentError(f"rank = {r} exceeds p = {p}.")
    iterations = _checks.check_positive_int(iterations, "iterations")
    patience = _checks.check_positive_int(patience, "patience")
    inner = _checks.check_positive_int(inner, "inner")
    holdout = _checks.check_real(holdout, "holdout", low=0)
    if holdout >= 1:
        raise _checks.ArgumentError(f"holdout is a fraction of the pairs in [0, 1); got {holdout:g}.")
    progress = _checks.check_bool(progress, "progress")
    rng = _checks.as_generator(seed)
    _checks.check_allocation(8 * (6 * p * p + 4 * svec_dim(p)), f"the {p} x {p} matrices of method='svp'")
    if isinstance(prior, str):
        _checks.check_method(prior, ("identity",), "prior")
        X0 = np.eye(p)
    else:
        X0 = _checks.symmetric_matrix(prior, "prior")
        if X0.shape != (p, p):
            raise _checks.ShapeError(f"prior must be {p} x {p}; got {X0.shape}.")
        if not np.trace(X0) > 0:
            raise _checks.ArgumentError("the prior must have a positive trace.")
    X0 = X0 * (p / np.trace(X0))
    A = _constraints(feedback)  # built once; the held-out search uses its rows for the kept pairs
    rounds, scores = iterations, []
    n_hold = int(round(holdout * n))
    if n_hold > 0:
        if n - n_hold < 1:
            raise _checks.FeedbackError(f"{n} pairs are too few to hold {holdout:g} of them out.")
        order = rng.permutation(n)
        held, kept_rows = feedback[np.sort(order[:n_hold])], np.sort(order[n_hold:])
        best = [np.inf, 0]

        def each(it, F):
            score = float(np.mean(held.relative_residuals(None, factor=F / np.linalg.norm(F))))
            scores.append(score)
            if progress:
                print(f"svp round {it}: held-out mean relative residual {score:.3e}")
            if score < best[0] * (1 - 1e-3):
                best[:] = [score, it]
            return it - best[1] >= patience

        _rounds(A[kept_rows], X0, r, iterations, inner, each)
        rounds = best[1]
    F = _rounds(A, X0, r, rounds, inner)
    factor = F / np.linalg.norm(F)
    norm = float(np.linalg.norm(factor, 2)) ** 2
    residual = max_relative_residual(feedback, None, factor=factor, norm=norm)
    return Solution(phi=None, factor=factor, identified=False, version_space_dim=-1, residual=residual, method="svp",
                    seconds=time.perf_counter() - t0, decided=False,
                    info={"rounds": rounds, "holdout_scores": np.array(scores), "held_out": n_hold, "rank": r})

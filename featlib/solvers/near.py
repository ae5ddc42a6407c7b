"""Last resorts for floating-point pairs that the exact solver leaves undecided, both built on the
solutions the pairs allow found directly (an SDP over them, then Gauss-Newton on a factor):

* :func:`near_solutions`: two PSD matrices far apart that both satisfy the pairs to a given precision
  (:mod:`featlib.near`): the pairs do not pin Phi down *to that precision*;
* :func:`identified_around`: "identified", with a facial-reduction certificate built around a polished
  solution (a combination of the pairs that vanishes on its range, re-centred inside that space by an
  SDP), proved by :func:`featlib.verify` in floating point like any other certificate.

Both are candidate generators: only the proof (:func:`featlib.verify_near_solutions`,
:func:`featlib.verify`) makes a result.  The common search:

1. the solutions of the pair equalities as a linear space (the null space of the pair rows, as the
   exact solver computes it on its first face);
2. SDPs over the trace-1 PSD members of that space (cvxpy): the member minimising ``<C, W>`` for a
   fixed random symmetric C, and (near solutions) the one maximising it, then the two ends along the
   difference D of those two (minimising and maximising ``<D, W>``: the set's width along D is at least
   as large);
3. each point factored at the ranks its eigenvalue gaps suggest and polished by Gauss-Newton on the
   factor (``|L^T y|^2 - |L^T z|^2 = 0`` for every pair, with ``||L||_F = 1``): an interior-point
   point satisfies the pairs only to about 1e-8, the polished factor to rounding (1e-17 on most of the
   cases measured; where the solution set is singular, Gauss-Newton converges linearly, hence the 100
   steps); of the polished points that satisfy the pairs to the precision asked, the two farthest apart
   are kept.

Why the exact solver needs them: near the identification threshold the combination step's kernel is
known only to about sqrt(rounding / gap) (faces accurate to 1.3e-2 ... 1 on the undecided p = 10 probes
looked at), and on float pairs no snapping to an exact face applies.  Starting instead from a solution
polished to a residual of 1e-17, the face to aim at is its range.  Measured on the floating-point 2-sparse and μ-model pairs at p = 10 and 20 (see the
Benchmarks page).
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ..certificates import Certificate, FaceStep, verify
from ..feedback import PairFeedback
from ..linalg import right_singular, smat
from ..near import NearSolutions, verify_near_solutions
from ._result import Solution, max_relative_residual, normalise
from .decide import gap_ratios
from .nullspace import constraint_rows, dense_null_space
from .reduce import have_sdp, psd_in_span, solve_in_span

__all__ = ["near_solutions", "identified_around", "NEAR_MAX_P", "NEAR_AUTO_MAX_P"]

#: the search is dense (a null space over p(p+1)/2 unknowns, SDPs of size p): up to this p
NEAR_MAX_P = 40
#: the exact solver (:func:`identified_around`) and the phase experiments (:func:`near_solutions`) try
#: these last resorts by themselves only up to this p, where they were measured (p = 10 and 20: seconds
#: to tens of seconds a probe at p = 20, on undecided probes only)
NEAR_AUTO_MAX_P = 20
#: Gauss-Newton stops after this many steps without halving its best residual
STALL_STEPS = 30
#: null-space threshold (relative singular value) for the solutions of the pair equalities: only a
#: candidate space, every result is polished and proved against all pairs
NULL_RTOL = 1e-10


def near_solutions(feedback, *, distance: float = 2e-2, tol: float = 1e-12, seed=0):
    """Two PSD matrices, at least ``distance`` apart (relative trace norm, each at trace 1), that both
    satisfy every pair to relative residual ``tol``, proved by :func:`featlib.verify_near_solutions`;
    or None when the search finds none (which proves nothing: the pairs may still not identify Phi).

    Returns a :class:`featlib.NearSolutions`.  Needs cvxpy (None without it) and dense pairs with
    ``p <= NEAR_MAX_P``.  ``seed`` fixes the random objective of the first SDP.  See the module
    docstring for the search; its defaults are the phase experiments' (``distance`` twice their
    certificate margin 1e-2, so that the two verdicts cannot both describe exact solutions)."""
    if not isinstance(feedback, PairFeedback):
        raise _checks.ArgumentTypeError(f"near_solutions expects a PairFeedback; got {type(feedback).__name__}.")
    distance = _checks.check_real(distance, "distance", low=0.0, low_open=True)
    if distance > 2:
        raise _checks.ArgumentError(f"distance must be at most 2 (two trace-1 PSD matrices are at most 2 apart in "
                                    f"trace norm); got {distance}.")
    tol = _checks.check_rtol(tol, "tol")
    p = feedback.p
    if p > NEAR_MAX_P:
        raise _checks.ArgumentError(f"near_solutions searches densely up to p = {NEAR_MAX_P}; got p = {p}.")
    if not have_sdp() or len(feedback) == 0:
        return None
    Y, Z, nu, _, L = _solution_space(feedback)
    if L.shape[1] < 2:
        return None  # one direction or none: no two independent solutions to find
    rng = np.random.default_rng([int(seed), 104729])
    C = rng.standard_normal((p, p))
    D = (C + C.T) / 2
    points = []
    for _ in range(2):  # the two ends along D, then along the difference of the ends found (wider)
        ends = [W for W in (_extreme_point(L, p, D), _extreme_point(L, p, -D)) if W is not None]
        points += ends
        if len(ends) == 2:
            D = ends[1] / np.trace(ends[1]) - ends[0] / np.trace(ends[0])
            if not np.linalg.norm(D) > 1e-9:
                break  # one point: the solution set looks like a single ray
        else:  # an SDP failed: another random direction
            C = rng.standard_normal((p, p))
            D = (C + C.T) / 2
    if len(points) < 2:
        return None
    # every point polished; of those that satisfy the pairs to tol, the two farthest apart (an SDP point
    # far from the others may polish badly: mu-model pairs, p = 20, rank 1, 40 pairs, measured)
    good = []
    for W in points:
        best = _polished_factor(Y, Z, nu, W, good=tol)
        if best is not None and best[1] <= tol:
            F = best[0]
            good.append((F, best[1], F @ F.T / np.einsum("ij,ij->", F, F)))
    pairs = [(i, j) for i in range(len(good)) for j in range(i + 1, len(good))]
    if not pairs:
        return None
    dist = {ij: float(np.abs(np.linalg.eigvalsh(good[ij[0]][2] - good[ij[1]][2])).sum()) for ij in pairs}
    i, j = max(pairs, key=dist.get)
    found = dist[(i, j)]
    if not found >= distance:
        return None
    factors, residuals = [good[i][0], good[j][0]], [good[i][1], good[j][1]]
    near = NearSolutions(factors=tuple(factors), tol=tol, distance=distance, residuals=tuple(residuals),
                         found_distance=found)
    return near if verify_near_solutions(feedback, near).valid else None


def _solution_space(feedback):
    """``(Y, Z, nu, live, L)``: the dense pairs without trivial ones (``live``: their indices, ``nu``:
    ``|y|^2 + |z|^2``) and an orthonormal svec basis L of the solutions of their equalities."""
    Y = np.asarray(feedback.dense_y(), dtype=float)
    Z = np.asarray(feedback.dense_z(), dtype=float)
    nu = np.einsum("ij,ij->i", Y, Y) + np.einsum("ij,ij->i", Z, Z)
    live = np.flatnonzero(nu > 0)
    Y, Z, nu = Y[live], Z[live], nu[live]
    return Y, Z, nu, live, dense_null_space(constraint_rows(Y, Z), NULL_RTOL)[0]


def _extreme_point(L, p, C):
    """The trace-1 PSD member W of span(smat(L)) minimising ``<C, W>`` (an SDP), or None."""
    import cvxpy as cp  # optional dependency (the exact solver's SDPs), only reached when it is installed

    c = solve_in_span(cp, L, p, lambda X, cons: cp.Problem(cp.Minimize(cp.trace(C @ X)),
                                                           [cp.trace(X) == 1, X >> 0, *cons]))
    if c is None or not np.all(np.isfinite(c)):
        return None
    W = smat(L @ c, p)
    # kept even when the SDP ended well short of PSD (-8.5e-3 of the trace at p = 20, mu-model pairs): its
    # clipped factor can still polish to a solution (it did there, to the target)
    return (W + W.T) / 2


def _candidate_ranks(w, most=4):
    """Ranks for factoring a nearly PSD matrix with ascending eigenvalues ``w``: the counts above its
    clearest gaps (ratio at least 10 over every magnitude below, largest ratios first), then its
    numerical rank at 1e-9 of the top."""
    top = float(w[-1])
    if not top > 0:
        return []
    ratios = gap_ratios(w)
    order = [int(i) for i in np.argsort(-ratios, kind="stable") if ratios[i] >= 10][:most]
    ranks = [w.size - 1 - i for i in order]
    full = int(np.count_nonzero(w > 1e-9 * top))
    return list(dict.fromkeys(ranks + [full]))


def _polished_factor(Y, Z, nu, W, iters=100, good=1e-12):
    """(L, largest relative residual) with L L^T near W satisfying the pairs best (Gauss-Newton on L with
    ||L||_F = 1), or None: at the ranks of :func:`_candidate_ranks`, then, if none reaches ``good``, at
    every other rank up to W's numerical rank, smallest first, until one does (mu-model pairs, p = 20,
    rank 2, 72 pairs: an SDP point with eigenvalues 1, 0.81, 0.19, 3.1e-2, 1.1e-2, then 1.9e-5 and
    below polished to 1.8e-6 at the gap ranks 5 and 14, to 6e-16 at rank 3)."""
    w, V = np.linalg.eigh(W)
    best = None
    first = _candidate_ranks(w)
    full = max(first, default=0)
    for k in first + [k for k in range(1, full + 1) if k not in first]:
        if k < 1:
            continue
        if k not in first and best is not None and best[1] <= good:
            break
        F = V[:, -k:] * np.sqrt(np.maximum(w[-k:], 0.0))
        F = _gauss_newton(Y, Z, nu, F, iters)
        if F is None:
            continue
        res = _relative_residual(Y, Z, nu, F)
        if best is None or res < best[1]:
            best = (F, res)
        if res <= 1e-15:
            break
    return best


def _relative_residual(Y, Z, nu, F):
    YF, ZF = Y @ F, Z @ F
    return float(np.max(np.abs(np.einsum("ij,ij->i", YF, YF) - np.einsum("ij,ij->i", ZF, ZF)) / nu)
                 / np.einsum("ij,ij->", F, F))


def _gauss_newton(Y, Z, nu, F, iters, rcond=1e-13):
    """Least-norm Gauss-Newton steps on ``(|F^T y_i|^2 - |F^T z_i|^2) / nu_i = 0`` and ``||F||_F^2 = 1``
    (without the trace row it converges to F = 0, which satisfies every pair trivially), keeping the
    best iterate; None if F is zero."""
    nrm = np.linalg.norm(F)
    if not nrm > 0:
        return None
    F = F / nrm
    best, best_res = F, _relative_residual(Y, Z, nu, F)
    n = Y.shape[0]
    since = 0  # steps since the best residual last fell by half
    for _ in range(iters):
        if best_res <= 1e-16 or since >= STALL_STEPS:
            break
        YF, ZF = Y @ F, Z @ F
        r = np.append((np.einsum("ij,ij->i", YF, YF) - np.einsum("ij,ij->i", ZF, ZF)) / nu, np.sum(F * F) - 1.0)
        J = 2 * (Y[:, :, None] * YF[:, None, :] - Z[:, :, None] * ZF[:, None, :]).reshape(n, -1) / nu[:, None]
        J = np.vstack([J, 2 * F.reshape(1, -1)])
        try:
            d = np.linalg.lstsq(J, -r, rcond=rcond)[0]
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(d)):
            break
        F = F + d.reshape(F.shape)
        res = _relative_residual(Y, Z, nu, F)
        since = 0 if res < best_res / 2 else since + 1
        if res < best_res:
            best, best_res = F, res
    return best


#: the margin at which :func:`identified_around` asks verify to prove its certificate (as the exact
#: solver's own unrefined inexact steps, ``exact._inexact_identified_holds``)
AROUND_MARGIN = 1e-2
#: the combination must vanish on the solution's range: multipliers from singular values of the map
#: alpha -> S(alpha) V below this fraction of the largest
AROUND_RTOL = 1e-10


def identified_around(feedback, *, margin: float = AROUND_MARGIN, seed=0):
    """An "identified" :class:`~featlib.solvers.Solution` whose certificate is built around a polished
    solution of the pairs, or None.

    A trace-1 PSD solution X (SDP, then Gauss-Newton on a factor: it satisfies the pairs to about 1e-17)
    and its range V (dimension k) give one facial-reduction step: the multipliers alpha whose
    combination ``S(alpha) = sum_i alpha_i (y_i y_i^T - z_i z_i^T)`` vanishes on V (a linear condition),
    and among them the one whose S is most positive on the complement of V (an SDP:
    :func:`featlib.solvers.reduce.psd_in_span`, against ``sum_i |alpha_i| (|y_i|^2 + |z_i|^2)``, the scale
    of S's rounding).  If the pairs then leave one direction on V, the certificate (that step, rank
    p - k, and the face V) is checked by :func:`featlib.verify` in floating point at ``margin``; the
    solution is returned only when verify proves it (``info["identified_by"] = "polished solution"``).
    Measured cases: 2-sparse and μ-model float pairs at p = 10 (rank 4, 43 pairs; rank 3, 44 pairs)
    that the exact solver left undecided, proved at distances 2.0e-3 and 4.5e-6.  Needs cvxpy and
    dense pairs with ``p <= NEAR_MAX_P`` (the exact solver calls it by itself up to ``NEAR_AUTO_MAX_P``); None
    otherwise."""
    if not isinstance(feedback, PairFeedback):
        raise _checks.ArgumentTypeError(f"identified_around expects a PairFeedback; got {type(feedback).__name__}.")
    margin = _checks.check_rtol(margin, "margin")
    p = feedback.p
    if p > NEAR_MAX_P or not have_sdp() or len(feedback) == 0:
        return None
    Y, Z, nu, live, L = _solution_space(feedback)
    if L.shape[1] == 0:
        return None
    C = np.random.default_rng([int(seed), 104729]).standard_normal((p, p))
    W = _extreme_point(L, p, (C + C.T) / 2)
    if W is None:
        return None
    best = _polished_factor(Y, Z, nu, W)
    if best is None:
        return None
    F = best[0]
    U, sv, _ = np.linalg.svd(F, full_matrices=False)
    # the rank: above the largest gap (at least 1e3) in the factor's singular values, where Gauss-Newton
    # leaves a remnant column (4.8e-8 of the top beside four of 0.4 to 0.55, 2-sparse pairs at p = 20)
    ratios = sv[:-1] / np.maximum(sv[1:], 1e-300 * sv[0]) if sv.size > 1 else np.zeros(0)
    big = np.flatnonzero(ratios >= 1e3)
    k = int(big[np.argmax(ratios[big])]) + 1 if big.size else int(np.count_nonzero(sv > 0))
    if not 0 < k < p:
        return None
    V = U[:, :k]
    step = _step_around(Y, Z, nu, live, V)
    if step is None:
        return None
    steps = [step]
    U2 = k * (k + 1) // 2
    cert = Certificate(verdict="identified", steps=tuple(steps), face_dim=k, reduced_rank=U2 - 1, unknowns=U2,
                       face=V, witnesses=None, method="svd")
    check = verify(feedback, cert, margin=margin, exact=False)
    if not check.valid:
        return None
    phi = normalise(F @ F.T)
    info = {"path": "dense", "identified_by": "polished solution", "verify_margin": check.margin,
            "polished_residual": float(best[1]), "facial_steps": len(steps)}
    return Solution(phi=phi, identified=True, version_space_dim=1, residual=max_relative_residual(feedback, phi),
                    method="exact", seconds=0.0, decided=True, info=info, certificate=cert)


def _step_around(Y, Z, nu, live, V):
    """One facial-reduction step onto the range of V (orthonormal, p x k), or None: among the
    multipliers (over the rows ``live`` of the original pairs) whose combination vanishes on V (a linear
    space), the one whose combination is most positive on V's complement (an SDP), if positive there.
    Where no combination is (measured: 2-sparse and mu-model pairs at p = 20, optimum -2e-9 to -9e-11,
    and one at 2.6e-11 that verify could not prove PSD above rounding), a chain of steps would be needed
    and would be as thin: none is built."""
    p, k = V.shape
    Q = np.linalg.qr(V, mode="complete")[0][:, k:]
    # alpha -> S(alpha) V, pairs scaled to unit size (column i: (y_i y_i^T - z_i z_i^T) V / nu_i)
    G = (Y[:, :, None] * (Y @ V)[:, None, :] - Z[:, :, None] * (Z @ V)[:, None, :]) / nu[:, None, None]
    G = G.transpose(2, 1, 0).reshape(p * k, -1)
    s, Vt = right_singular(G)  # every right singular vector, without the p k x p k left factor
    rank = int(np.count_nonzero(s > AROUND_RTOL * s[0])) if s.size else 0
    N = Vt[rank:].T / nu[:, None]  # multipliers alpha (unscaled) whose combination vanishes on V
    if N.shape[1] == 0:
        return None
    YQ, ZQ = Y @ Q, Z @ Q
    M = np.einsum("ij,ia,ib->jab", N, YQ, YQ) - np.einsum("ij,ia,ib->jab", N, ZQ, ZQ)
    B = nu[:, None] * N
    top, bnorm = float(np.abs(M).max()), float(np.abs(B).sum(axis=0).max())
    if not (top > 0 and bnorm > 0):
        return None
    c = psd_in_span(M / top, B / bnorm)
    if c is None or not np.all(np.isfinite(c)):
        return None
    alpha = N @ c
    if not np.any(alpha):
        return None
    alpha = alpha / np.max(np.abs(alpha))
    keep = np.flatnonzero(alpha)
    return FaceStep(indices=live[keep], values=alpha[keep], rank=p - k, kind="combination")

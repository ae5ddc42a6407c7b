"""Adaptive learning from "which is closer?" answers: equality pairs by bisection on a scale.

The paper counts equality pairs; a sign-only agent (:class:`featlib.oracle.ComparisonOracle`) never
reveals the rescaling of Lemma 2.  But it can be *found*: the answer to ``compare(0, u, t w)`` is
``sign(u^T Phi* u - t^2 w^T Phi* w)``, a monotone function of ``t > 0``, so bisection on ``t``
brackets the scale ``t* = sqrt(u^T Phi* u / w^T Phi* w)`` that makes ``(u, t* w)`` an equality pair.

**Proved here (exact answers).**  :func:`bisect_pair` returns a bracket ``t_lo <= t* <= t_hi``
(every answer it used is consistent only with such a t*), found by exponential search on
``log2 t`` (at most ``2 + log2(max_exponent)`` comparisons for each side) and then ``bits``
bisection steps, each halving ``t_hi - t_lo``.  For the midpoint t, the pair ``(u, t w)`` has
relative residual ``|t*^2 - t^2| / (t*^2 + t^2)`` at most ``residual_bound`` (the worst case over the
bracket), which falls like ``2^-bits``: exponentially in the comparisons spent on the pair.
How residuals turn into an error on Phi* is :func:`featlib.experiments.least_squares_error`'s bound
``sin(angle) <= ||A v*|| / sigma_2``.

**Noisy answers** (:class:`featlib.noise.Flip`): either each answer is the majority of ``votes``
repeated comparisons (counted; a majority of v is wrong with probability at most
``exp(-2 v (1/2 - eps)^2)``, Hoeffding), or, better, :func:`probabilistic_bisect_pair` uses every
answer once in a posterior over the scale (``learn(..., flip=eps)``).  With noise the result is a
measurement, not a proof.
"""

from __future__ import annotations

import numpy as np

from . import _checks
from .feedback import PairFeedback
from .linalg import right_singular, smat, svec_outer
from .oracle import ComparisonOracle
from .solvers import solve

__all__ = ["bisect_pair", "probabilistic_bisect_pair", "noisy_queries", "learn_pairs", "learn", "angle_bound"]

#: most bisection steps per pair (a float64 interval stops shrinking after about 60)
MAX_BITS = 200
#: most repeated answers per comparison
MAX_VOTES = 10_001


def _directions(oracle, u, w, who):
    """The two sides of a pair, checked: float vectors of length p, both non-zero."""
    if not isinstance(oracle, ComparisonOracle):
        raise _checks.ArgumentTypeError(f"{who} expects a ComparisonOracle; got {type(oracle).__name__}.")
    u = _checks.finite_array(u, "u").astype(float).ravel()
    w = _checks.finite_array(w, "w").astype(float).ravel()
    if u.size != oracle.p or w.size != oracle.p:
        raise _checks.ShapeError(f"u and w must be vectors of length p = {oracle.p}; got {u.size} and {w.size}.")
    if not np.any(u) or not np.any(w):
        raise _checks.ArgumentError("u and w must be non-zero vectors (a zero side carries no comparison).")
    return u, w


def _check_max_exponent(max_exponent):
    max_exponent = _checks.check_positive_int(max_exponent, "max_exponent")
    if max_exponent > 1000:
        raise _checks.ArgumentError(f"max_exponent = {max_exponent}: scales beyond 2^1000 overflow float64; use at most 1000.")
    return max_exponent


def _check_flip(flip):
    flip = _checks.check_probability(flip, "flip")
    if flip >= 0.5:
        raise _checks.ArgumentError(f"flip must be below 0.5 (answers must carry information); got {flip}.")
    return flip


def _ask(oracle, u, w, t, votes):
    """Majority of ``votes`` answers of compare(0, u, t w)."""
    p = u.size
    if votes == 1:
        return int(oracle.compare(np.zeros(p), u, t * w))
    ans = oracle.compare(np.zeros((votes, p)), np.tile(u, (votes, 1)), np.tile(t * w, (votes, 1)))
    s = int(np.sum(ans))
    return int(np.sign(s))


def bisect_pair(oracle: ComparisonOracle, u, w, *, bits: int = 30, votes: int = 1, max_exponent: int = 64):
    """An approximate equality pair ``(u, t w)`` from sign answers alone (see the module docstring).

    Returns ``(y, z, info)``: the pair, and ``info`` with ``t``, the bracket ``t_lo`` / ``t_hi``,
    ``residual_bound`` (the largest relative residual of the pair for any t* in the bracket: a proof
    when the answers are exact), ``queries`` (comparisons spent) and ``kind``: "pair"; "tie" (an
    answer 0: t = the asked scale); "null y" when ``u^T Phi* u`` is below ``4^-max_exponent`` of
    ``w^T Phi* w`` (the pair becomes ``(u, 0)``); "null z" in the opposite case (``(w, 0)``).
    """
    u, w = _directions(oracle, u, w, "bisect_pair")
    bits = _checks.check_positive_int(bits, "bits", minimum=0)
    if bits > MAX_BITS:
        raise _checks.ArgumentError(f"bits = {bits}: after about 60 halvings a float64 interval stops shrinking; "
                                    f"use at most {MAX_BITS}.")
    votes = _checks.check_positive_int(votes, "votes")
    if votes % 2 == 0 or votes > MAX_VOTES:
        raise _checks.ArgumentError(f"votes must be odd (a majority) and at most {MAX_VOTES}; got {votes}.")
    max_exponent = _check_max_exponent(max_exponent)
    # an answer 0 (a tie) means |q(u) - t^2 q(w)| <= tie_rtol (q(u) + t^2 q(w)): that is its residual bound
    tie = float(oracle.tie_rtol)
    start = oracle.queries
    a = _ask(oracle, u, w, 1.0, votes)
    if a == 0:
        return u, w.copy(), {"t": 1.0, "t_lo": 1.0, "t_hi": 1.0, "residual_bound": tie,
                             "queries": oracle.queries - start, "kind": "tie"}
    # exponential search on log2 t: answer +1 means q(u) > t^2 q(w), so t* is larger
    lo_e, hi_e, e = 0, 0, 1
    while True:
        if e > max_exponent:
            if a > 0:  # q(w) negligible against q(u): w is (numerically) in the null space
                return w.copy(), np.zeros_like(w), {"t": np.inf, "t_lo": 2.0 ** max_exponent, "t_hi": np.inf,
                                                    "residual_bound": np.nan, "queries": oracle.queries - start,
                                                    "kind": "null z"}
            return u, np.zeros_like(u), {"t": 0.0, "t_lo": 0.0, "t_hi": 2.0 ** -max_exponent,
                                         "residual_bound": np.nan, "queries": oracle.queries - start, "kind": "null y"}
        b = _ask(oracle, u, w, 2.0 ** (a * e), votes)
        if b == 0:
            t = 2.0 ** (a * e)
            return u, t * w, {"t": t, "t_lo": t, "t_hi": t, "residual_bound": tie,
                              "queries": oracle.queries - start, "kind": "tie"}
        if b != a:
            lo_e, hi_e = (e // 2 if e > 1 else 0, e) if a > 0 else (-e, -(e // 2) if e > 1 else 0)
            break
        e *= 2
    t_lo, t_hi = 2.0 ** lo_e, 2.0 ** hi_e
    tied = False
    for _ in range(bits):
        t = 0.5 * (t_lo + t_hi)
        c = _ask(oracle, u, w, t, votes)
        if c == 0:
            t_lo = t_hi = t
            tied = True
            break
        if c > 0:
            t_lo = t
        else:
            t_hi = t
    t = 0.5 * (t_lo + t_hi)

    def rel(ts):
        return abs(ts * ts - t * t) / (ts * ts + t * t)

    return u, t * w, {"t": t, "t_lo": t_lo, "t_hi": t_hi, "residual_bound": tie if tied else max(rel(t_lo), rel(t_hi)),
                      "queries": oracle.queries - start, "kind": "pair"}


def probabilistic_bisect_pair(oracle: ComparisonOracle, u, w, flip: float, *, queries: int = 40,
                              max_exponent: int = 64):
    """The scale of a pair from *noisy* sign answers by probabilistic bisection (Horstein; Burnashev
    and Zigangirov): a posterior over ``s = log2 t`` (uniform on ``[-max_exponent, max_exponent]``,
    piecewise constant), each comparison asked at the posterior median and answered wrongly with
    probability ``flip`` (known to the learner), the posterior multiplied by ``1 - flip`` on the side
    the answer points to and by ``flip`` on the other.  After ``queries`` comparisons the pair is
    ``(u, t w)`` with t the posterior median.  Every answer is used once (no repetition): each
    carries ``1 - H(flip)`` bits (0.71 at flip = 0.05), so the precision per comparison is within that
    factor of noise-free bisection.  Returns ``(y, z, info)`` with ``info["interval"]``, the
    posterior's central 95 % interval for t: a *measurement* (a credible interval under the flip
    model), not a proof."""
    u, w = _directions(oracle, u, w, "probabilistic_bisect_pair")
    flip = _check_flip(flip)
    queries = _checks.check_positive_int(queries, "queries")
    if queries > 100 * MAX_BITS:
        raise _checks.ArgumentError(f"queries = {queries}: use at most {100 * MAX_BITS} comparisons per pair.")
    max_exponent = _check_max_exponent(max_exponent)
    edges = np.array([-float(max_exponent), float(max_exponent)])  # breakpoints of the posterior
    logw = np.array([0.0])  # log weight density of each segment
    keep, lose = np.log1p(-flip), (np.log(flip) if flip > 0 else -np.inf)

    def quantile(level):
        mass = np.exp(logw - logw.max()) * np.diff(edges)
        c = np.concatenate([[0.0], np.cumsum(mass)])
        target = level * c[-1]
        k = int(np.clip(np.searchsorted(c, target) - 1, 0, len(mass) - 1))
        return edges[k] + (target - c[k]) / mass[k] * (edges[k + 1] - edges[k]) if mass[k] > 0 else edges[k]

    start = oracle.queries
    for _ in range(queries):
        m = float(quantile(0.5))
        a = int(oracle.compare(np.zeros(oracle.p), u, 2.0 ** m * w))
        if a == 0:
            edges, logw = np.array([m, m + 1e-300]), np.array([0.0])
            break
        k = int(np.searchsorted(edges, m))  # split the segment containing m
        if 0 < k < len(edges) and edges[k] != m:
            edges = np.insert(edges, k, m)
            logw = np.insert(logw, k, logw[k - 1])
        above = edges[:-1] >= m  # segments to the right of m: t* larger
        logw = logw + np.where(above == (a > 0), keep, lose)
        logw = logw - logw.max()
    s_med = float(quantile(0.5))
    t = 2.0 ** s_med
    lo, hi = 2.0 ** float(quantile(0.025)), 2.0 ** float(quantile(0.975))
    return u, t * w, {"t": t, "interval": (lo, hi), "queries": oracle.queries - start, "kind": "pair"}


def noisy_queries(bits: int, flip: float, max_exponent: int = 64) -> int:
    """Comparisons per pair for :func:`probabilistic_bisect_pair` to aim at the precision of ``bits``
    noise-free halvings: ``ceil((bits + log2(2 max_exponent)) / (1 - H(flip)))``, H the binary entropy
    (the information one answer carries).  A rule from the channel capacity, not a guarantee."""
    bits = _checks.check_positive_int(bits, "bits", minimum=0)
    if bits > MAX_BITS:
        raise _checks.ArgumentError(f"bits = {bits}: use at most {MAX_BITS}.")
    flip = _check_flip(flip)
    max_exponent = _checks.check_positive_int(max_exponent, "max_exponent")
    h = 0.0 if flip == 0 else -(flip * np.log2(flip) + (1 - flip) * np.log2(1 - flip))
    return int(np.ceil((bits + np.log2(2 * max_exponent)) / (1.0 - h)))


def learn_pairs(oracle: ComparisonOracle, n: int, *, bits: int = 30, votes: int = 1, directions: str = "gaussian",
                s: int = 3, seed=None, flip: float | None = None):
    """``n`` approximate equality pairs by :func:`bisect_pair` (or, with ``flip`` given, by
    :func:`probabilistic_bisect_pair` with :func:`noisy_queries` comparisons each), against one
    Gaussian reference ``w``.

    ``directions``: "gaussian" (i.i.d. N(0, I) activations ``u``), "sparse" (``s`` non-zeros at
    uniform positions, values N(0, 1)), or "chosen" (adaptive in *directions* too: each u is the
    direction on which the candidate solutions disagree most.  With A the rows ``svec(y y^T - z z^T)``
    of the pairs so far (scaled to unit norm) and ``V`` the right singular vector of its second
    smallest singular value (the best-determined candidate is the smallest; ``V`` is the direction
    in which the candidates ``Phi_hat + c V`` are least pinned down), u is the unit eigenvector of
    ``smat(V)`` of largest absolute eigenvalue, which maximises ``|u^T smat(V) u|``, how much the
    candidates disagree about ``u^T Phi u``.  The first pair is Gaussian.)  Returns ``(feedback, info)`` with ``info["queries"]`` (all
    comparisons spent), ``info["per_pair"]`` (each pair's info) and ``info["residual_bound"]`` (the
    largest over the pairs, proved for exact answers; None with ``flip``, whose intervals are
    measurements, or when no pair has a bound)."""
    if not isinstance(oracle, ComparisonOracle):
        raise _checks.ArgumentTypeError(f"learn_pairs expects a ComparisonOracle; got {type(oracle).__name__}.")
    n = _checks.check_positive_int(n, "n")
    directions = _checks.check_method(directions, ("gaussian", "sparse", "chosen"), "directions")
    rng = _checks.as_generator(seed)
    p = oracle.p
    s = min(_checks.check_positive_int(s, "s"), p)
    w = rng.standard_normal(p)
    start = oracle.queries
    Y, Z, per = [], [], []
    for _ in range(n):
        if directions == "gaussian" or (directions == "chosen" and not Y):
            u = rng.standard_normal(p)
        elif directions == "chosen":
            u = _most_uncertain_direction(np.array(Y), np.array(Z))
        else:
            u = np.zeros(p)
            u[rng.choice(p, size=s, replace=False)] = rng.standard_normal(s)
        if flip is None:
            y, z, info = bisect_pair(oracle, u, w, bits=bits, votes=votes)
        else:
            y, z, info = probabilistic_bisect_pair(oracle, u, w, flip=flip, queries=noisy_queries(bits, flip))
        Y.append(y)
        Z.append(z)
        per.append(info)
    # a proved bound exists only for exact bisection (the posterior's interval is a measurement); null
    # pairs carry none; ties carry the agent's tie tolerance
    bounds = [i["residual_bound"] for i in per if i["kind"] in ("pair", "tie")] if flip is None else []
    return PairFeedback(np.array(Y), np.array(Z)), {
        "queries": oracle.queries - start, "per_pair": per,
        "residual_bound": float(max(bounds)) if bounds else None, "reference": w}


def angle_bound(feedback: PairFeedback, info: dict) -> dict:
    """A bound on the error of the least-squares estimate, proved from the learner's own data (no
    Phi* needed): for pairs from :func:`learn_pairs` with *exact* answers.

    Let ``A`` be the pairs' constraint rows ``a_k = svec(y_k y_k^T - z_k z_k^T)`` scaled to unit
    norm, ``v_hat`` its right singular vector of the smallest singular value (the least-squares
    estimate, :func:`featlib.experiments.least_squares_error`) and ``sigma_2`` the second smallest
    singular value.  With ``v* = svec(Phi*) / ||Phi*||_F``:

    * a pair ``(u, t w)`` whose bracket proves relative residual at most ``rho_k`` satisfies
      ``|u^T Phi* u - t^2 w^T Phi* w| <= rho_k (u^T Phi* u + t^2 w^T Phi* w)
      <= rho_k ||Phi*||_F (||u||^2 + t^2 ||w||^2)``, so ``|a_k . v*| <= e_k = rho_k (||u||^2 +
      t^2 ||w||^2) / ||u u^T - t^2 w w^T||_F`` (ties: rho_k = the agent's tie tolerance);
    * a pair ``(u, 0)`` (kind "null y": ``u^T Phi* u <= t_hi^2 w^T Phi* w``) has
      ``e_k = t_hi^2 ||w||^2 / ||u||^2``;
    * then ``sin(angle(v_hat, v*)) <= ||A v*|| / sigma_2 <= ||e|| / sigma_2``
      (:func:`featlib.experiments.least_squares_error` proves the first inequality).

    Every ``rho_k`` halves with each bisection step, so the bound falls like ``2^-bits``: exponentially
    in the comparisons per pair.  Returns ``bound`` (inf when a pair has no bound: noisy answers,
    kind "null z", or fewer than p(p+1)/2 - 1 informative pairs), ``sigma_2`` and ``residual``
    (``||e||``).  Rounding in computing the bound itself is not accounted for (it is of relative
    size 1e-15, far below the bounds it is used at)."""
    per = info.get("per_pair") if isinstance(info, dict) else None
    if per is None or len(per) != len(feedback):
        raise _checks.ArgumentError("angle_bound needs the info of learn_pairs for these very pairs (info['per_pair']).")
    Y, Z = feedback.dense_y(), feedback.dense_z()
    A, norms = _unit_constraint_rows(Y, Z)  # ||svec(y y^T - z z^T)|| = ||y y^T - z z^T||_F (isometric)
    e = np.zeros(len(per))
    for k, (y, z, it, norm_a) in enumerate(zip(Y, Z, per, norms)):
        kind, rho = it.get("kind"), it.get("residual_bound")
        if kind in ("pair", "tie") and rho is not None and np.isfinite(rho) and norm_a > 0:
            e[k] = float(rho) * (y @ y + z @ z) / norm_a
        elif kind == "null y" and norm_a > 0:
            w = info["reference"]
            e[k] = float(it["t_hi"]) ** 2 * float(w @ w) / norm_a
        else:
            e[k] = np.inf
    P = A.shape[1]
    if A.shape[0] < P - 1 or not np.all(np.isfinite(e)):
        return {"bound": float("inf"), "sigma_2": 0.0 if A.shape[0] < P - 1 else None, "residual": float(np.linalg.norm(e))}
    sv = np.linalg.svd(A, compute_uv=False)
    sv = np.concatenate([sv, np.zeros(max(0, P - sv.size))])
    sigma_2 = float(sv[P - 2])
    res = float(np.linalg.norm(e))
    return {"bound": res / sigma_2 if sigma_2 > 0 else float("inf"), "sigma_2": sigma_2, "residual": res}


def _unit_constraint_rows(Y, Z):
    """The pairs' constraint rows ``svec(y y^T - z z^T)`` scaled to unit norm (zero rows dropped), and
    every row's norm before scaling."""
    A = svec_outer(Y) - svec_outer(Z)
    norms = np.linalg.norm(A, axis=1)
    return A[norms > 0] / norms[norms > 0, None], norms


def _most_uncertain_direction(Y, Z):
    """The unit u maximising ``|u^T smat(V) u|`` for V the second smallest right singular vector of the
    normalised constraint rows of the pairs (Y, Z) (see :func:`learn_pairs`, directions="chosen")."""
    p = Y.shape[1]
    A = _unit_constraint_rows(Y, Z)[0]
    P = A.shape[1]
    if A.shape[0] == 0:
        V = np.zeros(P)
        V[0] = 1.0
    else:
        Vt = right_singular(A)[1]
        V = Vt[P - 2] if P >= 2 else Vt[-1]
    w, E = np.linalg.eigh(smat(V, p))
    return E[:, int(np.argmax(np.abs(w)))]


def learn(oracle: ComparisonOracle, n: int, *, bits: int = 30, votes: int = 1, directions: str = "gaussian",
          s: int = 3, seed=None, method: str = "sdp", flip: float | None = None):
    """Learn Phi (up to scale) from sign answers: :func:`learn_pairs`, then ``solve(feedback, method)``
    ("sdp": least squares on the PSD cone, the default, since the pairs are approximate; "exact"
    refuses pairs that are inconsistent beyond rounding).  Returns the :class:`featlib.Solution` with
    ``info["comparisons"]`` and ``info["residual_bound"]`` added.  What is measured, not proved: the
    accuracy of the answer (compare with :func:`featlib.pcc`)."""
    fb, info = learn_pairs(oracle, n, bits=bits, votes=votes, directions=directions, s=s, seed=seed, flip=flip)
    sol = solve(fb, method)
    sol.info["comparisons"] = info["queries"]
    sol.info["residual_bound"] = info["residual_bound"]
    return sol

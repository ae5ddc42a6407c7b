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

**Noisy answers** (:class:`featlib.noise.Flip`): each answer is the majority of ``votes`` repeated
comparisons (counted).  With flip probability eps a majority of v answers is wrong with probability
at most ``exp(-2 v (1/2 - eps)^2)`` (Hoeffding); a wrong answer can put t* outside the bracket, so
with noise the bracket is a measurement, not a proof.
"""

from __future__ import annotations

import numpy as np

from . import _checks
from .feedback import PairFeedback
from .oracle import ComparisonOracle
from .solvers import solve

__all__ = ["bisect_pair", "learn_pairs", "learn"]

#: most bisection steps per pair (a float64 interval stops shrinking after about 60)
MAX_BITS = 200
#: most repeated answers per comparison
MAX_VOTES = 10_001


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
    if not isinstance(oracle, ComparisonOracle):
        raise _checks.ArgumentTypeError(f"bisect_pair expects a ComparisonOracle; got {type(oracle).__name__}.")
    u = _checks.finite_array(u, "u").astype(float).ravel()
    w = _checks.finite_array(w, "w").astype(float).ravel()
    if u.size != oracle.p or w.size != oracle.p:
        raise _checks.ShapeError(f"u and w must be vectors of length p = {oracle.p}; got {u.size} and {w.size}.")
    if not np.any(u) or not np.any(w):
        raise _checks.ArgumentError("u and w must be non-zero vectors (a zero side carries no comparison).")
    bits = _checks.check_positive_int(bits, "bits", minimum=0)
    if bits > MAX_BITS:
        raise _checks.ArgumentError(f"bits = {bits}: after about 60 halvings a float64 interval stops shrinking; "
                                    f"use at most {MAX_BITS}.")
    votes = _checks.check_positive_int(votes, "votes")
    if votes % 2 == 0 or votes > MAX_VOTES:
        raise _checks.ArgumentError(f"votes must be odd (a majority) and at most {MAX_VOTES}; got {votes}.")
    max_exponent = _checks.check_positive_int(max_exponent, "max_exponent")
    if max_exponent > 1000:
        raise _checks.ArgumentError(f"max_exponent = {max_exponent}: scales beyond 2^1000 overflow float64; use at most 1000.")
    start = oracle.queries
    a = _ask(oracle, u, w, 1.0, votes)
    if a == 0:
        return u, w.copy(), {"t": 1.0, "t_lo": 1.0, "t_hi": 1.0, "residual_bound": 0.0,
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
            return u, t * w, {"t": t, "t_lo": t, "t_hi": t, "residual_bound": 0.0,
                              "queries": oracle.queries - start, "kind": "tie"}
        if b != a:
            lo_e, hi_e = (e // 2 if e > 1 else 0, e) if a > 0 else (-e, -(e // 2) if e > 1 else 0)
            break
        e *= 2
    t_lo, t_hi = 2.0 ** lo_e, 2.0 ** hi_e
    for _ in range(bits):
        t = 0.5 * (t_lo + t_hi)
        c = _ask(oracle, u, w, t, votes)
        if c == 0:
            t_lo = t_hi = t
            break
        if c > 0:
            t_lo = t
        else:
            t_hi = t
    t = 0.5 * (t_lo + t_hi)

    def rel(ts):
        return abs(ts * ts - t * t) / (ts * ts + t * t)

    return u, t * w, {"t": t, "t_lo": t_lo, "t_hi": t_hi, "residual_bound": max(rel(t_lo), rel(t_hi)),
                      "queries": oracle.queries - start, "kind": "pair"}


def learn_pairs(oracle: ComparisonOracle, n: int, *, bits: int = 30, votes: int = 1, directions: str = "gaussian",
                s: int = 3, seed=None):
    """``n`` approximate equality pairs by :func:`bisect_pair`, against one Gaussian reference ``w``.

    ``directions``: "gaussian" (i.i.d. N(0, I) activations ``u``) or "sparse" (``s`` non-zeros at
    uniform positions, values N(0, 1)).  Returns ``(feedback, info)`` with ``info["queries"]`` (all
    comparisons spent), ``info["per_pair"]`` (each pair's info) and ``info["residual_bound"]`` (the
    largest over the pairs)."""
    if not isinstance(oracle, ComparisonOracle):
        raise _checks.ArgumentTypeError(f"learn_pairs expects a ComparisonOracle; got {type(oracle).__name__}.")
    n = _checks.check_positive_int(n, "n")
    directions = _checks.check_method(directions, ("gaussian", "sparse"), "directions")
    rng = _checks.as_generator(seed)
    p = oracle.p
    s = min(_checks.check_positive_int(s, "s"), p)
    w = rng.standard_normal(p)
    start = oracle.queries
    Y, Z, per = [], [], []
    for _ in range(n):
        if directions == "gaussian":
            u = rng.standard_normal(p)
        else:
            u = np.zeros(p)
            u[rng.choice(p, size=s, replace=False)] = rng.standard_normal(s)
        y, z, info = bisect_pair(oracle, u, w, bits=bits, votes=votes)
        Y.append(y)
        Z.append(z)
        per.append(info)
    bounds = [i["residual_bound"] for i in per if i["kind"] == "pair"]
    return PairFeedback(np.array(Y), np.array(Z)), {
        "queries": oracle.queries - start, "per_pair": per,
        "residual_bound": float(max(bounds)) if bounds else 0.0, "reference": w}


def learn(oracle: ComparisonOracle, n: int, *, bits: int = 30, votes: int = 1, directions: str = "gaussian",
          s: int = 3, seed=None, method: str = "sdp"):
    """Learn Phi (up to scale) from sign answers: :func:`learn_pairs`, then ``solve(feedback, method)``
    ("sdp": least squares on the PSD cone, the default, since the pairs are approximate; "exact"
    refuses pairs that are inconsistent beyond rounding).  Returns the :class:`featlib.Solution` with
    ``info["comparisons"]`` and ``info["residual_bound"]`` added.  What is measured, not proved: the
    accuracy of the answer (compare with :func:`featlib.pcc`)."""
    fb, info = learn_pairs(oracle, n, bits=bits, votes=votes, directions=directions, s=s, seed=seed)
    sol = solve(fb, method)
    sol.info["comparisons"] = info["queries"]
    sol.info["residual_bound"] = info["residual_bound"]
    return sol

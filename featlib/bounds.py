"""Closed-form feedback-complexity bounds of Kumar (ICML 2025), with the counting convention stated.

Counting convention
-------------------
Every function returns a number of *feedback pairs* (equality pairs ``(y, z)`` after Lemma 2's
rescaling), except :func:`sampled` and :func:`sparse_sampled`, which count *sampled activations*
as the paper's Theorems 3 and 4 do.

The paper is not consistent about the +-1 in Theorem 1 (digest section 3.3):

* Theorem 1 states Theta(r(r+1)/2 + (p - r) - 1);
* Table 1 prints Theta(r(r+1)/2 + p - r + 1);
* every experiment sends exactly r(r+1)/2 + p - r pairs (38 for p = 10, r = 8; 134,912 for
  p = 4096, r = 512).

featlib follows the experiments: :func:`constructive_low_rank` is r(r+1)/2 + p - r, which is what
``teach(..., "eigen")`` returns.  One of those pairs is linearly redundant (the r(r+1)/2 kernel
pairs span only an r(r+1)/2 - 1 dimensional space), which is the theorem's "-1".

The theorem's claim that r(r+1)/2 + (p - r) - 1 is *tight* is false for 3 <= r <= p - 2:
:func:`constructive_minimum` is the exact count (proved in its docstring and in the book), and
``teach(..., "compact")`` achieves it.
"""

from __future__ import annotations

import math

from . import _checks

__all__ = [
    "constructive_low_rank",
    "constructive_paper",
    "constructive_minimum",
    "constructive_compact",
    "full_rank_lower",
    "sparse_constructive",
    "sampled",
    "sparse_sampled",
    "sparse_raw_success_upper",
    "convex_phase_transition",
    "sparse_sampled_log_ps",
    "sparse_usable_probability",
    "sparse_touch_probability",
    "sparse_failure_lower",
    "low_rank_dof",
    "majority_votes",
]


def _p(p) -> int:
    return _checks.check_positive_int(p, "p")


def constructive_low_rank(p: int, r: int) -> int:
    """Theorem 1 (experiments' convention): ``r(r+1)/2 + (p - r)`` constructive pairs for rank r.

    The pairs are r(r+1)/2 kernel pairs (Lemma 3's basis against a reference) and p - r null-space
    pairs ``(0, v)``.  The theorem's count is one less, ``r(r+1)/2 + (p - r) - 1``, because one
    kernel pair is redundant (:func:`constructive_paper`; the paper calls it tight, which is false
    for 3 <= r <= p - 2: see :func:`constructive_minimum`); Table 1 of the paper prints "+1".
    ``constructive_low_rank(10, 8) == 38``.
    """
    p = _p(p)
    r = _checks.check_positive_int(r, "r", minimum=0)
    if r > p:
        raise _checks.ArgumentError(f"the rank r = {r} cannot exceed p = {p}.")
    return r * (r + 1) // 2 + (p - r)


def constructive_paper(p: int, r: int) -> int:
    """The count Theorem 1 of the paper claims is tight: ``r(r+1)/2 + (p - r) - 1``.

    **False as a lower bound for 3 <= r <= p - 2** (it is right for r <= 2 and r >= p - 1): the
    compact construction identifies every rank-r target with :func:`constructive_minimum` pairs,
    fewer than this.  Where the paper's proof breaks: its Lemma 11 concludes that ``v v^T`` lies in
    the span of the feedback for every null vector v, but a PSD *combination* of pairs can kill the
    whole null space at once (no single pair need be semidefinite).  Kept to compare with.
    """
    p = _p(p)
    r = _checks.check_positive_int(r, "r", minimum=0)
    if r > p:
        raise _checks.ArgumentError(f"the rank r = {r} cannot exceed p = {p}.")
    return r * (r + 1) // 2 + (p - r) - 1


def constructive_minimum(p: int, r: int) -> int:
    """The exact constructive feedback complexity of a rank-r target (proved here, not in the paper).

    ``p(p+1)/2 - 1`` if r = p; ``p - 1`` if r = 1 < p; ``max(p, r(r+1)/2)`` if 2 <= r < p; 0 for
    p = 1.  It holds for *every* target of rank r, not only the worst one.

    **Upper bound**: ``teach(phi, "compact")`` sends exactly this many pairs and they identify
    (:func:`featlib.constructions.compact_canonical`; the solver's certificates are re-checked
    exactly for every r at p <= 12 in the tests).

    **Lower bounds** (each a short proof; the book's Theorem 1 chapter writes them out):

    * r = p (Proposition 1 of the paper): the pairs' matrices must span the p(p+1)/2 - 1
      dimensional complement of Phi* (else a small perturbation of Phi* in the missing direction
      stays PSD and satisfies every pair).
    * any r, n pairs: choose signs s_k and let U = {w : y_k^T w = s_k z_k^T w for all k}, of
      dimension >= p - n.  For w, w' in U, ``w^T (y_k y_k^T - z_k z_k^T) w' = 0``, so every PSD
      matrix with range in U satisfies every pair.  If n <= p - 2, U holds two independent
      vectors u, u' and u u^T, u' u'^T are non-equivalent solutions; if r >= 2 and n <= p - 1,
      a rank-one solution w w^T exists, not a multiple of Phi*.  Hence n >= p - 1, and n >= p
      when r >= 2.
    * 1 <= r < p: some PSD Phi* + eps Delta with Delta supported on range(Phi*) solves every pair
      unless the pairs' range blocks span the r(r+1)/2 - 1 dimensional complement of Phi* there;
      and, since no PD matrix is a solution, the theorem of the alternative gives multipliers
      alpha != 0 with ``sum_k alpha_k (y_k y_k^T - z_k z_k^T)`` PSD and orthogonal to Phi*, so
      zero on range(Phi*): a linear dependency among the n range blocks.  So n - 1 >=
      r(r+1)/2 - 1.

    Examples
    --------
    Below the paper's count for 2 <= r < p, equal to it at r = 1 and r = p:

    >>> from featlib import bounds
    >>> [(r, bounds.constructive_minimum(10, r), bounds.constructive_paper(10, r)) for r in (1, 3, 5, 10)]
    [(1, 9, 9), (3, 10, 12), (5, 15, 19), (10, 54, 54)]
    """
    p = _p(p)
    r = _checks.check_positive_int(r, "r")
    if r > p:
        raise _checks.ArgumentError(f"the rank r = {r} cannot exceed p = {p}.")
    if r == p:
        return p * (p + 1) // 2 - 1
    if r == 1:
        return p - 1
    return max(p, r * (r + 1) // 2)


def constructive_compact(p: int, r: int) -> int:
    """Number of pairs ``teach(phi, "compact")`` sends for a rank-r target: equal to
    :func:`constructive_minimum` (the construction is optimal)."""
    return constructive_minimum(p, r)


def full_rank_lower(p: int) -> int:
    """Proposition 1: worst-case constructive lower bound ``p(p+1)/2 - 1`` (full-rank Phi*)."""
    p = _p(p)
    return p * (p + 1) // 2 - 1


def sparse_constructive(p: int) -> int:
    """Theorem 2: ``p(p+1)/2`` pairs with 2-sparse activations ``e_i`` and ``e_i + e_j``.

    One of them, the reference paired with itself, is trivial, so p(p+1)/2 - 1 pairs carry
    information, matching :func:`full_rank_lower`.  Counted as the paper's experiments do
    (8,390,656 for p = 4096).
    """
    p = _p(p)
    return p * (p + 1) // 2


def low_rank_dof(p: int, r: int) -> int:
    """Degrees of freedom of a rank-r p x p PSD matrix up to scale: ``r p - r(r-1)/2 - 1``.

    Not one of the paper's theorems: the dimension of the manifold of rank-r PSD matrices
    (``Phi = U U^T`` with U modulo rotations) less one for the scale.  A counting argument, valid
    for pairs in *general position* (sampled ones): when the n pair equations have independent
    differentials on that manifold at Phi*, n < dof leaves a manifold of rank-r PSD solutions
    through Phi*, so such pairs cannot identify it even for a learner that knows the rank.  It is
    **not** a lower bound for constructed pairs: the compact construction identifies a rank-512
    target at p = 4096 with 131,328 pairs, far below 1,966,335.
    """
    p = _p(p)
    r = _checks.check_positive_int(r, "r")
    if r > p:
        raise _checks.ArgumentError(f"the rank r = {r} cannot exceed p = {p}.")
    return r * p - r * (r - 1) // 2 - 1


def sampled(p: int) -> int:
    """Theorem 3: ``p(p+1)/2`` i.i.d. (Lebesgue-distributed) sampled activations.

    Counted in *samples*: one serves as the reference, the other p(p+1)/2 - 1 are each paired with
    it, giving p(p+1)/2 - 1 pairs that identify Phi* almost surely.
    """
    p = _p(p)
    return p * (p + 1) // 2


def sparse_sampled_log_ps(p: int, s: int, mu: float) -> float:
    """Natural log of the paper's ``p_s`` (Eq. 28) for zero-probability ``mu`` and sparsity cap ``s``.

    With ``q = 1 - mu`` (probability that a coordinate is non-zero) and ``P = p(p+1)/2``::

        P1  = sum_{i=0}^{s-1} C(p-1, i) q^(i+1) (1-q)^(p-1-i)
        P2  = sum_{i=0}^{s-2} C(p-2, i) q^(i+2) (1-q)^(p-2-i)
        p_s = P! * P1^p * P2^(P-p)

    Warning: the ``P!`` factor makes ``p_s`` exceed 1 for many parameters (for p = 10, s = 4,
    mu = 0.6, ``p_s`` is about 3.9e7), so it is not a probability there; see :func:`sparse_sampled`.
    """
    p = _p(p)
    s = _checks.check_positive_int(s, "s", minimum=2)
    mu = _checks.check_probability(mu, "mu", closed_low=False, closed_high=False)
    if s >= p + 1:
        raise _checks.ArgumentError(f"the sparsity s = {s} must be at most p = {p}.")
    q = 1.0 - mu
    P = p * (p + 1) // 2
    P1 = sum(math.comb(p - 1, i) * q ** (i + 1) * (1 - q) ** (p - 1 - i) for i in range(0, s))
    P2 = sum(math.comb(p - 2, i) * q ** (i + 2) * (1 - q) ** (p - 2 - i) for i in range(0, s - 1)) if p >= 2 else 0.0
    if P1 <= 0 or (P > p and P2 <= 0):
        return -math.inf
    log_p2_term = (P - p) * math.log(P2) if P > p else 0.0
    return math.lgamma(P + 1) + p * math.log(P1) + log_p2_term


def sparse_sampled(p: int, s: int, mu: float, delta: float, *, exact: bool = False):
    """Theorem 4's sample count as the paper's figures evaluate it (not a valid guarantee; see below).

    ``N = p^2 * (log(2/delta) / p_s^2)^(1/P)`` with ``P = p(p+1)/2`` and ``p_s`` from
    :func:`sparse_sampled_log_ps`, computed in log space (``55!`` overflows a float).  Returns
    ``int(N)`` (the paper's figures truncate) or the float with ``exact=True``.

    This reproduces the paper's "Theory" numbers: ``sparse_sampled(10, 4, 0.8, 0.05) == 117`` and
    ``sparse_sampled(10, 4, 0.6, 0.1) == 54``.

    The paper is inconsistent here (digest section 3.6), and we document rather than hide it:

    * the main text states ``O(p^2 ((2/p_s^2) log(2/delta))^(1/p^2))`` (109.9 and 71.8 for the two
      settings above), the appendix derives ``(P/e) ((1/p_s^2) log(4/delta^2))^(1/(2P))`` (22.0 and
      15.0), and neither gives the figures' 117 and 54; the formula above, reverse-engineered, does;
    * ``p_s`` contains ``P!`` and exceeds 1 for moderate ``mu`` (about 3.9e7 for mu = 0.6), so
      it is not a probability there; the "bound" for mu = 0.6 is 54 raw draws, fewer than the
      p(p+1)/2 = 55 samples that a full-rank target needs (Theorem 3 and Proposition 1), and about
      a third of those draws have more than s non-zeros and are not usable
      (:func:`sparse_usable_probability`);
    * no constant makes it a guarantee for all delta: n must grow like log(1/delta)
      (:func:`sparse_failure_lower`), while the formula grows like log(2/delta)^(1/P).
      Treat the number as the paper's heuristic, not a guarantee.
    """
    p = _p(p)
    delta = _checks.check_probability(delta, "delta", closed_low=False, closed_high=False)
    P = p * (p + 1) // 2
    log_ps = sparse_sampled_log_ps(p, s, mu)
    if log_ps == -math.inf:
        value = math.inf
    else:
        log_n = 2 * math.log(p) + (math.log(math.log(2 / delta)) - 2 * log_ps) / P
        value = math.exp(log_n)
    if exact:
        return value
    if math.isinf(value):
        raise OverflowError(f"the bound is infinite for p={p}, s={s}, mu={mu} (p_s = 0).")
    return int(value)


def sparse_usable_probability(p: int, s: int, mu: float) -> float:
    """Probability that one raw draw of Assumption 1 has at most ``s`` non-zeros (is usable).

    featlib's ``teach(..., "sparse-sampled", s=s)`` draws conditionally on this event, so its ``n``
    counts *usable* samples; the paper's P1 and P2 include the event, so its N counts *raw* draws:
    divide featlib's n by this to compare (for p = 10, s = 4, mu = 0.6 it is about 0.63).
    """
    p = _p(p)
    s = _checks.check_positive_int(s, "s", minimum=0)
    mu = _checks.check_probability(mu, "mu")
    q = 1.0 - mu
    return float(sum(math.comb(p, k) * q ** k * mu ** (p - k) for k in range(0, min(s, p) + 1)))


def sparse_touch_probability(p: int, s: int, mu: float, *, usable: bool = True) -> float:
    """Probability that one sample's support contains two given coordinates i != j.

    With ``usable=True`` the sample is drawn conditionally on at most ``s`` non-zeros (featlib's
    sampler), else it is a raw draw that must also be usable.  If no sample touches (i, j), the
    entry Phi_ij appears in no pair's equation, and a full-rank target is not identified (a small
    change of that entry keeps it PSD); hence :func:`sparse_failure_lower`.
    """
    p = _p(p)
    if p < 2:
        return 0.0
    s = _checks.check_positive_int(s, "s", minimum=0)
    mu = _checks.check_probability(mu, "mu")
    q = 1.0 - mu
    both = sum(math.comb(p, k) * q ** k * mu ** (p - k) * (k * (k - 1)) / (p * (p - 1))
               for k in range(2, min(s, p) + 1))
    if not usable:
        return float(both)
    denom = sparse_usable_probability(p, s, mu)
    return float(both / denom) if denom > 0 else 0.0


def sparse_failure_lower(p: int, s: int, mu: float, n: int) -> float:
    """A lower bound on the probability that n usable samples do not identify a full-rank target:
    ``(1 - pi)^n`` with pi = :func:`sparse_touch_probability` (the chance that one given entry is
    touched by a sample).  So n must grow at least like ``log(1/delta) / pi``, linearly in
    log(1/delta), while the paper's Theorem 4 formula grows like ``(log(2/delta))^(1/P)``: no
    constant in front of it can make it a valid bound for all delta.
    """
    pi = sparse_touch_probability(p, s, mu)
    n = _checks.check_positive_int(n, "n", minimum=0)
    return float((1.0 - pi) ** n)


def sparse_raw_success_upper(p: int, s: int, mu: float, n_raw: int) -> float:
    """An upper bound on the probability that ``n_raw`` *raw* draws of Assumption 1 (the paper's
    reading of its N) identify a full-rank target: the probability that at least p(p+1)/2 - 1 of
    them are usable (at most ``s`` non-zeros).  Proved: with fewer pairs than p(p+1)/2 - 1 the pair
    equalities leave at least two independent solutions, and a positive definite target plus a
    small multiple of the other stays PSD, so the target is not identified.
    """
    p = _p(p)
    n_raw = _checks.check_positive_int(n_raw, "n_raw", minimum=0)
    q = sparse_usable_probability(p, s, mu)
    need = p * (p + 1) // 2 - 1
    if need > n_raw:
        return 0.0
    # the binomial tail, summed in log space (n_raw can be large and q^m tiny)
    logs = [math.lgamma(n_raw + 1) - math.lgamma(m + 1) - math.lgamma(n_raw - m + 1)
            + (m * math.log(q) if q > 0 else (0.0 if m == 0 else -math.inf))
            + ((n_raw - m) * math.log1p(-q) if q < 1 else (0.0 if m == n_raw else -math.inf))
            for m in range(need, n_raw + 1)]
    top = max(logs)
    if top == -math.inf:
        return 0.0
    return float(min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs)))


def convex_phase_transition(p: int, r: int) -> dict:
    """The conic-geometry *prediction* of how many random linear measurements identify a rank-r
    PSD target by the PSD constraint alone (what the exact and SDP solvers decide).

    Derivation (Amelunxen, Lotz, McCoy and Tropp, *Living on the edge*, 2014, applied here).  The
    pairs identify Phi* when the null space of their constraints meets the cone of feasible
    directions at Phi*, modulo the ray of Phi*, only in 0.  With Phi* = U diag(gamma) U^T of rank r
    and U_perp a basis of its kernel, a direction Delta = [[A, B], [B^T, C]] in the basis [U, U_perp]
    is feasible (Phi* + t Delta >= 0 for small t > 0) when C >= 0: the tangent cone is a subspace of
    dimension r(r+1)/2 + r(p-r) times the PSD cone of size m = p - r, whose statistical dimension is
    m(m+1)/4 (it is self-dual up to sign, so delta(C) + delta(-C) = m(m+1)/2).  Quotienting by the
    ray of Phi* (which lies in the subspace part) removes 1.  ALMT: a uniformly random subspace of
    codimension n in the ambient space (here Sym(p) modulo the ray, dimension D - 1 with
    D = p(p+1)/2) meets a closed convex cone of statistical dimension delta beyond 0 with probability
    near 1 when n < delta and near 0 when n > delta, the change happening within a window of order
    sqrt(D) (their Theorem I: outside ``delta -+ a_eta sqrt(D)``, ``a_eta = sqrt(8 log(4 / eta))``,
    the probability is within eta of 0 or 1).

    **What kind of statement this is.**  A *prediction* for pair feedback: ALMT's theorem is for
    uniformly random (rotation-invariant) subspaces; the constraints ``y y^T - z z^T`` of sampled
    pairs are not rotation-invariant in Sym(p), so the measured transition may sit elsewhere
    (measured in the chapter and by :func:`featlib.experiments.phase_transition`).  With fewer than
    :func:`low_rank_dof` pairs no learner identifies (a counting argument, for pairs in general
    position: a manifold of rank-r solutions remains; at exactly dof pairs finitely many are left,
    and at full rank, dof = p(p+1)/2 - 1, exactly one); a rank-aware learner may succeed between that
    and this prediction.

    Returns a dict: ``n_star`` (delta - 1, the predicted 50 % point), ``delta`` (the tangent cone's
    statistical dimension), ``width`` (sqrt(D - 1): the scale of the window), ``eta_window``
    (a_eta sqrt(D - 1) for eta = 0.05: the proved half-width of the window for isotropic
    measurements), ``dof`` (:func:`low_rank_dof`) and ``full_rank`` (p(p+1)/2 - 1).
    """
    p = _p(p)
    r = _checks.check_positive_int(r, "r")
    if r > p:
        raise _checks.ArgumentError(f"the rank r = {r} cannot exceed p = {p}.")
    m = p - r
    D = p * (p + 1) // 2
    delta = r * (r + 1) / 2 + r * m + m * (m + 1) / 4
    return {"n_star": delta - 1.0, "delta": delta, "width": math.sqrt(D - 1) if D > 1 else 0.0,
            "eta_window": math.sqrt(8 * math.log(4 / 0.05)) * math.sqrt(max(D - 1, 0)),
            "dof": low_rank_dof(p, r), "full_rank": D - 1}


def majority_votes(steps: int, flip: float, eta: float) -> int:
    """The smallest odd number v of repeated answers per comparison such that, when each answer is
    flipped independently with probability ``flip`` < 1/2, *every* one of ``steps`` majority answers
    is right with probability at least ``1 - eta``.

    Proved (Hoeffding, then a union bound): a majority of v answers is wrong with probability at most
    ``exp(-2 v (1/2 - flip)^2)``, so ``steps * exp(-2 v (1/2 - flip)^2) <= eta`` suffices, i.e.
    ``v >= log(steps / eta) / (2 (1/2 - flip)^2)``.  With every answer right, the noise-free
    guarantees of :mod:`featlib.active` hold.  A sufficient count, not the least one that works in
    practice (measured in the chapter "Counting comparisons").
    ``majority_votes(660, 0.05, 0.05) == 25``.
    """
    steps = _checks.check_positive_int(steps, "steps")
    flip = _checks.check_probability(flip, "flip")
    eta = _checks.check_probability(eta, "eta")
    if flip >= 0.5:
        raise _checks.ArgumentError(f"flip must be below 1/2 (answers must carry information); got {flip}.")
    if not 0 < eta < 1:
        raise _checks.ArgumentError(f"eta must be in (0, 1); got {eta}.")
    if flip == 0:
        return 1  # exact answers: one each
    v = max(math.ceil(math.log(steps / eta) / (2 * (0.5 - flip) ** 2)), 1)
    return v if v % 2 == 1 else v + 1

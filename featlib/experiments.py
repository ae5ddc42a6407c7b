"""The measurements the book's chapters make, as tested library calls.

Each function composes :func:`featlib.teach` and :func:`featlib.solve`; notebooks call these and
plot or assert what they return.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from . import _checks
from ._checks import IdentifiabilityWarning
from .feedback import PairFeedback, padded_rows
from .linalg import svec_dim
from .metrics import pcc, relative_error
from .solvers import solve
from .solvers.near import NEAR_AUTO_MAX_P, near_solutions
from .solvers.reduce import quiet_solve
from .teachers import teach
from . import bounds, surrogate
from ._checks import psd_matrix
from .bounds import low_rank_dof, sparse_sampled_log_ps
from .certificates import EXACT_MAX_UNKNOWNS_INTEGER, verify
from .datasets import integer_factor, random_feature_matrix
from .feedback import Agent
from .linalg import numerical_rank, psd_project, right_singular, smat, svec
from .noise import Flip
from .triplets import sample_triplets

__all__ = [
    "linear_solution_dim",
    "design_rank",
    "version_space_curve",
    "minimal_prefix",
    "success_curve",
    "irreducible_subset",
    "minimum_search",
    "random_pairs",
    "coverage",
    "least_squares_error",
    "triplet_curve",
    "pattern_probability",
    "below_dof_curve",
    "BELOW_DOF_METHODS",
    "phase_transition",
    "PHASE_OUTCOMES",
]

#: the learners compared by :func:`below_dof_curve`
BELOW_DOF_METHODS = ("identity", "gd", "svp", "svp+gd")


def _feedback(feedback, what):
    if not isinstance(feedback, PairFeedback):
        raise _checks.ArgumentTypeError(f"{what} expects a PairFeedback (e.g. from featlib.teach); got "
                                        f"{type(feedback).__name__}.")
    return feedback


def _seed_list(seeds) -> list:
    """A non-empty list of seeds from an iterable."""
    try:
        seeds = list(seeds)
    except TypeError:
        raise _checks.ArgumentTypeError(f"seeds must be an iterable of seeds; got {type(seeds).__name__}.") from None
    if not seeds:
        raise _checks.ArgumentError("need at least one seed.")
    return seeds


def _ints(values, name):
    """A 1-D array of integers from an iterable of integers (refusing floats, strings, bools)."""
    try:
        vals = list(values)
    except TypeError:
        raise _checks.ArgumentTypeError(f"{name} must be an iterable of integers; got {type(values).__name__}.") from None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in vals):
        raise _checks.ArgumentTypeError(f"{name} must hold integers; got {vals[:5]!r}.")
    return np.asarray(vals, dtype=np.int64)


def design_rank(feedback: PairFeedback) -> int:
    """Rank of the n x p(p+1)/2 constraint ("design") matrix of the pairs."""
    A = _feedback(feedback, "design_rank").constraints().toarray()
    if A.size == 0:
        return 0
    return int(np.linalg.matrix_rank(A))


def linear_solution_dim(feedback: PairFeedback) -> int:
    """Dimension of the symmetric matrices satisfying the pair equalities, ignoring PSD.

    ``p(p+1)/2 - rank``: what plain least squares on the equalities leaves undetermined.
    """
    return svec_dim(_feedback(feedback, "linear_solution_dim").p) - design_rank(feedback)


def _solve_quiet(fb, method="exact"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdentifiabilityWarning)
        return solve(fb, method)


def version_space_curve(feedback: PairFeedback, counts=None, *, method: str = "exact"):
    """Version-space dimension after the first k pairs, for each k in ``counts``.

    Returns ``(counts, psd_dims, linear_dims, identified)`` as arrays: the dimension the PSD-aware
    solver sees, the purely linear one, and whether the first k pairs identify the matrix.
    ``counts`` defaults to 0, 1, ..., n.
    """
    n = len(_feedback(feedback, "version_space_curve"))
    counts = np.arange(n + 1) if counts is None else _ints(counts, "counts")
    if counts.size and (counts.min() < 0 or counts.max() > n):
        raise _checks.ArgumentError(f"counts must lie in [0, {n}].")
    psd, lin, ident = [], [], []
    for k in counts:
        sub = feedback[: int(k)]
        sol = _solve_quiet(sub, method)
        psd.append(sol.version_space_dim)
        lin.append(linear_solution_dim(sub))
        ident.append(sol.identified)
    return counts, np.array(psd), np.array(lin), np.array(ident)


def minimal_prefix(feedback: PairFeedback, *, method: str = "exact") -> int | None:
    """Smallest k such that the first k pairs identify the matrix (None if all n do not).

    Identification is monotone in k (more pairs never enlarge the version space), so this is a
    binary search over prefixes.
    """
    n = len(_feedback(feedback, "minimal_prefix"))
    if not _solve_quiet(feedback, method).identified:
        return None
    lo, hi = 0, n  # the first hi pairs identify; the first lo do not (or lo = 0 untested)
    if _solve_quiet(feedback[:0], method).identified:
        return 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _solve_quiet(feedback[:mid], method).identified:
            hi = mid
        else:
            lo = mid
    return hi


def success_curve(phi_star, teacher: str, ns, seeds, *, tol: float = 1e-6, method: str = "exact", **options):
    """Empirical identification frequency and PCC against the number of pairs n.

    For each n in ``ns`` and each seed, draw ``teach(phi_star, teacher, n=n, seed=seed, **options)``,
    solve it and record whether it is identified with relative error <= ``tol`` and the PCC of the
    answer with ``phi_star``.  Returns a dict of arrays: ``n``, ``success`` (fraction over seeds),
    ``pcc_mean``, ``pcc_min``, ``rel_err_median`` and the raw ``pcc`` / ``ok`` tables (n x seeds).
    """
    ns = _ints(ns, "ns")
    if ns.size and ns.min() < 0:
        raise _checks.ArgumentError(f"ns must be non-negative numbers of pairs; got {ns.min()}.")
    seeds = _seed_list(seeds)
    phi_star = _checks.psd_matrix(phi_star, "phi_star")
    ok = np.zeros((ns.size, len(seeds)), dtype=bool)
    pccs = np.zeros((ns.size, len(seeds)))
    errs = np.zeros((ns.size, len(seeds)))
    for i, n in enumerate(ns):
        for j, seed in enumerate(seeds):
            fb = teach(phi_star, teacher, n=int(n), seed=seed, **options)
            sol = _solve_quiet(fb, method)
            errs[i, j] = relative_error(sol.phi, phi_star)
            ok[i, j] = bool(sol.identified and errs[i, j] <= tol)
            pccs[i, j] = pcc(sol.phi, phi_star) if phi_star.size > 1 else 1.0
    return {
        "n": ns,
        "success": ok.mean(axis=1),
        "pcc_mean": pccs.mean(axis=1),
        "pcc_min": pccs.min(axis=1),
        "rel_err_median": np.median(errs, axis=1),
        "ok": ok,
        "pcc": pccs,
    }


def irreducible_subset(feedback: PairFeedback, *, method: str = "exact", seed=0) -> np.ndarray:
    """Indices of an irreducible identifying subset, found by greedy removal.

    Visit the pairs in a random order (``seed``) and drop each one whose removal keeps the
    feedback identifying.  Every pair left is then necessary: removing any one of them loses
    identification.  **Irreducible is not minimum**: its size is an upper bound on the smallest
    identifying set *drawn from these pairs*, and says nothing about sets built from other pairs
    (for Theorem 1's eigen pairs it is r(r+1)/2 + (p - r) - 1, while other pairs identify with
    :func:`featlib.bounds.constructive_minimum`).  Raises ``ValueError`` if the whole set does not
    identify.
    """
    if not _solve_quiet(feedback, method).identified:
        raise _checks.ArgumentError("the feedback does not identify the matrix, so no subset does.")
    rng = _checks.as_generator(seed)
    keep = np.ones(len(feedback), dtype=bool)
    for k in rng.permutation(len(feedback)):
        keep[k] = False
        if not _solve_quiet(feedback[keep], method).identified:
            keep[k] = True
    return np.flatnonzero(keep)


def random_pairs(phi_star, n: int, *, seed=None) -> PairFeedback:
    """n equality pairs in general position: Gaussian y and w, with w rescaled by the agent
    (Lemma 2) so that ``y^T Phi* y = z^T Phi* z``; dense storage."""
    agent = phi_star if isinstance(phi_star, Agent) else Agent(phi_star)
    n = _checks.check_positive_int(n, "n", minimum=0)
    _checks.check_allocation(4 * 8 * n * agent.p, f"{n:,} dense pairs in dimension {agent.p}")
    rng = _checks.as_generator(seed)
    Y = rng.standard_normal((n, agent.p))
    W = rng.standard_normal((n, agent.p))
    qy, qw = agent.quadratic(Y), agent.quadratic(W)
    c = np.where(qw > 0, np.clip(qy, 0, None) / np.where(qw > 0, qw, 1.0), 0.0)
    return PairFeedback(Y, np.sqrt(c)[:, None] * W, meta={"teacher": "random"})


def minimum_search(phi_star, *, pool=("eigen", "compact"), n_random: int = 0, restarts: int = 4,
                   seed=0) -> dict:
    """Search for small identifying feedback sets: a measurement, not an assumption.

    The candidate pairs are the union of the given teachers' pairs (dense storage) and
    ``n_random`` pairs in general position (:func:`random_pairs`).  Each restart
    visits the candidates part by part, in a random order of the parts (restart t keeps part t for
    last, so each part gets a turn) and a random order within each, and drops every pair whose removal keeps the rest identifying (the exact solver, with its
    PSD-combination search); the result is irreducible, and the smallest one's certificate is
    re-checked with :func:`featlib.verify`.  The proved minimum
    (:func:`featlib.bounds.constructive_minimum`) is reported beside the sizes found: nothing
    found can be smaller (a test checks it), and a size equal to it is a certified minimum.

    A pair whose removal leaves a problem the solver cannot decide is kept: only certified
    decisions shrink the set (mixing generic random pairs with structured ones makes that happen).

    Returns a dict: ``sizes`` (one per restart), ``best`` (the smallest identifying PairFeedback
    found), ``certificate`` and ``verified`` (its :class:`~featlib.certificates.Verification`),
    ``pool_size``, ``rank``, ``minimum`` (proved) and ``paper`` (the paper's claimed count).
    """

    phi_star = _checks.psd_matrix(phi_star, "phi_star")
    p = phi_star.shape[0]
    r = numerical_rank(phi_star)
    rng = _checks.as_generator(seed)
    if isinstance(pool, str):
        pool = (pool,)
    try:
        pool = tuple(pool)
    except TypeError:
        raise _checks.ArgumentTypeError(f"pool must be a list of constructive teacher names; got {pool!r}.") from None
    for t in pool:
        _checks.check_method(t, ("eigen", "compact", "sparse"), "pool teacher")
    restarts = _checks.check_positive_int(restarts, "restarts")
    n_random = _checks.check_positive_int(n_random, "n_random", minimum=0)
    parts = [teach(phi_star, t).to_dense() for t in pool]
    if n_random:
        parts.append(random_pairs(phi_star, n_random, seed=rng))
    cand = PairFeedback.concat(parts)
    if not _solve_quiet(cand).identified:
        raise _checks.ArgumentError("the candidate pool does not identify the target, so no subset of it does.")
    starts = np.cumsum([0] + [len(f) for f in parts])
    sizes, best = [], None
    for t in range(restarts):
        # restart t < number of parts keeps part t for last (a part is only kept if visited last)
        part_order = rng.permutation(len(parts))
        if t < len(parts):
            part_order = np.r_[[i for i in part_order if i != t], t].astype(int)
        order = np.concatenate([starts[i] + rng.permutation(len(parts[i])) for i in part_order])
        keep = np.ones(len(cand), dtype=bool)
        for k in order:
            keep[k] = False
            if not _solve_quiet(cand[keep]).identified:
                keep[k] = True
        sizes.append(int(keep.sum()))
        if best is None or keep.sum() < best.sum():
            best = keep.copy()
    fb = cand[best]
    sol = _solve_quiet(fb)
    return {
        "sizes": sizes,
        "best": fb,
        "certificate": sol.certificate,
        "verified": verify(fb, sol),
        "pool_size": len(cand),
        "rank": r,
        "minimum": bounds.constructive_minimum(p, r),
        "paper": bounds.constructive_paper(p, r),
    }


def triplet_curve(phi_star, ns, *, eps=(0.0,), seeds=(0,), method: str = "auto", sparsity=None,
                  **options) -> dict:
    """PCC of the estimate from ``n`` sign-only triplets, for each n in ``ns`` and flip probability
    in ``eps`` (``Agent(phi_star, noise=Flip(e))``, dense Gaussian or s-sparse triplets), averaged
    over ``seeds``.  Returns ``n``, ``eps`` and ``pcc`` (len(eps) x len(ns), mean over seeds),
    ``pcc_min`` and ``agreement`` (mean fraction of the answers the estimate reproduces)."""

    phi_star = _checks.psd_matrix(phi_star, "phi_star")
    ns = _ints(ns, "ns")
    eps = [float(e) for e in eps]
    seeds = list(seeds)
    if not seeds:
        raise _checks.ArgumentError("need at least one seed.")
    vals = np.zeros((len(eps), ns.size, len(seeds)))
    agree = np.zeros_like(vals)
    for i, e in enumerate(eps):
        for j, n in enumerate(ns):
            for k, s in enumerate(seeds):
                tf = sample_triplets(Agent(phi_star, noise=Flip(e), seed=s), int(n), sparsity=sparsity, seed=s)
                sol = solve(tf, method, **options)
                vals[i, j, k] = pcc(sol.phi, phi_star)
                agree[i, j, k] = sol.info["agreement"]
    return {"n": ns, "eps": np.array(eps), "pcc": vals.mean(axis=2), "pcc_min": vals.min(axis=2),
            "agreement": agree.mean(axis=2)}


def least_squares_error(feedback: PairFeedback, phi_star) -> dict:
    """How far noisy equality pairs move the least-squares estimate, with a bound proved here.

    Let ``A`` be the pairs' constraint matrix with rows scaled to unit norm, ``v_hat`` its right
    singular vector of the smallest singular value (the least-squares estimate of ``svec(Phi)`` up
    to scale and sign, ignoring PSD) and ``v* = svec(Phi*) / ||svec(Phi*)||``.  Writing
    ``v* = cos(t) v_hat + sin(t) v_perp`` with ``v_perp`` orthogonal to ``v_hat``, and using that
    ``A v_hat`` and ``A v_perp`` are orthogonal, ``||A v*|| >= |sin t| sigma_2`` where ``sigma_2`` is
    the second smallest singular value of ``A``.  Hence

        ``sin(angle(v_hat, v*)) <= ||A v*|| / sigma_2``

    (``||A v*||`` is the residual of the true matrix on the noisy pairs: zero without noise).
    Returns ``sin_angle`` (measured), ``bound``, ``residual`` (``||A v*||``), ``sigma_2`` and the
    estimate ``phi`` (PSD projection of ``v_hat``, unit trace).  Dense, so for p up to about 40.
    """

    fb = _feedback(feedback, "least_squares_error")
    phi_star = psd_matrix(phi_star, "phi_star")
    if phi_star.shape[0] != fb.p:
        raise _checks.ShapeError(f"phi_star must be {fb.p} x {fb.p}; got {phi_star.shape}.")
    A = fb.constraints().toarray()
    norms = np.linalg.norm(A, axis=1)
    A = A[norms > 0] / norms[norms > 0, None]
    P = svec_dim(fb.p)
    if A.shape[0] < P - 1:
        raise _checks.FeedbackError(f"{A.shape[0]} non-trivial pairs cannot pin a matrix with {P} unknowns; the "
                                    f"bound needs at least {P - 1}.")
    sv, Vt = right_singular(A)
    sv = np.concatenate([sv, np.zeros(P - sv.size)]) if sv.size < P else sv
    v_hat, sigma_2 = Vt[P - 1], float(sv[P - 2])
    v_star = svec(phi_star) / np.linalg.norm(svec(phi_star))
    sin = float(np.linalg.norm(v_star - (v_hat @ v_star) * v_hat))  # sqrt(1 - cos^2) would cancel
    residual = float(np.linalg.norm(A @ v_star))
    est = smat(v_hat if v_hat @ v_star >= 0 else -v_hat)
    est = psd_project(est)
    tr = float(np.trace(est))
    return {"sin_angle": sin, "bound": residual / sigma_2 if sigma_2 > 0 else float("inf"), "residual": residual,
            "sigma_2": sigma_2, "phi": est / tr if tr > 0 else est}


def coverage(feedback: PairFeedback) -> dict:
    """Which entries of Phi the pairs touch at all: where the information runs out.

    Entry (a, b) of Phi enters pair k's equation only if coordinates a and b are both non-zero in
    ``y_k`` or both in ``z_k``.  An entry that no pair touches is invisible to every linear
    method; only a prior (low rank, through gradient descent) can fill it in.

    Returns a dict with ``pairs``, ``unknowns`` (p(p+1)/2), ``diagonal`` and ``off_diagonal`` (the
    fractions of those entries touched by at least one pair) and ``untouched`` (the number of
    entries no pair touches).  Works for sparse storage in O(non-zeros) time and p^2 bits of
    memory; dense and basis storage touch every entry with a non-zero coefficient product.
    """
    _feedback(feedback, "coverage")
    p = feedback.p
    touched = np.zeros((p, p), dtype=bool)
    if feedback.storage == "sparse":
        for C in feedback._stored_rows():
            C = sp.csr_matrix(C)  # explicit zeros are masked out below ("live")
            step = 1_000_000
            for start in range(0, C.shape[0], step):
                idx, val = padded_rows(C[start:start + step])
                live = val != 0
                for a in range(idx.shape[1]):
                    for b in range(a, idx.shape[1]):
                        keep = live[:, a] & live[:, b]
                        touched[idx[keep, a], idx[keep, b]] = True
    else:
        for C in (feedback.y, feedback.z):
            support = (np.asarray(C) != 0).astype(np.float64)
            touched |= (support.T @ support) > 0
    touched |= touched.T
    diag = np.diag(touched)
    off = touched[np.triu_indices(p, 1)]
    return {
        "pairs": len(feedback),
        "unknowns": svec_dim(p),
        "diagonal": float(diag.mean()),
        "off_diagonal": float(off.mean()) if off.size else 1.0,
        "untouched": int((~diag).sum() + (~off).sum()),
    }


def pattern_probability(p: int, s: int, mu: float, *, trials: int = 2000, seed=0) -> dict:
    """Monte Carlo estimate of the event the paper's Eq. 28 bounds from below by p_s.

    P = p(p+1)/2 raw draws of Assumption 1 "form the pattern R" when they can be matched one to one
    with the P slots {i} and {i, j} so that each draw is usable (at most s non-zeros) and its
    support contains its slot (a perfect bipartite matching, found with
    scipy.sparse.csgraph.maximum_bipartite_matching).  Eq. 28 claims this probability is at least
    ``p_s = P! P1^p P2^(P-p)``.  Returns ``{"estimate", "stderr", "p_s", "trials"}``.
    """
    import math

    import scipy.sparse as sp
    from scipy.sparse.csgraph import maximum_bipartite_matching

    p = _checks.check_positive_int(p, "p", minimum=2)
    s = _checks.check_positive_int(s, "s", minimum=2)
    mu = _checks.check_probability(mu, "mu", closed_low=False, closed_high=False)
    trials = _checks.check_positive_int(trials, "trials")
    rng = _checks.as_generator(seed)
    P = svec_dim(p)
    slots = [(i,) for i in range(p)] + [(i, j) for i in range(p) for j in range(i + 1, p)]
    hits = 0
    for _ in range(trials):
        X = rng.random((P, p)) < (1.0 - mu)
        usable = X.sum(axis=1) <= s
        A = np.zeros((P, P), dtype=bool)
        for k, sl in enumerate(slots):
            A[:, k] = usable & X[:, list(sl)].all(axis=1)
        match = maximum_bipartite_matching(sp.csr_matrix(A), perm_type="column")
        hits += bool(np.all(match >= 0))
    est = hits / trials
    return {"estimate": est, "stderr": math.sqrt(max(est * (1 - est), 1.0 / trials) / trials),
            "p_s": math.exp(sparse_sampled_log_ps(p, s, mu)), "trials": trials}


def below_dof_curve(phi_star, ratios, *, rank: int | None = None, methods=("identity", "gd", "svp", "svp+gd"), s: int = 3,
                    seed=0, gd=None, svp=None, refine=None, out=None) -> list:
    """PCC against the number of sampled pairs over the rank-r degrees of freedom, for several learners.

    For each ratio, ``n = ratio * low_rank_dof(p, rank)`` exactly-``s``-sparse pairs against ``e_k``
    (the paper's sampling at scale, ``teach(..., "sparse-sampled", sampler="exact")``; ``rank``
    defaults to the numerical rank of ``phi_star``), then:

    ``"identity"``
        no learning: the PCC of the identity matrix (the baseline every learner must beat);
    ``"gd"``
        gradient descent from a random start, rank r (Algorithm 3; options ``gd``, default 300 epochs,
        batches of 4096, lr 1e-2, cosine);
    ``"svp"``
        alternating projections from the prior I, rounds chosen on held-out pairs
        (:mod:`featlib.solvers.svp`; options ``svp``);
    ``"svp+gd"``
        gradient descent started from the svp factor (options ``refine``, default the ``gd`` ones with
        lr 1e-3 and 100 epochs).

    Returns one dict per (ratio, method): ratio, n, method, pcc, rel_err, seconds, residual, and
    ``loss`` (gradient descent's final loss; None for the others).  Below ratio 1 these are
    estimates: by the counting argument of :func:`featlib.bounds.low_rank_dof` (for pairs in general
    position; not proved here for sparse samples) a manifold of rank-r solutions fits the pairs, and
    the learners differ in which point of it they return.  ``out``: a function to print each row with.
    """

    phi_star = _checks.psd_matrix(phi_star, "phi_star")
    p = phi_star.shape[0]
    r = numerical_rank(phi_star) if rank is None else _checks.check_positive_int(rank, "rank")
    if isinstance(methods, str) or not isinstance(methods, (list, tuple)) or not methods:
        raise _checks.ArgumentTypeError(f"methods must be a non-empty list of names from {BELOW_DOF_METHODS}; got {methods!r}.")
    methods = tuple(methods)
    for m in methods:
        _checks.check_method(m, BELOW_DOF_METHODS, "below_dof_curve method")
    for name, value in (("gd", gd), ("svp", svp), ("refine", refine)):
        if value is not None and not isinstance(value, dict):
            raise _checks.ArgumentTypeError(f"{name} must be a dict of solver options (or None); got {type(value).__name__}.")
    s = _checks.check_positive_int(s, "s")
    if isinstance(ratios, (str, bytes)) or not hasattr(ratios, "__iter__"):
        raise _checks.ArgumentTypeError(f"ratios must be a list of positive numbers; got {ratios!r}.")
    ratios = [_checks.check_real(x, "ratio", low=0, low_open=True) for x in ratios]
    if not ratios:
        raise _checks.ArgumentError("need at least one ratio.")
    gd_opts = {"epochs": 300, "batch_size": 4096, "lr": 1e-2, "schedule": "cosine", "seed": 0, **(gd or {})}
    svp_opts = dict(svp or {})
    refine_opts = {**gd_opts, "lr": 1e-3, "epochs": 100, **(refine or {})}
    dof = low_rank_dof(p, r)
    rows = []
    for ratio in ratios:
        n = max(1, int(round(ratio * dof)))
        fb = teach(phi_star, "sparse-sampled", n=n, sampler="exact", s=s, seed=seed)
        start = None
        for m in methods:
            if m == "identity":
                sol, secs, residual = None, 0.0, float(np.max(fb.relative_residuals(np.eye(p))))
                value, err = pcc(np.eye(p), phi_star), relative_error(np.eye(p), phi_star)
            else:
                if m == "gd":
                    sol = solve(fb, "gd", rank=r, **gd_opts)
                elif m == "svp":
                    sol = start = solve(fb, "svp", rank=r, **svp_opts)
                else:  # svp+gd
                    if start is None:
                        start = solve(fb, "svp", rank=r, **svp_opts)
                    init = start.factor * np.sqrt(p)  # ||U||_F^2 = p, gd's trace normalisation
                    sol = solve(fb, "gd", rank=r, init=init, **refine_opts)
                    sol.seconds += start.seconds
                value, err = pcc(sol.phi, phi_star), relative_error(sol.phi, phi_star)
                secs, residual = sol.seconds, sol.residual
            loss = None if sol is None or "loss_history" not in sol.info else float(sol.info["loss_history"][-1])
            row = {"ratio": ratio, "n": n, "method": m, "pcc": value, "rel_err": err, "seconds": secs,
                   "residual": residual, "loss": loss}
            rows.append(row)
            if out is not None:
                out(f"{ratio:>6.2f} {n:>10,} {m:>8} {value:>8.4f} {err:>9.2e} {secs:>8.1f} "
                    f"{'-' if loss is None else f'{loss:.1e}':>9}")
    return rows


#: the outcomes :func:`phase_transition` counts, each run exactly one of them
PHASE_OUTCOMES = ("identified", "identified, not certified", "not identified", "not identified (near solutions)",
                  "undecided")


def phase_transition(p: int, r: int, ns, seeds, *, ensemble: str = "gaussian", margin: float = 1e-2,
                     s: int = 3, mu=None, sampler: str = "exact", learner: str = "exact",
                     verify_all: bool = False, exact: bool = False) -> dict:
    """How often n sampled pairs identify a random rank-r target, with every success certified.

    For each n in ``ns`` and each seed: the target ``datasets.random_feature_matrix(p, r, seed=seed)``
    (a fresh one per seed), ``teach(target, ensemble, n=n, seed=seed)`` ("gaussian": Theorem 3's
    activations; "sparse-sampled": ``s`` non-zeros, ``sampler`` and ``mu`` as in :func:`featlib.teach`),
    ``solve(..., "exact")``, and one outcome of :data:`PHASE_OUTCOMES`:

    * "identified": decided identified, within relative error 1e-6 of the target, *and* the
      certificate passes :func:`featlib.verify` in floating point (``exact=False``: "identified" at
      ``margin``, every exact solution within that trace-norm distance of the answer, proved with
      rounding-error bounds; the exact rational check cannot apply to these float pairs);
    * "identified, not certified": the solver says identified, but verify does not certify it (or
      the answer is farther than 1e-6 from the target);
    * "not identified": decided not identified (the solver's certificate: witnesses or a face);
      re-checked by verify only with ``verify_all=True`` (its status in ``verified``, else "-"): a
      "not identified" on an irrational face is often inconclusive in floating point, and its exact
      re-check takes seconds to minutes at p = 10;
    * "not identified (near solutions)" (floating-point pairs, p <= 20 only): the solver could not decide, but
      :func:`featlib.solvers.near_solutions` found two PSD matrices at relative trace-norm distance at
      least ``2 * margin`` (each at trace 1) that both satisfy every pair to relative residual 1e-12,
      proved by :func:`featlib.verify_near_solutions`: the pairs do not pin Phi* down at that precision
      (a statement about solutions to precision 1e-12, not about exact ones; see :mod:`featlib.near`);
    * "undecided": neither (never counted as a success).

    ``exact=True``: the target is ``D^T D`` for an integer ``D = datasets.integer_factor(p, r,
    seed=seed)`` and the pairs are the teacher's exact output (``teach(..., exact=True)``: integer
    activations, rounded Gaussian or sparse values); "identified" then needs verify's *exact* proof
    (rational arithmetic, p <= 20), and ``verify_all`` re-checks "not identified" exactly too.

    ``learner="svp"`` or ``"gd"``: a *rank-aware* learner instead (:func:`featlib.solvers.svp.solve_svp`
    told the true rank r, no hold-out, 300 rounds; or gradient descent, :func:`featlib.solvers.gd.solve_gd`,
    on a p x r factor, 5000 full-batch Adam epochs at lr 1e-2 on the CPU with no early stop, seeded by the
    seed); outcomes "recovered" (relative error <= 1e-6) and "not recovered".  A measurement with no
    certificate: both are local methods, and the pairs may identify Phi* among rank-r matrices where they
    fail to find it.

    Returns a dict: ``n``; ``fraction`` (outcome -> array over n, fractions of the seeds);
    ``success`` (the certified "identified" fraction); ``n50`` (where ``success`` first reaches 0.5,
    linearly interpolated; None if it does not); ``outcome`` and ``verified`` (n x seeds tables of
    labels and verify statuses); ``prediction`` (:func:`featlib.bounds.convex_phase_transition`).
    """
    p = _checks.check_positive_int(p, "p")
    r = _checks.check_positive_int(r, "r")
    if r > p:
        raise _checks.ArgumentError(f"the rank r = {r} cannot exceed p = {p}.")
    ensemble = _checks.check_method(ensemble, ("gaussian", "sparse-sampled"), "ensemble")
    margin = _checks.check_rtol(margin, "margin")
    ns = _ints(ns, "ns")
    if ns.size == 0 or ns.min() < 1:
        raise _checks.ArgumentError(f"ns must be positive numbers of pairs; got {ns.tolist()}.")
    seeds = _seed_list(seeds)
    opts = {} if ensemble == "gaussian" else {"s": s, "mu": mu, "sampler": sampler}
    learner = _checks.check_method(learner, ("exact", "svp", "gd"), "learner")
    verify_all = _checks.check_bool(verify_all, "verify_all")
    exact = _checks.check_bool(exact, "exact")
    if exact:
        _check_exact_phase(p, learner)
        opts["exact"] = True
    if learner != "exact":
        return _rank_aware_phase(p, r, ns, seeds, ensemble, opts, learner)
    outcome = np.empty((ns.size, len(seeds)), dtype=object)
    verified = np.empty((ns.size, len(seeds)), dtype=object)
    for j, seed in enumerate(seeds):
        target = _phase_target(p, r, seed, exact)
        for i, n in enumerate(ns):
            fb = teach(target, ensemble, n=int(n), seed=seed, **opts)
            outcome[i, j], verified[i, j] = _pair_outcome(fb, target, margin, verify_all, exact)
    fraction = {o: (outcome == o).mean(axis=1) for o in PHASE_OUTCOMES}
    success = fraction["identified"]
    return {"n": ns, "fraction": fraction, "success": success, "n50": _crossing(ns, success, 0.5),
            "outcome": outcome, "verified": verified, "prediction": bounds.convex_phase_transition(p, r)}


def _check_exact_phase(p, learner):
    if learner != "exact" or p * (p + 1) // 2 > EXACT_MAX_UNKNOWNS_INTEGER:
        raise _checks.ArgumentError(
            f"exact=True certifies with verify's exact check, which needs the exact solver (learner='exact') and "
            f"p(p+1)/2 <= {EXACT_MAX_UNKNOWNS_INTEGER} (p <= 20); got learner={learner!r}, p = {p}.")


def _phase_target(p, r, seed, exact):
    """The phase experiments' target for one seed: a random rank-r matrix, or (``exact``) ``D^T D`` for an
    integer ``D`` of rank r (as floats: exactly representable integers)."""
    if not exact:
        return random_feature_matrix(p, r, seed=seed)
    D = integer_factor(p, r, seed=seed)
    return (D.T @ D).astype(np.float64)


#: near solutions (:func:`_pair_outcome`) must satisfy every pair to this relative residual
NEAR_TOL = 1e-12


def _pair_outcome(fb, target, margin, verify_all=False, exact=False):
    """One exact solve of ``fb``: ``(label, verify status)`` as :func:`phase_transition` counts them.
    ``exact``: integer pairs, certified only by verify's exact (rational) proof.  Floating-point pairs
    that the solver leaves undecided get a search for near solutions at distance ``2 * margin`` (so that
    they cannot also be certified "identified" at ``margin`` by exact solutions)."""
    sol = _solve_quiet(fb)
    if not sol.decided or sol.certificate is None:
        if not exact and fb.p <= NEAR_AUTO_MAX_P:
            near = near_solutions(fb, distance=2 * margin, tol=NEAR_TOL)
            if near is not None:
                return "not identified (near solutions)", "valid"
        return "undecided", "-"
    status = "-"
    if sol.identified or verify_all:
        if exact:
            check = verify(fb, sol, margin=margin)
            status = check.status if check.exact or check.status != "valid" else "valid (floating point)"
        else:
            # floating point: the exact check cannot apply to sampled float pairs of a rank-deficient target
            # (verify's docstring) and spends seconds finding that out at p = 10
            status = verify(fb, sol, margin=margin, exact=False).status
    if not sol.identified:
        return "not identified", status
    good = status == "valid" and relative_error(sol.phi, target) <= 1e-6
    return ("identified" if good else "identified, not certified"), status


def _isotropic_problem(p, r, seed, n_max):
    """The control's target (its range U and kernel U_perp) and its first ``n_max`` constraint
    matrices for one seed (:func:`isotropic_control`)."""
    target = random_feature_matrix(p, r, seed=seed)
    V = np.linalg.eigh(target)[1]
    f = svec(target)
    f /= np.linalg.norm(f)
    G = np.random.default_rng([int(seed), 7919]).standard_normal((int(n_max), svec_dim(p)))
    G -= np.outer(G @ f, f)
    return smat(G, p), V[:, p - r:], V[:, :p - r]


#: Outcomes of :func:`phase_transition` with ``learner="svp"``.
RANK_AWARE_OUTCOMES = ("recovered", "not recovered")


def _rank_aware_phase(p, r, ns, seeds, ensemble, opts, learner="svp"):
    outcome = np.empty((ns.size, len(seeds)), dtype=object)
    for j, seed in enumerate(seeds):
        target = random_feature_matrix(p, r, seed=seed)
        for i, n in enumerate(ns):
            fb = teach(target, ensemble, n=int(n), seed=seed, **opts)
            if learner == "svp":
                sol = solve(fb, "svp", rank=r, holdout=0.0, iterations=300, inner=500)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "gd found a local answer": measured below anyway
                    sol = solve(fb, "gd", rank=r, epochs=5000, lr=1e-2, device="cpu", seed=seed, tol=0.0,
                                patience=5000)  # every epoch: the default stop at a loss of 1e-14 leaves ~3e-6
            outcome[i, j] = "recovered" if relative_error(sol.phi, target) <= 1e-6 else "not recovered"
    fraction = {o: (outcome == o).mean(axis=1) for o in RANK_AWARE_OUTCOMES}
    success = fraction["recovered"]
    return {"n": ns, "fraction": fraction, "success": success, "n50": _crossing(ns, success, 0.5),
            "outcome": outcome, "verified": None, "prediction": bounds.convex_phase_transition(p, r)}


#: Outcomes of :func:`isotropic_control`.
CONTROL_OUTCOMES = ("identified", "not identified")


def isotropic_control(p: int, r: int, ns, seeds, *, tol: float = 1e-9) -> dict:
    """The rotation-invariant control of :func:`phase_transition`: n *isotropic* linear constraints
    ``<A_i, Phi> = 0`` instead of pairs, the case the conic-geometry prediction
    (:func:`featlib.bounds.convex_phase_transition`) is proved for.

    For each seed: the target ``datasets.random_feature_matrix(p, r, seed=seed)``, and constraint
    matrices ``A_i`` that are standard Gaussian in Sym(p) (i.i.d. N(0, 1) coordinates in the isometric
    :func:`featlib.linalg.svec` basis), projected orthogonal to ``Phi*`` so that ``Phi*`` satisfies
    them; n constraints are the first n of one sequence (so the outcome is monotone in n).  They are
    not pair feedback (a pair's matrix ``y y^T - z z^T`` has rank 2), so this function decides them
    itself, by the same two facts the exact solver uses (U: an orthonormal basis of the range of
    ``Phi*``, ``U_perp`` of its kernel, m = p - r):

    1. *on the face*: the matrices ``U^T A_i U`` must leave only ``U^T Phi* U`` (rank of their svec
       rows = r(r+1)/2 - 1); otherwise a second solution ``Phi* + t U E U^T`` is PSD for small t:
       **not identified** (the witness is exact up to the rank decision);
    2. *off the face* (m > 0): a **dual certificate** ``Y = sum y_i A_i`` with ``Y U = 0`` and
       ``U_perp^T Y U_perp`` positive definite proves that every PSD solution has its range in
       span(U), hence (1) is a multiple of ``Phi*``: **identified**.  It is searched for by a small SDP
       (cvxpy) over the y with ``Y U = 0`` (a null space), maximising the smallest eigenvalue on the
       unit ball; found when that exceeds ``tol`` (relative to the constraints' scale).  Not found:
       **not identified** (for Gaussian data strict complementarity holds with probability one, so a
       missing certificate means a second solution; that step is a fact about generic data, not a
       check made here).

    What kind of statement: the certificates are checked in floating point (eigenvalues,
    residuals), not re-proved by :func:`featlib.verify`; this is a measurement of the control, not a
    proof.  Returns ``n``, ``fraction`` (outcome -> array over n), ``success``, ``n50``,
    ``outcome`` (n x seeds labels) and ``prediction`` like :func:`phase_transition`.
    """
    p = _checks.check_positive_int(p, "p")
    r = _checks.check_positive_int(r, "r")
    if r > p:
        raise _checks.ArgumentError(f"the rank r = {r} cannot exceed p = {p}.")
    tol = _checks.check_rtol(tol, "tol")
    ns = _ints(ns, "ns")
    if ns.size == 0 or ns.min() < 1:
        raise _checks.ArgumentError(f"ns must be positive numbers of constraints; got {ns.tolist()}.")
    seeds = _seed_list(seeds)
    outcome = np.empty((ns.size, len(seeds)), dtype=object)
    for j, seed in enumerate(seeds):
        A, U, Up = _isotropic_problem(p, r, seed, ns.max())
        for i, n in enumerate(ns):
            outcome[i, j] = "identified" if _isotropic_identified(A[:n], U, Up, tol) else "not identified"
    fraction = {o: (outcome == o).mean(axis=1) for o in CONTROL_OUTCOMES}
    success = fraction["identified"]
    return {"n": ns, "fraction": fraction, "success": success, "n50": _crossing(ns, success, 0.5),
            "outcome": outcome, "prediction": bounds.convex_phase_transition(p, r)}


def _isotropic_identified(A, U, Up, tol) -> bool:
    """Steps 1 and 2 of :func:`isotropic_control` for the constraint matrices ``A`` (n, p, p)."""
    n, r, m = A.shape[0], U.shape[1], Up.shape[1]
    R = r * (r + 1) // 2
    face = svec(np.einsum("ai,nab,bj->nij", U, A, U)).reshape(n, R)
    s = np.linalg.svd(face, compute_uv=False) if n else np.zeros(0)
    scale = max(float(np.abs(A).max()) if n else 0.0, 1e-300)
    face_rank = int(np.count_nonzero(s > 1e-10 * scale * max(n, R)))
    if face_rank < R - 1:
        return False
    if m == 0:
        return True
    AU = np.einsum("nab,bj->naj", A, U).reshape(n, -1).T  # columns vec(A_i U)
    sv, Vt = right_singular(AU)
    rank = int(np.count_nonzero(sv > 1e-10 * scale * max(AU.shape)))
    N = Vt[rank:].T  # y with (sum y_i A_i) U = 0
    if N.shape[1] == 0:
        return False
    B = np.einsum("ai,nab,bj->nij", Up, A, Up)  # U_perp^T A_i U_perp
    Bk = np.einsum("nk,nij->kij", N, B)
    if m == 1:
        return bool(np.max(np.abs(Bk[:, 0, 0])) > tol * scale)
    import cvxpy as cp  # optional dependency (the sdp extra): the certificate search is a small SDP

    y, t = cp.Variable(Bk.shape[0]), cp.Variable()
    M = cp.reshape(Bk.reshape(Bk.shape[0], m * m).T @ y, (m, m), order="C")  # sum_k y_k B_k, one product
    prob = cp.Problem(cp.Maximize(t), [(M + M.T) / 2 - t * np.eye(m) >> 0, cp.norm(y, 2) <= 1])
    try:
        quiet_solve(prob, {"solver": cp.CLARABEL})
    except cp.error.SolverError:
        quiet_solve(prob, {"solver": cp.SCS, "eps": 1e-9})
    if y.value is None:
        return False
    Y = np.einsum("k,kij->ij", y.value, Bk)
    lam = float(np.linalg.eigvalsh((Y + Y.T) / 2)[0])  # re-checked from the solver's y, not its t
    return lam > tol * scale


def phase_thresholds(p: int, r: int, seeds, *, ensemble: str = "gaussian", lo: int | None = None,
                     hi: int | None = None, margin: float = 1e-2, s: int = 3, mu=None, sampler: str = "exact",
                     certified: bool = True, exact: bool = False) -> dict:
    """Each seed's identification threshold, found by bisection on the number of pairs: the fast way to
    a 50 % point at p = 20, where :func:`phase_transition`'s full grid takes hours.

    For each seed: the target ``random_feature_matrix(p, r, seed=seed)`` and ``hi`` pairs from the
    teacher (``ensemble`` "gaussian" or "sparse-sampled", as in :func:`phase_transition`), or ``hi``
    isotropic constraints (``ensemble="isotropic"``, as in :func:`isotropic_control`); the first n of
    them for each probed n (so the sets are nested).  Identification by nested sets is monotone in n
    (more constraints only shrink the solutions), so bisection over ``[lo, hi]`` (default: the
    counting bound dof to p(p+1)/2 - 1) finds the first n at which the outcome is a certified
    "identified" (as in :func:`phase_transition`; for the control, a dual certificate) with about
    log2(hi - lo) solves.  An undecided or uncertified probe counts as not identified, which can only
    move a threshold up; such probes are counted.  ``certified=False`` counts the solver's own
    "identified" (decided, within 1e-6 of the target) without verify's certificate: a measurement of
    where identification happens when verify's floating-point bound is too loose to certify it (at
    p = 20 a single combination step's proved distance was about 1.2e-2, above the default margin,
    until verify computed the step exactly and solved for the coupling block: now about 1e-3 near
    the threshold, and the certified and solver's-verdict thresholds agree there).
    ``exact=True``: integer targets and the teachers' exact output, certified by verify's exact proof,
    as in :func:`phase_transition` (p <= 20; not for the isotropic control).

    Returns ``thresholds`` (one per seed; None when even ``hi`` does not give a certified
    identification), ``n50`` (their median, counting None as above ``hi``; None if half are),
    ``probes`` (solves made), ``undecided``, ``uncertified`` and ``near`` (probes of those kinds; "near":
    undecided by the solver, "not identified (near solutions)" as in :func:`phase_transition`) and
    ``prediction`` (:func:`featlib.bounds.convex_phase_transition`).
    """
    p = _checks.check_positive_int(p, "p")
    r = _checks.check_positive_int(r, "r")
    if r > p:
        raise _checks.ArgumentError(f"the rank r = {r} cannot exceed p = {p}.")
    ensemble = _checks.check_method(ensemble, ("gaussian", "sparse-sampled", "isotropic"), "ensemble")
    margin = _checks.check_rtol(margin, "margin")
    certified = _checks.check_bool(certified, "certified")
    exact = _checks.check_bool(exact, "exact")
    if exact:
        _check_exact_phase(p, "exact")
        if ensemble == "isotropic":
            raise _checks.ArgumentError("exact=True applies to teacher pairs; the isotropic control has no exact form.")
    pred = bounds.convex_phase_transition(p, r)
    lo = max(1, pred["dof"]) if lo is None else _checks.check_positive_int(lo, "lo")
    hi = pred["full_rank"] if hi is None else _checks.check_positive_int(hi, "hi")
    if hi < lo:
        raise _checks.ArgumentError(f"hi = {hi} must be at least lo = {lo}.")
    seeds = _seed_list(seeds)
    thresholds, probes, undecided, uncertified, near = [], 0, 0, 0, 0
    for seed in seeds:
        if ensemble == "isotropic":
            A, U, Up = _isotropic_problem(p, r, seed, hi)

            def identified(n):
                return _isotropic_identified(A[:n], U, Up, 1e-9)
        else:
            target = _phase_target(p, r, seed, exact)
            opts = {} if ensemble == "gaussian" else {"s": s, "mu": mu, "sampler": sampler}
            full = teach(target, ensemble, n=hi, seed=seed, exact=exact, **opts)

            def identified(n):
                nonlocal undecided, uncertified, near
                label = _pair_outcome(full[:n], target, margin, exact=exact)[0]
                undecided += label == "undecided"
                uncertified += label == "identified, not certified"
                near += label == "not identified (near solutions)"
                return label == "identified" or (not certified and label == "identified, not certified")
        a, b = lo - 1, hi  # invariant: not identified at a (or a < lo), threshold in (a, b] if identified at b
        probes += 1
        if not identified(b):
            thresholds.append(None)
            continue
        while b - a > 1:
            m = (a + b) // 2
            probes += 1
            if identified(m):
                b = m
            else:
                a = m
        thresholds.append(b)
    vals = np.array([np.inf if t is None else t for t in thresholds], dtype=float)
    med = float(np.median(vals))
    return {"thresholds": thresholds, "n50": med if np.isfinite(med) else None, "probes": probes,
            "undecided": undecided, "uncertified": uncertified, "near": near, "prediction": pred}


def surrogate_prediction(p: int, r: int, seeds, *, ensemble: str = "gaussian", s: int | None = 3, mu=None,
                         sampler: str = "exact", exact: bool = False, samples: int = 40, seed=0) -> dict:
    """The corrected prediction of :mod:`featlib.surrogate` for the phase experiments' own targets.

    For each seed, the target of :func:`phase_transition` (``random_feature_matrix(p, r, seed)``, or
    the integer target with ``exact=True``) and the ensemble's reference (a fresh Gaussian vector per
    sample for "gaussian", the teacher's default e_k, k the largest diagonal entry, for
    "sparse-sampled"); ``samples`` Monte Carlo draws each of
    delta(S^(1/2) K) (:func:`featlib.surrogate.statistical_dimension`), S the ensemble's second moment
    (:func:`featlib.surrogate.second_moment`, with ``s``, ``mu`` and ``sampler`` as in
    :func:`phase_transition`).

    Returns ``n_star`` (the mean over every draw: the predicted 50 % point), ``stderr`` (its Monte
    Carlo standard error), ``bracket`` (bounds on that mean from the projections' primal-dual brackets,
    :func:`featlib.surrogate.statistical_dimension`), ``per_seed`` (each target's mean), ``samples`` (draws in all) and
    ``prediction`` (:func:`featlib.bounds.convex_phase_transition`, the isotropic one, for
    comparison).  A *prediction* resting on one unproved step (the module docstring says which); how
    far it is from the measured thresholds is measured in the chapter.
    """
    p = _checks.check_positive_int(p, "p")
    r = _checks.check_positive_int(r, "r")
    if r > p:
        raise _checks.ArgumentError(f"the rank r = {r} cannot exceed p = {p}.")
    seeds = _seed_list(seeds)
    ensemble = _checks.check_method(ensemble, surrogate.SURROGATE_ENSEMBLES, "ensemble")
    if ensemble == "sparse-sampled":
        S = surrogate.second_moment(p, ensemble, s=s, mu=mu, sampler=sampler)
    else:
        S = surrogate.second_moment(p, ensemble)
    rng = _checks.as_generator(seed)
    values, per_seed, lo, hi = [], [], [], []
    for sd in seeds:
        target = _phase_target(p, r, sd, exact)
        ref = int(np.argmax(np.diag(target))) if ensemble == "sparse-sampled" else "gaussian"
        res = surrogate.statistical_dimension(target, S, reference=ref, samples=samples, seed=rng)
        values.append(res["values"])
        per_seed.append(res["delta"])
        lo.append(res["bracket"][0])
        hi.append(res["bracket"][1])
    v = np.concatenate(values)
    return {"n_star": float(v.mean()), "stderr": float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan"),
            "bracket": (float(np.mean(lo)), float(np.mean(hi))), "per_seed": per_seed, "samples": int(v.size),
            "prediction": bounds.convex_phase_transition(p, r)}


def _crossing(ns, frac, level):
    """The first n where ``frac`` reaches ``level``, linearly interpolated between grid points."""
    above = np.flatnonzero(frac >= level)
    if above.size == 0:
        return None
    k = int(above[0])
    if k == 0:
        return float(ns[0])
    x0, x1, f0, f1 = float(ns[k - 1]), float(ns[k]), float(frac[k - 1]), float(frac[k])
    return x0 + (level - f0) * (x1 - x0) / (f1 - f0) if f1 > f0 else x1

"""The paper's four feedback constructions ("teachers").

``teach(phi_star, method, *, n=None, seed=None, **options)`` returns a :class:`PairFeedback`
whose pairs satisfy ``y^T Phi* y = z^T Phi* z`` (up to rounding).  Every pair has the form
``(u, sqrt(c) * reference)`` with ``c = u^T Phi* u / reference^T Phi* reference``: the agent
rescales the reference (Lemma 2 / Algorithm 2, Algorithm 3's ``(u_i, c_i)``), and a ``u`` in the
null space of ``Phi*`` gives the pair ``(u, 0)``, which forces ``Phi u = 0`` for a PSD learner.

=================  ============================================================  =====================
method             activations                                                    number of pairs
=================  ============================================================  =====================
``"eigen"``        Theorem 1: eigenvectors v_i, v_i + v_j (i < j <= r) against    r(r+1)/2 + (p - r)
                   y = v_1 + ... + v_r, plus (0, v) for a basis of null(Phi*)
``"compact"``      proved here: the smallest identifying set, by a PSD           max(p, r(r+1)/2)
                   *combination* of p pairs that kills null(Phi*) and integer     (p - 1 if r = 1,
                   vectors of squared norm 25 on the range                        p(p+1)/2 - 1 if r = p)
                   (:func:`featlib.constructions.compact_canonical`)
``"sparse"``       Theorem 2 / Eq. 4: e_i and e_i + e_j against e_k (k with        p(p+1)/2
                   Phi*_kk > 0)
``"gaussian"``     Theorem 3: i.i.d. N(0, I_p) activations against one Gaussian   ``n`` (default
                   reference sample                                               p(p+1)/2 - 1)
``"sparse-sampled"`` Assumption 1: each coordinate 0 with probability ``mu``,     ``n`` (default
                   else U(0, 1]; at most ``s`` non-zeros if ``s`` is given;       p(p+1)/2)
                   or (``sampler="exact"``) exactly ``s`` non-zeros at uniform
                   positions; against e_k
=================  ============================================================  =====================

**Exact output** (``exact=True``, every teacher, p <= :data:`EXACT_MAX_P`): for an integer target
(:func:`featlib.datasets.integer_factor`; a power-of-two multiple of one is accepted) the pairs are
integers, exactly consistent with Phi* (checked in Python integers before they are returned), so that
:func:`featlib.verify` can prove its verdicts in rational arithmetic; floating-point output of a
rank-deficient target is, as stored, not exactly consistent.  Lemma 2's rescaling ``sqrt(c)`` is
irrational, so each pair ``(u, sqrt(c) ref)`` becomes its rational form ``(y, z)``: y a positive
multiple of u and z the second point where the line from u through ``lam * ref`` meets u's level set
(``_line_pair``).  The activations keep each teacher's form: "eigen" uses an LLL-reduced basis of
the integer lattice in range(Phi*) in place of eigenvectors (plus its null pairs (0, v)); "compact"
pulls the canonical integer construction back by an invertible rational T with ``T^T diag(I_r, 0) T =
Phi*`` (it needs the target as ``Factored(D)`` with an integer D of full row rank; identification
follows from the canonical proof, congruence-invariant); "sparse" keeps Theorem 2's e_i, e_i + e_j
(the partners are 3-sparse) with line parameters drawn until the constraints reach rank
p(p+1)/2 - 1, so it identifies every target, as Theorem 2 does; "eigen" likewise reaches rank
r(r+1)/2 - 1 on the face; "gaussian" rounds N(0, I) samples to multiples of 1/:data:`EXACT_GRID` and
"sparse-sampled" rounds the non-zero values up to multiples of 1/:data:`EXACT_LEVELS` (then both are
scaled to integers): sampled sets identify or not, as in floating point, and the certificate says
which.  Measured (30 integer targets for each p in {4, 7, 10, 12} and rank in {1, 2, p/2, p - 1, p}):
``verify(fb, solve(fb, "exact"))`` was valid in exact arithmetic for all 570 eigen, compact, sparse
and Gaussian sets and 569 of 570 sparse-sampled sets (one certificate could only be checked in floating
point).
"""

from __future__ import annotations

import inspect
import math
import numbers
from fractions import Fraction

import numpy as np
import scipy.sparse as sp
import scipy.stats

from . import _checks
from . import _exact
from .feedback import Agent, PairFeedback, row_quadratics, row_sq_norms
from .spanfeedback import FrameFeedback, SpanFeedback
from .linalg import default_rank_rtol
from .noise import Exact
from .constructions import compact_canonical

__all__ = ["teach", "TEACHERS"]

TEACHERS = ("eigen", "compact", "sparse", "gaussian", "sparse-sampled")


def teach(phi_star, method: str, *, n: int | None = None, seed=None, **options) -> PairFeedback:
    """Feedback pairs for a hidden feature matrix from one of the paper's teachers.

    Parameters
    ----------
    phi_star : array_like (p, p) or Agent
        The target feature matrix (symmetric PSD, non-zero), or an :class:`Agent` holding it.
    method : {"eigen", "compact", "sparse", "gaussian", "sparse-sampled"}
        The construction; see the module docstring.
    n : int, optional
        Number of pairs, for the sampled teachers only (the constructive counts are fixed by the
        theorems; slice the result, ``fb[:k]``, for fewer).
    seed : int, numpy Generator or None
        Randomness of the sampled teachers.
    **options
        ``"eigen"``: ``rank`` (override the numerical rank; the pairs are then exact for the
        rank-``rank`` truncation of Phi*, as the paper's experiments use), ``rtol`` (relative
        eigenvalue threshold of the numerical rank, default ``p * eps``), ``storage`` ("basis",
        the default for a dense Phi*; "dense"; or "span", the default for a :class:`featlib.Factored`
        target: a :class:`featlib.SpanFeedback` that keeps the p - r null-space pairs as the complement
        of the eigenvectors, O(p r) memory, which ``solve`` reduces exactly to r dimensions).
        ``"compact"``: ``rank`` and ``rtol`` as for "eigen"; ``storage`` ("basis", the default for a
        dense Phi*; "dense"; or "frame", the default for a :class:`featlib.Factored` target: a
        :class:`featlib.FrameFeedback` whose null-space parts are coefficients over an implicit
        orthonormal complement of the eigenvectors, O(p r + pairs) memory; ``solve`` takes the
        face step from the hint and reduces to r dimensions).  ``meta["face_hint"]`` holds the
        multipliers of the facial-reduction step; ``solve`` uses it by itself (and checks it before
        use); pass it as ``solve(fb, "exact", face_hint=...)`` for feedback that lost its meta.
        ``"sparse"``: ``reference`` (index k of the reference e_k; default the k with the largest
        ``Phi*_kk``, for conditioning; the paper uses k = 1), ``storage`` ("sparse", default, or
        "dense").
        ``"gaussian"``: ``reference`` (a vector in R^p; default a Gaussian sample).
        ``exact`` (every teacher, default False): integer pairs exactly consistent with an integer target,
        for exact certificates (module docstring); refused with a clear error for a target that is not
        an integer matrix, is only numerically PSD, or would need entries beyond 2^53.
        ``"sparse-sampled"``: ``mu`` (probability that a coordinate is zero; required), ``s``
        (maximum number of non-zeros: samples are drawn conditionally on having at most ``s``
        non-zeros, as the paper's ``p_s`` assumes), ``sampler`` ("bernoulli", the default, as
        just described; or "exact": exactly ``s`` non-zeros at uniformly random positions, the
        paper's "3-sparsity on uniform sparse distributions" of Section 6, which takes ``s`` and
        no ``mu``), ``reference`` (index k or a vector; default as for "sparse"), ``storage``
        ("sparse" or "dense").  Memory is O(n s): ten million 3-sparse pairs at p = 4096 take
        about 0.5 GB.

    Returns
    -------
    PairFeedback
        With ``meta`` recording the teacher, its parameters, the reference and (for "eigen") the
        rank, eigenvalues and which rows are kernel and null-space pairs.
    """
    _checks.check_method(method, TEACHERS, "teacher")
    agent = phi_star if isinstance(phi_star, Agent) else Agent(phi_star)
    if not isinstance(agent.noise, Exact):
        raise _checks.ArgumentError(
            f"teach builds exact equality pairs from the agent's Phi*, so this agent's noise model "
            f"({agent.noise!r}) would be ignored. For noisy feedback draw triplets with "
            f"featlib.triplets.sample_triplets(agent, n) (answered with the noise), or equalize them with "
            f"agent.equalize(x, y, z) (its Lemma 2 rescaling is perturbed by the noise); or teach an agent "
            f"without noise.")
    builder = {
        "eigen": _eigen,
        "compact": _compact,
        "sparse": _sparse,
        "gaussian": _gaussian,
        "sparse-sampled": _sparse_sampled,
    }[method]
    allowed = [k for k in inspect.signature(builder).parameters if k not in ("agent", "n", "seed")]
    _check_options(method, options, allowed)
    return builder(agent, n=n, seed=seed, **options)


# --------------------------------------------------------------------------------------------
# helpers


def _check_options(method, options, allowed):
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise _checks.ArgumentTypeError(
            f"teach(..., {method!r}) got unknown option(s) {', '.join(unknown)}; "
            f"valid options are: {', '.join(allowed) if allowed else 'none'}."
        )


def _fixed_count(method, n, count):
    if n is not None:
        raise _checks.ArgumentError(
            f"The {method!r} teacher's number of pairs is fixed by the theorem ({count} here); do not "
            f"pass n. Slice the returned feedback (fb[:k]) to use fewer pairs."
        )


def _storage(method, storage, allowed):
    return _checks.check_method(storage, allowed, f"storage for {method!r}")


def _index_reference(agent: Agent, reference):
    """A coordinate k with Phi*_kk > 0, chosen or checked."""
    diag = agent.diagonal()
    p = agent.p
    if reference is None:
        # the largest diagonal entry: the paper uses e_1, but a small Phi*_kk makes every ratio
        # c = b^T Phi* b / Phi*_kk large and the constraints ill-conditioned (measured: a rank-1
        # target with Phi*_11 = 1e-6 lost 6 digits in the singular values of the design)
        return int(np.argmax(diag))
    if isinstance(reference, bool) or not isinstance(reference, numbers.Integral):
        raise _checks.ArgumentTypeError(f"reference must be a coordinate index (int) here; got {type(reference).__name__}.")
    k = int(reference)
    if not 0 <= k < p:
        raise _checks.ArgumentError(f"reference index {k} is out of range for p = {p}.")
    if diag[k] <= 1e-12 * diag.max():
        good = np.flatnonzero(diag > 1e-12 * diag.max())
        raise _checks.FeedbackError(
            f"reference e_{k} has Phi*[{k},{k}] = {diag[k]:.3g}, i.e. it lies in the null space, so no "
            f"pair can be rescaled against it. Choose an index with a positive diagonal entry, "
            f"e.g. {good[:5].tolist()}."
        )
    return k


def _vector_reference(agent: Agent, reference, name="reference"):
    v = _checks.finite_array(reference, name)
    if v.shape != (agent.p,):
        raise _checks.ShapeError(f"{name} must be a vector of shape ({agent.p},) to match Phi*; got {v.shape}.")
    q = agent.quadratic(v)
    if q <= agent.null_rtol * agent.spectral_norm * float(v @ v):
        raise _checks.FeedbackError(
            f"{name} has v^T Phi* v = {q:.3g}: it lies (numerically) in the null space of Phi*, so no "
            f"pair can be rescaled against it. Choose a reference with positive distance."
        )
    return v


def _ratios(q_u, q_ref):
    """c = q(u) / q(ref), clipped at zero (tiny negative values are rounding)."""
    return np.clip(np.asarray(q_u, dtype=float), 0.0, None) / q_ref


# --------------------------------------------------------------------------------------------
# Theorem 1


def _spectrum(agent: Agent, rank, rtol):
    """Eigenvalues (descending) and eigenvectors of Phi*, the rank r to teach (``rank``, else the
    numerical rank at ``rtol``, default p * eps) and the numerical rank itself."""
    p = agent.p
    w, V = agent.eigh()  # from the factor's Gram matrix when the agent holds one: Phi* is not formed
    order = np.argsort(w)[::-1]
    w, V = w[order], V[:, order]
    if rtol is None:
        rtol = default_rank_rtol(p)
    numerical = int(np.count_nonzero(w > rtol * w[0]))
    if rank is None:
        r = numerical
    else:
        r = _checks.check_positive_int(rank, "rank")
        if r > p:
            raise _checks.ArgumentError(f"rank = {r} cannot exceed p = {p}.")
    return w, V, r, numerical, rtol


def _eigen(agent: Agent, *, n, seed, rank=None, rtol=None, storage=None, exact=False):
    del seed  # deterministic
    p = agent.p
    if _exact_flag(exact, storage, ("basis", "dense")):
        out = _exact_eigen(agent, rank)
        _fixed_count("eigen", n, len(out))
        return out
    if storage is None:  # a factored agent: never a p x p eigenbasis
        storage = "span" if agent.factor is not None else "basis"
    storage = _storage("eigen", storage, ("basis", "dense", "span"))
    if storage == "span":
        return _eigen_span(agent, n, rank, rtol)
    w, V, r, numerical, rtol = _spectrum(agent, rank, rtol)
    count = r * (r + 1) // 2 + (p - r)
    _fixed_count("eigen", n, count)
    iu, ju, c, rows_y, cols_y = _kernel_pairs(w, r)
    m_ker = iu.size
    # coefficients over the basis [v_1 .. v_p, y]
    b = p + 1
    Yc = sp.csr_matrix((np.ones(rows_y.size), (rows_y, cols_y)), shape=(count, b))
    rows_z = np.concatenate([np.arange(m_ker), m_ker + np.arange(p - r)])
    cols_z = np.concatenate([np.full(m_ker, p), r + np.arange(p - r)])
    vals_z = np.concatenate([np.sqrt(c), np.ones(p - r)])
    Zc = sp.csr_matrix((vals_z, (rows_z, cols_z)), shape=(count, b))
    yref = V[:, :r].sum(axis=1)
    basis = np.column_stack([V, yref])
    meta = _eigen_meta(r, numerical, rtol, w.copy(), iu, ju, count)
    meta["reference"] = yref
    fb = PairFeedback(Yc, Zc, basis=basis, meta=meta)
    return fb.to_dense() if storage == "dense" else fb


def _kernel_pairs(w, r):
    """Theorem 1's r(r+1)/2 kernel pairs against the reference y = v_1 + ... + v_r, for the eigenvalues
    ``w`` (descending): ``(iu, ju, c, rows_y, cols_y)``, pair k being ``(v_iu + v_ju [once if equal],
    sqrt(c_k) y)``, with the left sides' coefficient positions (row, eigenvector column)."""
    gam = np.clip(w[:r], 0.0, None)
    ref_q = float(gam.sum())  # y = v_1 + ... + v_r, so y^T Phi_r y = sum of the eigenvalues
    iu, ju = np.triu_indices(r)
    # q(v_i) = gamma_i ; q(v_i + v_j) = gamma_i + gamma_j  (orthonormal eigenvectors)
    q_ker = np.where(iu == ju, gam[iu], gam[iu] + gam[ju])
    c = _ratios(q_ker, ref_q)
    rows_y = np.concatenate([np.arange(iu.size), np.flatnonzero(iu != ju)])
    cols_y = np.concatenate([iu, ju[iu != ju]])
    return iu, ju, c, rows_y, cols_y


def _eigen_meta(r, numerical, rtol, eigenvalues, iu, ju, count):
    return {"teacher": "eigen", "rank": r, "numerical_rank": numerical, "rank_rtol": rtol,
            "truncated": r < numerical, "eigenvalues": eigenvalues, "kernel_rows": np.arange(iu.size),
            "null_rows": np.arange(iu.size, count), "kernel_pairs": [(int(i), int(j)) for i, j in zip(iu, ju)]}


def _frame_spectrum(agent: Agent, rank, rtol, storage):
    """``(w, V, r, numerical rank, rtol)``: the eigenpairs above ``rtol`` (:meth:`Agent.top_eigh`, from the
    d x d Gram matrix for a factored agent) and the rank to teach, which the frame storages cannot raise
    above the numerical rank."""
    w, Vr, numerical, rtol = agent.top_eigh(rtol)
    r = numerical if rank is None else _checks.check_positive_int(rank, "rank")
    if r > numerical:
        raise _checks.ArgumentError(
            f"rank = {r} exceeds the numerical rank {numerical} of Phi* (at rtol = {rtol:.3g}); with storage={storage!r} "
            f"the frame holds the eigenvectors of non-zero eigenvalues only. Use storage='basis' for a larger rank.")
    return w, Vr, r, numerical, rtol


def _eigen_span(agent: Agent, n, rank, rtol):
    """Theorem 1's pairs in ``"span"`` storage: the frame is the r leading eigenvectors, the kernel pairs
    are coefficient rows over the reduced basis ``[I_r, 1]`` (the reference y = v_1 + ... + v_r), the
    p - r null-space pairs ``(0, v)`` are the complement of the frame.  A factored agent's eigenvectors
    come from its d x d Gram matrix (O(p d^2) time, O(p r) memory)."""
    p = agent.p
    w, Vr, r, numerical, rtol = _frame_spectrum(agent, rank, rtol, "span")
    count = r * (r + 1) // 2 + (p - r)
    _fixed_count("eigen", n, count)
    iu, ju, c, rows_y, cols_y = _kernel_pairs(w, r)
    m_ker = iu.size
    Yc = sp.csr_matrix((np.ones(rows_y.size), (rows_y, cols_y)), shape=(m_ker, r + 1))
    Zc = sp.csr_matrix((np.sqrt(c), (np.arange(m_ker), np.full(m_ker, r))), shape=(m_ker, r + 1))
    R = np.column_stack([np.eye(r), np.ones(r)])
    W = Vr[:, :r]
    eig = np.zeros(p)
    eig[:w.size] = w
    meta = _eigen_meta(r, numerical, rtol, eig, iu, ju, count)
    return SpanFeedback(W, Yc, Zc, basis=R, meta=meta)


# --------------------------------------------------------------------------------------------
# the compact construction (proved here; beats Theorem 1's count for 3 <= r <= p - 2)


#: the compact teacher on a factored target writes a p x p basis: refused above this p (512 MiB)
COMPACT_FACTORED_MAX_P = 8192


def _compact(agent: Agent, *, n, seed, rank=None, rtol=None, storage=None, exact=False):
    del seed  # deterministic

    p = agent.p
    if _exact_flag(exact, storage, ("basis", "dense")):
        out = _exact_compact(agent, rank)
        _fixed_count("compact", n, len(out))
        return out
    if storage is None:  # a factored agent: never a p x p basis
        storage = "frame" if agent.factor is not None else "basis"
    storage = _storage("compact", storage, ("basis", "dense", "frame"))
    if storage == "frame":
        return _compact_frame(agent, n, rank, rtol)
    if agent.factor is not None and p > COMPACT_FACTORED_MAX_P:
        raise _checks.ResourceError(
            f"the compact pairs of a factored target with p = {p} in storage={storage!r} need an explicit p x p "
            f"basis (each cycle pair uses its own null-space vector), {8 * p * p / 2**30:.1f} GiB; refused above "
            f"p = {COMPACT_FACTORED_MAX_P}. Use storage='frame' (the default for a factored target), which keeps "
            f"the null-space parts as coefficients over an implicit complement (FrameFeedback).")
    w, V, r, numerical, rtol = _spectrum(agent, rank, rtol)
    Yc, Zc, hint = compact_canonical(p, r, sparse=True)
    _fixed_count("compact", n, Yc.shape[0])
    # canonical coordinates, basis [V_r diag(gamma^-1/2), V_null]: a vector with
    # coefficients (a; n) has quadratic form |a|^2 under the rank-r truncation of Phi*
    gam = np.clip(w[:r], np.finfo(float).tiny, None)
    basis = np.column_stack([V[:, :r] / np.sqrt(gam), V[:, r:]])
    Yc = sp.csr_matrix(Yc, dtype=np.float64)
    Zc = sp.csr_matrix(Zc, dtype=np.float64)
    # the agent's answer: rescale the right side so the pair is an equality for Phi* itself
    G = agent.gram(basis)
    qy, qz = row_quadratics(Yc, G), row_quadratics(Zc, G)
    nz = row_quadratics(Zc, basis.T @ basis)  # ||z||^2
    live = qz > agent.null_rtol * agent.spectral_norm * nz
    c = np.ones(len(qz))  # a null-space side (rounding-level form) stays as it is: a pair (0, v)
    c[live] = np.clip(qy[live], 0.0, None) / qz[live]
    Zc = sp.csr_matrix(sp.diags(np.sqrt(c)) @ Zc)
    meta = {"teacher": "compact", "rank": r, "numerical_rank": numerical, "rank_rtol": rtol,
            "truncated": r < numerical, "eigenvalues": w.copy(), "face_hint": hint}
    fb = PairFeedback(Yc, Zc, basis=basis, meta=meta)
    return fb.to_dense() if storage == "dense" else fb


def _compact_frame(agent: Agent, n, rank, rtol):
    """The compact pairs in ``"frame"`` storage (:class:`featlib.FrameFeedback`): the frame is the r
    leading eigenvectors with reduced basis ``diag(gamma)^-1/2`` (so a range part with coefficients a has
    quadratic form ``|a|^2``), the null-space parts ``n_k`` are coefficients over an orthonormal basis U of
    the complement, which is never formed.  The construction is :func:`featlib.constructions.compact_canonical`
    in those coordinates; the agent rescales each right side by ``sqrt(c)``, c computed from the range parts
    (U's part has zero form under the rank-r truncation that is taught).  O(p r + nnz) memory."""
    p = agent.p
    w, Vr, r, numerical, rtol = _frame_spectrum(agent, rank, rtol, "frame")
    Yc, Zc, hint = compact_canonical(p, r, sparse=True)
    _fixed_count("compact", n, Yc.shape[0])
    Yc, Zc = sp.csr_matrix(Yc, dtype=np.float64), sp.csr_matrix(Zc, dtype=np.float64)
    if r == 1 and p > 1:  # the pairs (0, u_j): minus their sum is the identity on the complement
        hint = [(np.arange(p - 1), -np.ones(p - 1))]
    gam = np.clip(w[:r], np.finfo(float).tiny, None)
    W = Vr[:, :r]
    Rb = np.diag(1.0 / np.sqrt(gam))
    G = Rb @ agent.gram(W) @ Rb  # ~ I_r: the forms of the range parts (no p x r product W Rb is formed)
    qy, qz = row_quadratics(Yc[:, :r], G), row_quadratics(Zc[:, :r], G)
    nz = row_quadratics(Zc[:, :r], np.diag(1.0 / gam)) + row_sq_norms(Zc[:, r:])  # ||z||^2 (V_r, U orthonormal)
    live = qz > agent.null_rtol * agent.spectral_norm * nz
    c = np.ones(len(qz))  # a side with no range part stays as it is: a pair (0, v)
    c[live] = np.clip(qy[live], 0.0, None) / qz[live]
    Zc = sp.csr_matrix(sp.diags(np.sqrt(c)) @ Zc)
    eig = np.zeros(p)
    eig[:w.size] = w
    meta = {"teacher": "compact", "rank": r, "numerical_rank": numerical, "rank_rtol": rtol,
            "truncated": r < numerical, "eigenvalues": eig, "face_hint": hint}
    return FrameFeedback(W, Yc, Zc, basis=Rb, meta=meta)


# --------------------------------------------------------------------------------------------
# Theorem 2


def _sparse(agent: Agent, *, n, seed, reference=None, storage="sparse", exact=False):
    del seed
    p = agent.p
    storage = _storage("sparse", storage, ("sparse", "dense"))
    count = p * (p + 1) // 2
    _fixed_count("sparse", n, count)
    if _exact_flag(exact, storage, ("sparse", "dense")):
        return _exact_sparse(agent, reference, storage)
    k = _index_reference(agent, reference)
    phi = agent.phi_star
    iu, ju = np.triu_indices(p)
    diag = np.diag(phi)
    q = np.where(iu == ju, diag[iu], diag[iu] + diag[ju] + 2 * phi[iu, ju])
    c = _ratios(q, diag[k])
    off = iu != ju
    rows = np.concatenate([np.arange(count), np.flatnonzero(off)])
    cols = np.concatenate([iu, ju[off]])
    Y = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(count, p))
    Z = sp.csr_matrix((np.sqrt(c), (np.arange(count), np.full(count, k))), shape=(count, p))
    Z.eliminate_zeros()
    meta = {"teacher": "sparse", "reference": k, "pairs": [(int(i), int(j)) for i, j in zip(iu, ju)]}
    fb = PairFeedback(Y, Z, meta=meta)
    return fb.to_dense() if storage == "dense" else fb


# --------------------------------------------------------------------------------------------
# Theorem 3


def _gaussian(agent: Agent, *, n, seed, reference=None, exact=False):
    p = agent.p
    rng = _checks.as_generator(seed)
    n = p * (p + 1) // 2 - 1 if n is None else _checks.check_positive_int(n, "n", minimum=0)
    _checks.check_allocation(4 * 8 * n * p, f"{n:,} dense pairs in dimension {p}")
    if _exact_flag(exact, None, None):
        return _exact_gaussian(agent, n, rng, reference)
    if reference is None:
        for _ in range(100):
            ref = rng.standard_normal(p)
            if agent.quadratic(ref) > agent.null_rtol * agent.spectral_norm * float(ref @ ref):
                break
        else:  # pragma: no cover - needs a measure-zero event 100 times
            raise _checks.FeedbackError("could not draw a Gaussian reference outside the null space of Phi*.")
    else:
        ref = _vector_reference(agent, reference)
    X = rng.standard_normal((n, p))
    c = _ratios(agent.quadratic(X) if n else np.zeros(0), agent.quadratic(ref))
    Z = np.sqrt(c)[:, None] * ref[None, :]
    meta = {"teacher": "gaussian", "reference": ref}
    return PairFeedback(X, Z, meta=meta)


# --------------------------------------------------------------------------------------------
# Assumption 1 / Theorem 4


def _sample_counts(rng, n, p, q, s):
    """Numbers of non-zeros: Binomial(p, q), conditioned on <= s when s is given.

    Drawn from the truncated law directly (log-space weights), so a cap that a Bernoulli draw
    would meet with probability 1e-30 costs nothing, unlike rejection sampling.
    """
    kmax = p if s is None else min(s, p)
    ks = np.arange(kmax + 1)
    logw = scipy.stats.binom.logpmf(ks, p, q)
    if not np.any(np.isfinite(logw)):
        raise _checks.FeedbackError(
            f"no activation can have at most s = {s} non-zeros when each of the p = {p} coordinates is non-zero "
            f"with probability {q:g} (mu = {1 - q:g}): raise mu or s.")
    w = np.exp(logw - logw.max())
    return rng.choice(kmax + 1, size=n, p=w / w.sum())


def _uniform_supports(rng, counts, p):
    """CSR ``(indptr, indices)`` of rows whose supports are uniform subsets of the given sizes."""
    n = counts.shape[0]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=np.int32 if p < 2**31 else np.int64)
    for k in np.unique(counts):
        k = int(k)
        if k == 0:
            continue
        rows = np.flatnonzero(counts == k)
        if k * k <= p:  # draw with replacement, redraw the (rare) rows with a repeated index
            sup = rng.integers(0, p, size=(rows.size, k))
            bad = np.ones(rows.size, dtype=bool)
            while True:
                srt = np.sort(sup[bad], axis=1)
                dup = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
                sup[bad] = srt
                idx_bad = np.flatnonzero(bad)[dup]
                if idx_bad.size == 0:
                    break
                bad[:] = False
                bad[idx_bad] = True
                sup[bad] = rng.integers(0, p, size=(idx_bad.size, k))
        else:  # random keys, in row blocks of about 8 M entries
            sup = np.empty((rows.size, k), dtype=np.int64)
            step = max(1, 8_000_000 // p)
            for start in range(0, rows.size, step):
                keys = rng.random((min(step, rows.size - start), p))
                sup[start:start + step] = np.sort(np.argpartition(keys, k - 1, axis=1)[:, :k], axis=1)
        pos = indptr[rows][:, None] + np.arange(k)
        indices[pos.ravel()] = sup.ravel()
    return indptr, indices


def _sample_sparse(rng, n, p, mu, s, sampler="bernoulli"):
    """n sparse activations with non-zero values U(0, 1].

    ``sampler="bernoulli"`` (Assumption 1): each coordinate is non-zero with probability 1 - mu,
    conditioned on at most ``s`` non-zeros when ``s`` is given.  Drawn as a count from the
    (truncated) binomial law and then a uniform support of that size, which is the same
    distribution in O(n s) memory.  ``sampler="exact"``: exactly ``s`` non-zeros at uniformly
    random positions (the paper's "3-sparsity on uniform sparse distributions", Section 6).
    """
    if sampler == "exact":
        counts = np.full(n, min(s, p), dtype=np.int64)
    else:
        counts = _sample_counts(rng, n, p, 1.0 - mu, s)
    indptr, indices = _uniform_supports(rng, counts, p)
    vals = 1.0 - rng.random(indices.size)  # U(0, 1]
    return sp.csr_matrix((vals, indices, indptr), shape=(n, p))


def _sparse_sampled(agent: Agent, *, n, seed, mu=None, s=None, sampler="bernoulli", reference=None,
                    storage="sparse", exact=False):
    p = agent.p
    exact = _exact_flag(exact, None, None)
    storage = _storage("sparse-sampled", storage, ("sparse", "dense"))
    sampler = _checks.check_method(sampler, ("bernoulli", "exact"), "sampler for 'sparse-sampled'")
    if s is not None:
        s = _checks.check_positive_int(s, "s")
        if s > p:
            raise _checks.ArgumentError(f"s = {s} non-zeros per activation cannot exceed p = {p}.")
    if sampler == "exact":
        if s is None or mu is not None:
            raise _checks.ArgumentTypeError(
                "teach(..., 'sparse-sampled', sampler='exact') draws exactly s non-zeros per activation: "
                f"pass s and not mu (got s={s!r}, mu={mu!r})."
            )
    else:
        if mu is None:
            raise _checks.ArgumentTypeError(
                "teach(..., 'sparse-sampled') needs mu, the probability that a coordinate is zero "
                "(or sampler='exact' with s, for exactly s non-zeros per activation)."
            )
        mu = _checks.check_probability(mu, "mu", closed_high=False)
    rng = _checks.as_generator(seed)
    n = p * (p + 1) // 2 if n is None else _checks.check_positive_int(n, "n", minimum=0)
    _checks.check_allocation(3 * 8 * n * min(p, 64), f"{n:,} sparse pairs in dimension {p}")
    if reference is None or isinstance(reference, numbers.Integral):
        k = _index_reference(agent, reference)
        ref = np.zeros(p)
        ref[k] = 1.0
        ref_meta = k
    else:
        ref = _vector_reference(agent, reference)
        ref_meta = ref
    X = _sample_sparse(rng, n, p, mu, s, sampler)
    meta = {"teacher": "sparse-sampled", "mu": mu, "s": s, "sampler": sampler, "reference": ref_meta}
    if exact:
        return _exact_sparse_sampled(agent, X, ref_meta, reference, storage, meta)
    c = _ratios(agent.row_quadratics(X), agent.quadratic(ref))
    if ref_meta is ref:
        Z = sp.csr_matrix(sp.csr_matrix(np.sqrt(c)[:, None]) @ sp.csr_matrix(ref[None, :]))
    else:  # sqrt(c) e_k, built directly (no n x p intermediate)
        Z = sp.csr_matrix((np.sqrt(c), np.full(n, ref_meta, dtype=X.indices.dtype), np.arange(n + 1)),
                          shape=(n, p))
    Z.eliminate_zeros()
    fb = PairFeedback(X, Z, meta=meta)
    return fb.to_dense() if storage == "dense" else fb


# --------------------------------------------------------------------------------------------
# exact output: integer pairs, exactly consistent with an integer target

#: the largest p for which the teachers build exact (integer) output
EXACT_MAX_P = 64
_FLOAT_INT = 2**53  # integers up to this size are float64 numbers exactly
#: activations of the exact "gaussian" teacher: N(0, I) samples rounded to this grid (then scaled to integers)
EXACT_GRID = 8
#: non-zero values of the exact "sparse-sampled" teacher: U(0, 1] rounded up to multiples of 1/EXACT_LEVELS
EXACT_LEVELS = 16


def _exact_flag(exact, storage, allowed) -> bool:
    """Check the ``exact`` option (and that the storage asked for is one exact output has)."""
    exact = _checks.check_bool(exact, "exact")
    if exact and storage is not None and allowed is not None and storage not in allowed:
        raise _checks.ArgumentError(
            f"exact=True output is stored as {' or '.join(repr(a) for a in allowed)}; storage={storage!r} is not "
            f"available for it.")
    return exact


def _integer_target(agent: Agent, method: str):
    """Phi* times the smallest power of two that makes it an integer matrix (a positive scale: the pairs
    are the same), as Python integers, after an exact PSD check; and its exact rank."""
    p = agent.p
    if p > EXACT_MAX_P:
        raise _checks.ArgumentError(
            f"teach(..., {method!r}, exact=True) builds pairs in exact integer arithmetic up to p = {EXACT_MAX_P}; "
            f"this target has p = {p}. Use the floating-point teacher (exact=False) at this size.")
    phi = np.asarray(agent.phi_star, dtype=float)
    scaled, k = phi, 0
    while not np.all(scaled == np.round(scaled)) and k < 64:
        k += 1
        scaled = phi * 2.0**k  # exact: a power of two
    if not np.all(scaled == np.round(scaled)) or np.abs(scaled).max() > 2**31:
        raise _checks.ArgumentError(
            f"teach(..., {method!r}, exact=True) needs an integer target (or integers over a small power of two) "
            f"with entries up to 2^31; this Phi* has entries like {phi.ravel()[np.argmax(np.abs(phi - np.round(phi)))]!r}. "
            f"Build one with featlib.datasets.integer_factor(p, r) (Phi* = D^T D), or use exact=False.")
    A = np.array([[int(x) for x in row] for row in scaled], dtype=object)
    psd, r = _exact.psd_rank(A)
    if not psd:
        raise _checks.ArgumentError(
            f"teach(..., {method!r}, exact=True): this integer Phi* is not positive semidefinite in exact arithmetic "
            f"(it is only numerically PSD), so no pair can be exactly consistent with a PSD target.")
    return A, r


def _exact_rank(method, rank, r):
    if rank is not None and _checks.check_positive_int(rank, "rank") != r:
        raise _checks.ArgumentError(
            f"teach(..., {method!r}, exact=True) teaches the exact target, of exact rank {r}; rank = {rank} would "
            f"be a truncation, which is not exact. Omit rank (or use exact=False for a truncation).")


def _line_pair(A, u, ref, lams=(1, 2)):
    """An exact integer pair (y, z) for the integer target A: y a positive multiple of u and
    ``y^T A y = z^T A z`` exactly, z on the line through u and ``lam * ref`` (lam = 1, or 2 when that line
    is tangent to u's level set): ``z = q(d) u - 2 (u^T A d) d`` with ``d = lam ref - u`` is the second
    point where the line meets the level set {x : x^T A x = q(d)^2 u^T A u} (the rational form of Lemma 2,
    whose rescaling sqrt(c) is irrational).  u in the null space gives (u, 0).  ``lams``: the line
    parameters tried in order; None if every one gives a tangent line."""
    Au = A.dot(u)
    if int(u.dot(Au)) == 0:
        return u, np.zeros_like(u)
    for lam in lams:
        d = lam * ref - u
        Ad = A.dot(d)
        qd, b = int(d.dot(Ad)), int(u.dot(Ad))
        if qd == 0:  # A d = 0 (A is PSD), so q(lam ref) = q(u): the reference itself is the partner
            return u, lam * ref
        if b != 0:
            y, z = qd * u, qd * u - 2 * b * d
            g = math.gcd(*[int(x) for x in np.concatenate([y, z])])
            return y // g, z // g
    return None


def _independent_line_pairs(A, activations, target_rank, ref, attempts=20):
    """Line pairs for the activations whose constraints reach rank ``target_rank``: each activation's line
    parameter lam is drawn from 1..64 (a fixed seed, so the output is deterministic) and the draw is
    repeated until the rank is reached (decided modulo a prime, which proves it over the rationals).

    A rational line pair's constraint depends on lam.  With lam = 1 for every activation the exact
    "sparse" set failed to identify a p = 7, r = 6 target (two exact solutions), and choosing lam greedily
    (the first one that raises the rank) failed at p = 7, r = 2 (rank 26 of 27), although the pairs over
    all lam have rank 27: one pair per activation is a choice of one vector from each activation's
    subspace, and a generic (random) choice attains the largest rank, a greedy one need not."""
    rng = np.random.default_rng(0)
    best = None
    for attempt in range(attempts):
        rows = []
        for u in activations:
            lams = (1, 2) if attempt == 0 else tuple(int(x) for x in rng.integers(1, 65, size=3))
            rows.append(_line_pair(A, u, ref, lams=lams) or _line_pair(A, u, ref))
        rank = _exact.integer_rank_mod_prime([_svec_pair(*pair) for pair in rows])
        if best is None or rank > best[1]:
            best = (rows, rank)
        if rank >= target_rank:
            break
    return best


def _svec_pair(y, z):
    """The upper-triangle entries of y y^T - z z^T (integers), the pair's constraint row (up to a
    factor 2 on the off-diagonal entries, which does not change ranks)."""
    iu, ju = np.triu_indices(len(y))
    return [int(y[i]) * int(y[j]) - int(z[i]) * int(z[j]) for i, j in zip(iu, ju)]


def _exact_pairs(A, rows, what, meta, sparse=False):
    """Check every pair exactly, convert to floats (exact below 2^53) and wrap them."""
    Y = np.array([y for y, _ in rows], dtype=object).reshape(len(rows), A.shape[0])
    Z = np.array([z for _, z in rows], dtype=object).reshape(len(rows), A.shape[0])
    for y, z in zip(Y, Z):
        if int(y.dot(A.dot(y))) != int(z.dot(A.dot(z))):  # pragma: no cover - guards the construction
            raise AssertionError("an exact pair is not an equality")
    big = max((abs(int(x)) for x in np.concatenate([Y.ravel(), Z.ravel()])), default=0)
    if big >= _FLOAT_INT:
        raise _checks.ArgumentError(
            f"the exact {what} pairs have integer entries up to {big:.3g}, beyond float64's exact integers (2^53). "
            f"Use a target with smaller entries (featlib.datasets.integer_factor(..., bound=1)).")
    meta = dict(meta, exact=True)
    Yf, Zf = Y.astype(np.float64), Z.astype(np.float64)
    if sparse:
        fb = PairFeedback(sp.csr_matrix(Yf), sp.csr_matrix(Zf), meta=meta)
    else:
        fb = PairFeedback(Yf, Zf, meta=meta)
    return fb


def _integer_reference(agent, A, reference, draw=None):
    """An integer reference vector outside the null space: drawn by ``draw`` when ``reference`` is None, else
    the coordinate index or integer vector given."""
    p = agent.p
    if reference is None:
        for _ in range(100):
            ref = draw()
            if int(ref.dot(A.dot(ref))) > 0:
                return ref
        raise _checks.FeedbackError("could not draw an integer reference outside the null space of Phi*.")  # pragma: no cover
    if isinstance(reference, numbers.Integral) and not isinstance(reference, bool):
        k = _index_reference(agent, reference)
        ref = np.array([0] * p, dtype=object)
        ref[k] = 1
        return ref
    v = _vector_reference(agent, reference)
    if not np.all(v == np.round(v)) or np.abs(v).max() > 2**20:
        raise _checks.ArgumentError("with exact=True the reference must be a coordinate index or an integer vector "
                                    "(entries up to 2^20).")
    ref = np.array([int(x) for x in v], dtype=object)
    if int(ref.dot(A.dot(ref))) <= 0:
        raise _checks.FeedbackError("the reference lies in the null space of Phi* (exactly); choose another.")
    return ref


def _ints(a):
    return np.array([int(x) for x in np.asarray(a).ravel()], dtype=object)


def _exact_eigen(agent, rank):
    A, r = _integer_target(agent, "eigen")
    _exact_rank("eigen", rank, r)
    p = agent.p
    N = _exact.integer_null_basis(A)
    # a reduced integer basis of range(Phi*): short, nearly orthogonal vectors (Phi*'s own columns made
    # the pairs' entries ~4e7 and a p = 12 set undecidable in floating point)
    B = _exact.reduced_lattice_basis(N, p)
    y = B.sum(axis=1)
    iu, ju = np.triu_indices(r)
    # Theorem 1's left sides b_i, b_i + b_j against y = b_1 + ... + b_r, as line pairs in the coordinates
    # over B (Gram matrix G = B^T Phi* B: q(B a) = a^T G a), with line parameters for which the
    # constraints on the face reach rank r(r+1)/2 - 1: with the null pairs, the set identifies Phi*
    G = B.T.dot(A).dot(B)
    eye = [np.array([int(i == k) for k in range(r)], dtype=object) for i in range(r)]
    acts = [eye[i] + (eye[j] if i != j else 0) for i, j in zip(iu, ju)]
    coords, rank = _independent_line_pairs(G, acts, r * (r + 1) // 2 - 1, np.array([1] * r, dtype=object))
    if rank < r * (r + 1) // 2 - 1:  # pragma: no cover - Theorem 1's activations span Sym(R^r)
        raise AssertionError("the exact eigen pairs do not identify the target")
    rows = []
    for a_y, a_z in coords:
        yv, zv = B.dot(a_y), B.dot(a_z)
        g = math.gcd(*[int(x) for x in np.concatenate([yv, zv])]) or 1
        rows.append((yv // g, zv // g))
    rows += [(np.array([0] * p, dtype=object), N[:, k]) for k in range(N.shape[1])]
    meta = {"teacher": "eigen", "rank": r, "numerical_rank": r, "truncated": False,
            "kernel_rows": np.arange(iu.size), "null_rows": np.arange(iu.size, iu.size + N.shape[1]),
            "kernel_pairs": [(int(i), int(j)) for i, j in zip(iu, ju)], "reference": y.astype(np.float64),
            "range_basis": "LLL-reduced integer basis of range(Phi*), not eigenvectors"}
    return _exact_pairs(A, rows, "eigen", meta)


def _exact_compact(agent, rank):
    A, r = _integer_target(agent, "compact")
    _exact_rank("compact", rank, r)
    p = agent.p
    L = None if agent.factor is None else np.asarray(agent.factor.L, dtype=float)
    if L is None or not np.all(L == np.round(L)) or L.shape[0] != r or np.abs(L).max() > 2**20:
        raise _checks.ArgumentError(
            "teach(..., 'compact', exact=True) maps the canonical integer construction by Phi* = D^T D, so it needs "
            "the target as featlib.Factored(D) with an integer D of full row rank (entries up to 2^20); "
            "featlib.datasets.integer_factor(p, r) draws one.")
    Lq = np.array([[int(x) for x in row] for row in L], dtype=object)
    if _exact.rank(Lq) != r or any(int(a) != int(b) for a, b in zip(Lq.T.dot(Lq).ravel(), A.ravel())):
        raise _checks.ArgumentError("the factor D must have full row rank and D^T D must be Phi* exactly.")  # pragma: no cover
    N = _exact.integer_null_basis(A)
    # T = [D; K]: invertible, rows spanning the range and the null space.  K's rows are a reduced integer
    # basis of null(D) divided by (the floor of) their norms, so that T is about as well conditioned as D:
    # integer null vectors are long (cofactors of D, entries ~1e5 at p = 10, r = 9), and unscaled ones gave
    # pairs with entries up to 4e12 that the floating-point solver wrongly called "not identified"
    Kq = _exact.zeros((N.shape[1], p))
    for k in range(N.shape[1]):
        c = max(1, math.isqrt(int(sum(int(x) ** 2 for x in N[:, k]))))
        Kq[k] = [_exact.q(int(x))[()] / c for x in N[:, k]]
    T = np.vstack([_exact.q(Lq), Kq]) if N.shape[1] else _exact.q(Lq)
    Yc, Zc, hint = compact_canonical(p, r)
    # canonical pairs (for diag(I_r, 0)) pulled back: y = T^-1 y_c has y^T D^T D y = y_c^T diag(I_r, 0) y_c
    Yt = _exact.solve_matrix(T, _ints(Yc).reshape(Yc.shape).T).T
    Zt = _exact.solve_matrix(T, _ints(Zc).reshape(Zc.shape).T).T
    rows, scales = [], []
    for yq, zq in zip(Yt, Zt):
        den = 1
        for x in np.concatenate([yq, zq]):
            d = int(x.denominator)
            den = den * d // math.gcd(den, d)
        y = np.array([int(x * den) for x in yq], dtype=object)
        z = np.array([int(x * den) for x in zq], dtype=object)
        g = math.gcd(*[int(x) for x in np.concatenate([y, z])]) or 1
        rows.append((y // g, z // g))
        scales.append(Fraction(den, g))  # the stored pair is scale * (canonical pair pulled back)
    # the face hint's multipliers: a pair scaled by s has its matrix scaled by s^2
    scaled_hint = [(np.asarray(idx), np.array([float(Fraction(v).limit_denominator(10**9) / scales[i] ** 2)
                                               for i, v in zip(idx, vals)]))
                   for idx, vals in hint]
    meta = {"teacher": "compact", "rank": r, "numerical_rank": r, "truncated": False, "face_hint": scaled_hint}
    return _exact_pairs(A, rows, "compact", meta)


def _exact_sparse(agent, reference, storage):
    A, _ = _integer_target(agent, "sparse")
    p = agent.p
    ref = _integer_reference(agent, A, int(np.argmax(agent.diagonal())) if reference is None else reference)
    iu, ju = np.triu_indices(p)
    acts = []
    for i, j in zip(iu, ju):
        u = np.array([0] * p, dtype=object)
        u[i] += 1
        if i != j:
            u[j] += 1
        acts.append(u)
    # Theorem 2's left sides, with line parameters for which the constraints reach rank p(p+1)/2 - 1: the
    # pairs then span the complement of Phi* and identify it (whatever its rank)
    rows, rank = _independent_line_pairs(A, acts, p * (p + 1) // 2 - 1, ref)
    if rank < p * (p + 1) // 2 - 1:  # pragma: no cover - Theorem 2's activations span Sym(R^p)
        raise AssertionError("the exact sparse pairs do not identify the target")
    by_index = reference is None or (isinstance(reference, numbers.Integral) and not isinstance(reference, bool))
    meta = {"teacher": "sparse", "reference": int(np.flatnonzero(ref)[0]) if by_index else ref.astype(np.float64),
            "pairs": [(int(i), int(j)) for i, j in zip(iu, ju)]}
    return _exact_pairs(A, rows, "sparse", meta, sparse=(storage == "sparse"))


def _exact_gaussian(agent, n, rng, reference):
    A, _ = _integer_target(agent, "gaussian")
    p = agent.p

    def draw():
        return _ints(np.round(EXACT_GRID * rng.standard_normal(p)))

    ref = _integer_reference(agent, A, reference, draw)
    rows = [_line_pair(A, draw(), ref) for _ in range(n)]
    meta = {"teacher": "gaussian", "reference": ref.astype(np.float64), "grid": EXACT_GRID}
    return _exact_pairs(A, rows, "gaussian", meta)


def _exact_sparse_sampled(agent, X, ref_meta, reference, storage, meta):
    A, _ = _integer_target(agent, "sparse-sampled")
    p = agent.p
    ref = _integer_reference(agent, A, ref_meta if reference is None or isinstance(reference, numbers.Integral)
                             else reference)
    X = sp.csr_matrix(X)
    X.data = np.ceil(EXACT_LEVELS * X.data)  # U(0, 1] -> {1, ..., EXACT_LEVELS}
    rows = []
    for i in range(X.shape[0]):
        u = np.array([0] * p, dtype=object)
        lo, hi = X.indptr[i], X.indptr[i + 1]
        for c, v in zip(X.indices[lo:hi], X.data[lo:hi]):
            u[c] = int(v)
        rows.append(_line_pair(A, u, ref))
    return _exact_pairs(A, rows, "sparse-sampled", dict(meta, levels=EXACT_LEVELS), sparse=(storage == "sparse"))

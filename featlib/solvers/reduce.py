"""Stage 1 of the exact solver: facial reduction, recording its certificate.

If a combination ``S = sum_k alpha_k (y_k y_k^T - z_k z_k^T)`` is PSD and non-zero on the current
face, then every PSD solution Phi satisfies ``<Phi, S> = 0``, hence ``Phi S = 0``: the version space
lives on the smaller face ``{Phi >= 0 : range(Phi) is in ker(S)}``.  Repeat until no such
combination is left (Borwein and Wolkowicz's facial reduction).  Each step is a
:class:`~featlib.certificates.FaceStep` (the multipliers alpha and the number of directions
removed); :func:`featlib.verify` re-checks them from the pairs.

Where the combinations come from:

* :func:`pair_step`: single pairs whose matrix is already semidefinite (a zero side, like
  Theorem 1's ``(0, v)``, or parallel sides of different lengths).  Cheap, no dependency.
* :func:`hint_step`: multipliers handed over by the teacher (``teach(..., "compact")`` records
  them), checked before they are used; this is how the compact construction is solved at p = 4096.
* :func:`combination_step`: the auxiliary SDP ``find S >= 0, trace S = 1, S in span of the pair
  matrices`` (cvxpy with Clarabel), for combinations that no single pair shows.
"""

from __future__ import annotations

import importlib.util
import warnings
from fractions import Fraction

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ..certificates import FaceStep
from ..linalg import right_singular, smat, svec, svec_outer_difference
from . import _lsq
from .nullspace import _alternating_projections

__all__ = ["semidefinite_rows", "pair_step", "hint_step", "combination_step", "boundary_step", "quiet_solve",
           "sdp_solver", "have_sdp"]

#: eigenvalues of a combination below this fraction of its largest count as zero; the next one up must
#: be at least GAP times larger for the rank decision to be trusted
RANK_RTOL = 1e-7
GAP = 1e3


def have_sdp() -> bool:
    return importlib.util.find_spec("cvxpy") is not None


def sdp_solver(cp):
    return {"solver": "CLARABEL"} if "CLARABEL" in cp.installed_solvers() else {}


def solve_with_fallback(cp, prob, kwargs=None, *, ok=lambda prob: True, fallback=True, only_fallback=False) -> bool:
    """Solve ``prob`` with ``kwargs`` (default: the preferred solver), then with SCS when that fails
    (Clarabel gives up on some feasible problems near the boundary of the cone); True when a solve
    ends optimal and ``ok(prob)``.  ``fallback=False``: no SCS; ``only_fallback``: SCS only.  Whatever a
    solver returns is only a candidate: every step built from it is checked again."""
    kwargs = sdp_solver(cp) if kwargs is None else kwargs
    attempts = [] if only_fallback and kwargs.get("solver") != "SCS" else [kwargs]
    if fallback and kwargs.get("solver") != "SCS" and "SCS" in cp.installed_solvers():
        attempts.append({"solver": "SCS", "eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 100_000})
    for attempt in attempts:
        try:
            quiet_solve(prob, attempt)
        except cp.error.SolverError:
            continue
        if prob.status in ("optimal", "optimal_inaccurate") and ok(prob):
            return True
    return False


def _solved(cp, prob, variable) -> bool:
    """:func:`solve_with_fallback` with the preferred solver; True when ``variable`` has a value."""
    return solve_with_fallback(cp, prob, ok=lambda _: variable.value is not None)


def quiet_solve(prob, kwargs):
    """prob.solve without cvxpy's 'may be inaccurate' warning (the status is recorded).

    Every failure inside cvxpy or its solver becomes ``cvxpy.error.SolverError``, which every caller
    treats as "no answer from the SDP": Clarabel reports internal errors as Rust panics
    (``pyo3_runtime.PanicException``, a BaseException that ``except Exception`` does not catch).
    """
    import cvxpy as cp  # optional dependency, only reached when the SDP is used

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        try:
            prob.solve(**kwargs)
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except cp.error.SolverError:
            raise
        except BaseException as exc:  # noqa: BLE001 - a solver panic or bug: no answer, never a crash
            raise cp.error.SolverError(f"the SDP solver failed ({type(exc).__name__}: {str(exc)[:200]})") from None


def semidefinite_rows(ny, nz, yz, zero_rtol, parallel_rtol, scale=None):
    """Masks: pairs whose matrix y y^T - z z^T is semidefinite and non-zero, and trivial pairs.

    ``scale`` (per pair, e.g. ||y||^2 + ||z||^2 before any reduction): a reduced pair whose sides
    are both below ``zero_rtol * scale`` is rounding residue and counts as trivial.
    """
    big = np.maximum(ny, nz)
    small = np.minimum(ny, nz)
    nonzero = big > (0.0 if scale is None else zero_rtol * scale)
    one_side_zero = nonzero & (small <= zero_rtol * big)
    gap = ny * nz - yz * yz  # >= 0 by Cauchy-Schwarz; 0 iff parallel
    parallel = nonzero & (gap <= parallel_rtol * ny * nz)
    same_length = np.abs(ny - nz) <= parallel_rtol * (big if scale is None else np.maximum(big, scale))
    trivial = ~nonzero | (parallel & same_length & ~one_side_zero)
    semidef = (one_side_zero | parallel) & ~trivial
    return semidef, trivial


def pair_step(Yr, Zr, scale, *, zero_rtol=1e-13, parallel_rtol=1e-12, rank_rtol=1e-10):
    """One round of reduction by single semidefinite pairs on the current face.

    ``Yr, Zr``: the pairs in the face's orthonormal coordinates (n x q).  Returns
    ``(step, kernel)`` with kernel the orthonormal coordinates (q x q') of the next face, or None.
    The step's multipliers are ``+-1 / (||y||^2 + ||z||^2)`` on the semidefinite pairs (the sign
    that makes their matrices PSD), so the combination is PSD with range the span of their
    longer sides.
    """
    ny, nz = np.einsum("ij,ij->i", Yr, Yr), np.einsum("ij,ij->i", Zr, Zr)
    yz = np.einsum("ij,ij->i", Yr, Zr)
    semidef, _ = semidefinite_rows(ny, nz, yz, zero_rtol, parallel_rtol, scale)
    if not np.any(semidef):
        return None
    rows = np.flatnonzero(semidef)
    longer_y = ny[rows] >= nz[rows]
    dirs = np.where(longer_y[:, None], Yr[rows], Zr[rows])
    dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    s, Vt = right_singular(dirs)  # the left singular vectors of dirs^T, without its n x n right factor
    U = Vt.T
    k = int(np.count_nonzero(s > rank_rtol * s[0]))
    alpha = np.where(longer_y, 1.0, -1.0) / (ny[rows] + nz[rows])
    step = FaceStep(indices=rows, values=alpha, rank=k, kind="pairs")
    return step, U[:, k:]


def _combination(Yr, Zr, idx, alpha):
    """sum_k alpha_k (y_k y_k^T - z_k z_k^T) over the given pairs, in the face's coordinates."""
    Ys, Zs = Yr[idx], Zr[idx]
    S = (Ys * alpha[:, None]).T @ Ys - (Zs * alpha[:, None]).T @ Zs
    return (S + S.T) / 2


def _kernel_of_psd(S, *, psd_rtol=1e-9, floor=0.0):
    """(rank, kernel basis) of a numerically PSD matrix with a clear eigenvalue gap, or None.  Negative
    eigenvalues down to ``max(psd_rtol * top, floor)`` count as rounding: ``floor`` is the rounding
    scale of forming S (a combination much smaller than its terms has rounding far above
    ``psd_rtol * top``)."""
    w, V = np.linalg.eigh(S)
    top = float(w[-1])
    if not top > 0 or w[0] < -max(psd_rtol * top, floor):
        return None
    small = w <= RANK_RTOL * top
    k = int(np.count_nonzero(~small))
    if k < len(w):
        smallest_big = float(w[~small].min())
        largest_small = float(np.abs(w[small]).max())
        if smallest_big < GAP * max(largest_small, psd_rtol * top, floor):
            return None  # no clear gap: the rank decision would be a guess
    return k, V[:, small]


def combination_rounding(alpha, sizes, dim):
    """A bound on the rounding error of forming sum_k alpha_k (y_k y_k^T - z_k z_k^T) in floating point
    (spectral norm), from the pairs' squared norms ``sizes`` (|y_k|^2 + |z_k|^2) in dimension ``dim``:
    ``4 (dim + 2) eps sum_k |alpha_k| sizes_k``."""
    return 4.0 * (dim + 2) * np.finfo(float).eps * float(np.abs(alpha) @ sizes)


def _kernel_accuracy(S, k):
    """How far a solution may sit from the kernel of a combination S of rank k that is PSD only to
    eps (its small eigenvalues, at least 1e-15 of the top): about sqrt(eps * top) / gap, times 10."""
    w = np.linalg.eigvalsh(S)
    top, gap = float(w[-1]), float(w[len(w) - k])
    eps = max(float(np.abs(w[: len(w) - k]).max()) if k < len(w) else 0.0, 1e-15 * top)
    return 10.0 * float(np.sqrt(eps * top)) / gap


def simple_rationals(values) -> bool:
    """Whether every value is a power of two times a fraction with denominator at most 1000 (exactly, in
    floating point): the multipliers of a structured combination (the compact teacher's are all 1), also
    after :func:`featlib.solve` rescales the pairs by powers of two."""
    m, _ = np.frexp(np.asarray(values, dtype=float))
    if not np.all(np.isfinite(m)):
        return False
    # each distinct mantissa once (a compact teacher's hint at scale has one: all multipliers are 1)
    return all(float(Fraction(float(a)).limit_denominator(1000)) == a for a in np.unique(m))


def hint_step(Yr, Zr, indices, values):
    """Apply multipliers handed over with the feedback, after checking that their combination is
    PSD with a clear rank on the current face.  Returns ``(step, kernel, accuracy)`` or None.

    ``accuracy``, as for :func:`combination_step`: 1e-12 (a face exact to rounding) only for simple
    rational multipliers (:func:`simple_rationals`) whose combination is PSD to 1e-12 of its top with the
    same rank; for any other hint, :func:`_kernel_accuracy` (about ``sqrt(eps top) / gap``, eps its small
    eigenvalues).  Measured: multipliers the solver found for 11 2-sparse pairs at p = 10 in permuted
    coordinates, PSD to 3e-16 of the top with a gap of 2.9e-4 (accuracy 2.5e-3 by that estimate), taken
    as exact here: two single-pair steps on their face (ranks 1 and 4) left one ray, at relative error
    1.0 from the target, and solve() answered "identified"; tracked as inexact, "not identified"."""
    indices = np.asarray(indices, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    S = _combination(Yr, Zr, indices, values)
    out = _kernel_of_psd(S)
    if out is None or out[0] == 0:
        return None
    k, K = out
    strict = _kernel_of_psd(S, psd_rtol=1e-12) if simple_rationals(values) else None
    accuracy = 1e-12 if strict is not None and strict[0] == k else max(1e-9, _kernel_accuracy(S, k))
    return FaceStep(indices=indices, values=values, rank=k, kind="hint"), K, accuracy


def _newton_polish(Yr, Zr, alpha, V, iters=40):
    """Refine (alpha, V) towards an exact solution of S(alpha) V = 0 by Gauss-Newton steps of least
    norm (alpha: multipliers, V: orthonormal basis of the kernel); None if it does not converge."""
    n, q = Yr.shape
    f = V.shape[1]
    alpha = alpha.copy()
    for _ in range(iters):
        S = _combination(Yr, Zr, np.arange(n), alpha)
        R = S @ V
        if np.linalg.norm(R) <= 1e-14 * np.linalg.norm(S):
            return alpha / np.max(np.abs(alpha))
        # d/d alpha_k of S V is A_k V = y_k (y_k^T V) - z_k (z_k^T V); d/dV of S V is S (per column)
        Ja = (Yr[:, :, None] * (Yr @ V)[:, None, :] - Zr[:, :, None] * (Zr @ V)[:, None, :])
        Ja = Ja.transpose(2, 1, 0).reshape(q * f, n)  # column-major vec of each q x f matrix
        Jv = np.kron(np.eye(f), S)
        try:
            delta = np.linalg.lstsq(np.hstack([Ja, Jv]), -R.reshape(-1, order="F"), rcond=None)[0]
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(delta)):
            return None
        alpha = alpha + delta[:n]
        V = np.linalg.qr(V + delta[n:].reshape(q, f, order="F"))[0]
    S = _combination(Yr, Zr, np.arange(n), alpha)
    if np.linalg.norm(S @ V) <= 1e-12 * np.linalg.norm(S):
        return alpha / np.max(np.abs(alpha))
    return None


def interior_point_rank(w, *, small_max=1e-4, min_gap=1e2):
    """The rank of an interior-point solution from its ascending eigenvalues ``w``, or None.

    Interior-point solutions are PSD only to the solver's accuracy: the eigenvalues that are zero in
    exact arithmetic come back anywhere from about 1e-12 to 1e-6 of the top (measured: up to 9.7e-7
    from Clarabel on 2-sparse pairs at p = 10, where a fixed 1e-6 threshold called that eigenvalue
    "non-zero" and gave up).  So the cut is the largest relative gap between consecutive eigenvalues
    below ``small_max`` of the top and the next one up, at least ``min_gap``; None when there is no
    such gap (or no positive top).  A guess only: every combination built on it is checked again."""
    w = np.asarray(w, dtype=float)
    top = float(w[-1]) if w.size else 0.0
    if not top > 0:
        return None
    floor = 1e-12 * top
    best, rank = min_gap, None
    for k in range(1, w.size):  # k eigenvalues counted as zero
        lo = max(abs(float(w[k - 1])), floor)
        if lo > small_max * top:
            break
        if float(w[k]) / lo >= best:
            best, rank = float(w[k]) / lo, w.size - k
    if rank is None and float(w[0]) > small_max * top:
        return w.size  # clearly definite
    return rank


def _primal_point(L, q):
    """An interior-point solution of ``find X in span(L), X >= 0, trace X = 1`` (a point of maximal
    rank, to the solver's accuracy), or None."""
    import cvxpy as cp

    c = solve_in_span(cp, L, q, lambda X, cons: cp.Problem(cp.Minimize(0), [cp.trace(X) == 1, X >> 0, *cons]))
    return None if c is None else smat(L @ c, q)


def _complementary_multipliers(Yr, Zr, L, S0):
    """Multipliers of the dual point of :func:`_complementary_pair`, started from the SDPs' points."""
    if L.shape[1] == 0:
        return None
    X0 = _primal_point(L, Yr.shape[1])
    if X0 is None:
        return None
    out = _complementary_pair(Yr, Zr, L, S0, X0)
    if out is None:
        return None
    return _multipliers_for(Yr, Zr, out[0])


def _project_on_primal_face(Yr, Zr, alpha, L, q, rank):
    """Multipliers whose combination vanishes on the range of a maximal-rank PSD solution.

    The range of the interior-point solution of ``find X in L, X >= 0, trace X = 1`` is accurate to
    first order (unlike the kernel of a nearly PSD dual matrix): project alpha onto the multipliers
    whose combination annihilates that range.  None if the ranks do not match or cvxpy fails."""
    X = _primal_point(L, q)
    if X is None:
        return None
    w, V = np.linalg.eigh(X)
    if interior_point_rank(w) != q - rank:
        return None
    K = V[:, rank:]
    return vanishing_on(Yr, Zr, alpha, K, rcond=1e-6)


def _sym_product_columns(X, V, q):
    """Columns ``svec(X smat(v) + smat(v) X)`` for the columns v of V (svec coordinates)."""
    Ms = smat(V.T, q)  # (m, q, q)
    return svec(X @ Ms + Ms @ X).T


def _complementary_pair(Yr, Zr, L, S0, X0, iters=30):
    """Newton's method on the primal-dual pair of the reduction: X in span(L) (the solutions), S
    orthogonal to L (in the span of the pair matrices), both of unit trace, with ``S X + X S = 0``.

    Started from interior-point solutions of the two feasibility SDPs (maximal-rank points, but with
    a hidden face only accurate to about the square root of the solver's tolerance), it converges
    quadratically where they are strictly complementary (rank S + rank X = q, the usual case of a
    single reduction step), to a pair that is exact to rounding: S's kernel then contains X's range
    to rounding, which is what a checked facial-reduction step needs.  Returns (S, X) or None."""
    q = Yr.shape[1]
    k = L.shape[1]
    P = L.shape[0]
    t = svec(np.eye(q))
    c = L.T @ svec(X0)
    s = svec(S0)
    s = s - L @ (L.T @ s)
    for _ in range(iters):
        X, S = smat(L @ c, q), smat(s, q)
        R = np.concatenate([svec(S @ X + X @ S), L.T @ s, [t @ (L @ c) - 1.0, t @ s - 1.0]])
        scale = max(float(np.linalg.norm(S)) * float(np.linalg.norm(X)), 1e-300)
        if np.linalg.norm(R[:P]) <= 1e-15 * scale and np.linalg.norm(R[P:]) <= 1e-14:
            return S, X
        J = np.zeros((P + k + 2, k + P))
        J[:P, :k] = _sym_product_columns(S, L, q)
        J[:P, k:] = _sym_product_columns(X, np.eye(P), q)
        J[P:P + k, k:] = L.T
        J[P + k, :k] = L.T @ t
        J[P + k + 1, k:] = t
        try:
            d = np.linalg.lstsq(J, -R, rcond=None)[0]
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(d)):
            return None
        c, s = c + d[:k], s + d[k:]
    X, S = smat(L @ c, q), smat(s, q)
    if np.linalg.norm(S @ X + X @ S) <= 1e-13 * np.linalg.norm(S) * np.linalg.norm(X):
        return S, X
    return None


def _multipliers_for(Yr, Zr, S, kernel=None):
    """Least-squares multipliers alpha with sum_k alpha_k (y_k y_k^T - z_k z_k^T) = S (rows scaled to
    unit norm for the solve), largest |entry| 1; None if all zero.  With ``kernel`` (an orthonormal svec
    basis of the solutions of the pairs, i.e. of the null space of the pair matrix rows) and sparse
    pairs, the minimum-norm multipliers come from the normal equations (:mod:`._lsq`: 0.02 s instead of
    0.3 s at p = 40, sampled pairs); the rank-revealing dense solve is the fallback."""
    beta = None
    A = _lsq.pair_matrix_rows(Yr, Zr) if kernel is not None else None
    if A is not None:
        nrm = np.sqrt(np.asarray(A.multiply(A).sum(axis=1)).ravel())
        # pairs whose matrix is rounding (as constraint_rows drops them, so the kernel ignores them) get
        # no multiplier: scaled to unit norm they would be noise constraints outside the kernel's reach
        size = np.einsum("ij,ij->i", Yr, Yr) + np.einsum("ij,ij->i", Zr, Zr)
        live = nrm > 1e-12 * size
        nrm[~live] = 1.0
        beta = _lsq.min_norm_combination(sp.diags(live / nrm) @ A, svec(S), kernel)
    if beta is None:
        A = svec_outer_difference(Yr, Zr)
        nrm = np.linalg.norm(A, axis=1)
        nrm[nrm == 0] = 1.0
        beta = sla.lstsq((A / nrm[:, None]).T, svec(S), cond=1e-13, lapack_driver="gelsy", check_finite=False)[0]
    alpha = beta / nrm
    return alpha / np.max(np.abs(alpha)) if np.any(alpha) else None


#: a combination smaller than this fraction of its rounding scale sum_k |alpha_k| (|y_k|^2 + |z_k|^2) is
#: numerically zero: its eigenvalues are rounding, and no rank or kernel can be read from them
NEGLIGIBLE_COMBINATION = 1e-8
#: a combination at least this fraction of its rounding scale needs no clean-up (the least-squares
#: projection below costs a dense solve over pairs x unknowns: 3 s at p = 40 with 2,062 pairs)
HEALTHY_COMBINATION = 1e-3
#: largest pairs x svec size for which linearly dependent pair matrices are factored out of multipliers
ESSENTIAL_MAX_ENTRIES = 20_000_000


def essential_multipliers(Yr, Zr, alpha):
    """The multipliers of least norm with the same combination as ``alpha`` (any part that a linear
    dependence among the pair matrices cancels is dropped), largest |entry| 1; None when the combination
    is numerically zero against its rounding scale (:data:`NEGLIGIBLE_COMBINATION`).  With more pairs
    than unknowns the pair matrices are dependent, and multipliers that are mostly a dependence give a
    combination made of rounding, whose "eigenvalue gap" is noise (found on exact integer pairs: a
    refined step of rank 7 whose combination was 1e-17 everywhere).  A combination of at least
    :data:`HEALTHY_COMBINATION` of its scale is returned as it is (normalised)."""
    alpha = np.asarray(alpha, dtype=float)
    S = _combination(Yr, Zr, np.arange(len(alpha)), alpha)
    scale = float(np.abs(alpha) @ (np.einsum("ij,ij->i", Yr, Yr) + np.einsum("ij,ij->i", Zr, Zr)))
    if not np.linalg.norm(S) > NEGLIGIBLE_COMBINATION * scale:
        return None
    n, q = Yr.shape
    if np.linalg.norm(S) < HEALTHY_COMBINATION * scale and n * q * (q + 1) // 2 <= ESSENTIAL_MAX_ENTRIES \
            and n > q * (q + 1) // 2:
        A = svec_outer_difference(Yr, Zr)
        beta = sla.lstsq(A.T, A.T @ alpha, cond=1e-12, lapack_driver="gelsy", check_finite=False)[0]
        if np.any(beta):
            alpha = beta
    return alpha / np.max(np.abs(alpha))


def vanishing_on(Yr, Zr, alpha, K, *, rcond):
    """The multipliers nearest to ``alpha`` (least squares) whose combination vanishes on the range
    of ``K`` (``S(alpha) K = 0``, linear in alpha), made essential (:func:`essential_multipliers`) and
    scaled to largest |entry| 1; None if the combination is numerically zero."""
    q, f = K.shape
    out = None
    # sparse pairs: the normal equations, the antisymmetric directions as the left null space.  They resolve
    # singular values down to about 1e-8 (else the refinement fails and gelsy decides), so only where the
    # caller's rank cut is finer than that (a coarser cut deliberately keeps some directions)
    Gs = _lsq.combination_times(Yr, Zr, K) if rcond <= 1e-10 else None
    if Gs is not None:
        out = _lsq.project_off_rows(Gs, alpha, _lsq.antisymmetric_directions(K))
    if out is None:
        G = (Yr[:, :, None] * (Yr @ K)[:, None, :] - Zr[:, :, None] * (Zr @ K)[:, None, :])
        G = G.transpose(2, 1, 0).reshape(q * f, Yr.shape[0])
        # alpha minus the min-norm least-squares solution of G d = G alpha (rank decided at rcond)
        out = alpha - sla.lstsq(G, G @ alpha, cond=rcond, lapack_driver="gelsy", check_finite=False)[0]
    if not np.any(out):
        return None
    return essential_multipliers(Yr, Zr, out)


def psd_in_span(M, B=None):
    """Coefficients ``c`` with ``sum_j c_j M[j]`` positive definite, its smallest eigenvalue as large as
    possible at trace 1, or (``B`` given, an (n, d) matrix) at ``||B c||_1 <= 1`` (an SDP, cvxpy); None
    when no positive definite combination is found, or cvxpy is missing.  ``M``: a (d, m, m) array of
    symmetric matrices.  A candidate only: the exact solver re-checks what it builds from ``c`` in
    rational arithmetic."""
    if not have_sdp():
        return None
    import cvxpy as cp  # optional dependency, only reached when the SDP is used

    M = np.asarray(M, dtype=float)
    d, m = M.shape[0], M.shape[1]
    if d == 0 or m == 0:
        return None
    c, t = cp.Variable(d), cp.Variable()
    S = cp.reshape(M.reshape(d, m * m).T @ c, (m, m), order="F")
    S = (S + S.T) / 2
    norm = cp.trace(S) == 1 if B is None else cp.norm1(np.asarray(B, dtype=float) @ c) <= 1
    prob = cp.Problem(cp.Maximize(t), [S - t * np.eye(m) >> 0, norm])
    if not solve_with_fallback(cp, prob, ok=lambda _: c.value is not None and t.value is not None):
        return None
    if not float(t.value) > 0:
        return None
    return np.asarray(c.value, dtype=float)


def combination_step(Yr, Zr, L, raw=None):
    """A PSD combination of the pair matrices on the current face, by an SDP (cvxpy).

    ``L``: orthonormal svec basis of the solutions of the (reduced) pair equalities; a matrix S in
    the span of the pair matrices is exactly one orthogonal to L.  Solves
    ``find S >= 0, trace S = 1, L^T svec(S) = 0`` (an interior-point method returns a point of
    largest rank, so as much as possible is removed in one step), then expresses S in the pairs
    (least squares for the multipliers) and re-checks the combination they give.  An interior-point
    S is PSD only to about 1e-8, and near a hidden face its kernel is off by about the square root of
    that; the multipliers are made accurate by, in order: rounding to simple rationals (structured
    feedback); Newton's method on the primal-dual pair ``S X + X S = 0`` (:func:`_complementary_pair`,
    from the SDP's S and a maximal-rank primal X; quadratic where they are strictly complementary,
    milliseconds); Newton on ``S(alpha) V = 0``; projection onto the primal face.  Returns
    ``(step, kernel, accuracy)`` (accuracy: 1e-12 for rational multipliers; otherwise the combination
    is PSD to rounding but the pairs themselves are rounded, so a solution sits about
    ``sqrt(rounding / gap)`` off the kernel, which is what is returned), or None when no combination
    exists (the SDP is infeasible), cvxpy is missing, or the numerical rank is unclear.

    ``raw``: a dict that, when given, receives the SDP's own multipliers (``"alpha"``, over the rows of
    ``Yr``) and the eigenvalues of its combination (``"eigenvalues"``, ascending), also when no step
    is returned: the exact solver snaps those to an exact step for integer pairs.
    """
    if not have_sdp():
        return None
    import cvxpy as cp

    q = Yr.shape[1]
    # S stays a free matrix constrained by L (not S = smat(N c) over the pair rows' span N, even where N is
    # far smaller: Gaussian pairs, p = 30, 60 pairs, Clarabel failed on that form, SCS ended inaccurate
    # after 25 s and the solve was undecided; measured)
    S = cp.Variable((q, q), PSD=True)
    iu, ju = np.triu_indices(q)
    w = np.where(iu == ju, 1.0, np.sqrt(2.0))
    svec_S = cp.hstack([S[i, j] for i, j in zip(iu, ju)]) if q > 1 else cp.reshape(S, (1,))
    svec_S = cp.multiply(w, svec_S)
    cons = [cp.trace(S) == 1]
    if L.shape[1]:
        cons.append(L.T @ svec_S == 0)
    prob = cp.Problem(cp.Minimize(0), cons)
    if not _solved(cp, prob, S):
        return None
    Sv = (S.value + S.value.T) / 2
    w, V = np.linalg.eigh(Sv)
    rank = interior_point_rank(w)
    A = svec_outer_difference(Yr, Zr)  # n x q(q+1)/2, one row per pair
    alpha = np.linalg.lstsq(A.T, svec(Sv), rcond=None)[0]
    if not np.any(alpha):
        return None
    alpha = alpha / np.max(np.abs(alpha))
    if raw is not None:
        raw.update(alpha=alpha, eigenvalues=w)
    if rank is None or rank == q:
        return None  # no reduction, or no clear rank
    # interior-point solutions are PSD only to about 1e-8, and the kernel of such a matrix can be off
    # by the square root of that (1e-4): a second-order effect of the coupling between kernel and
    # range.  Structured feedback has simple rational multipliers: round them (as rational
    # sum-of-squares certificates do).  Otherwise polish by Newton's method on S(alpha) V = 0.
    rounded = np.array([float(Fraction(float(a)).limit_denominator(1000)) for a in alpha])
    out = None
    # (multipliers, accuracy, whether the rank must match the SDP's): rounding; Newton's method on the
    # primal-dual pair (PSD to rounding where it converges, and its rank is its own: the SDP's rank
    # decision is only as good as its tolerance); Newton on S(alpha) V = 0; the primal face's projection.
    # Only rational multipliers give a face exact to rounding: for the others the pairs themselves
    # (rounded, so Phi* satisfies them only to ~1e-17) put a solution at about sqrt(rounding / gap)
    # from the kernel, which is the accuracy returned below
    candidates = ((lambda: rounded, 1e-12, True), (lambda: _complementary_multipliers(Yr, Zr, L, Sv), 1e-9, False),
                  (lambda: _newton_polish(Yr, Zr, alpha, V[:, : q - rank]), 1e-6, True),
                  (lambda: _project_on_primal_face(Yr, Zr, alpha, L, q, rank), 1e-6, True))
    for make, accuracy, same_rank in candidates:  # cheapest first; each computed only if the previous failed
        cand = make()
        if cand is None:
            continue
        idx = np.flatnonzero(cand)
        if idx.size == 0:
            continue
        S = _combination(Yr, Zr, idx, cand[idx])
        out = _kernel_of_psd(S, psd_rtol=1e-12 if accuracy < 1e-9 else 1e-9)
        if out is not None and 0 < out[0] < q and (out[0] == rank or not same_rank):
            alpha = cand
            break
        out = None
    if out is None:
        return None
    k, K = out
    if accuracy > 1e-12:
        accuracy = max(accuracy, _kernel_accuracy(S, k))
    return FaceStep(indices=idx, values=alpha[idx], rank=k, kind="combination"), K, accuracy


def _congruence_columns(N, q):
    """Matrix of the map svec(T) -> svec(N T N^T) for T symmetric of size N.shape[1]."""
    r = N.shape[1]
    t = r * (r + 1) // 2
    E = smat(np.eye(t), r)  # (t, r, r): the svec basis
    return svec(N @ E @ N.T).T  # (q(q+1)/2, t)


def boundary_step(Yr, Zr, L, X, *, pd_floor=1e-6):
    """A PSD combination of the pairs built from a boundary point of the solution set, without an SDP.

    ``X``: a trace-1 PSD member of span(L) (the solutions on the face) with a clear eigenvalue gap and
    no positive definite member found.  With N the eigenvectors below the gap, look for S = N T N^T,
    T positive definite, orthogonal to span(L): then S lies in the span of the pair matrices and is
    PSD by construction, which is all a facial-reduction step needs (whatever X is; a wrong X only
    makes T impossible).  T: the projection of the identity onto the allowed T, else alternating
    projections.  The multipliers come from least squares and are re-checked like the others.
    Returns ``(step, kernel, accuracy)`` as :func:`combination_step`, or None."""
    q = Yr.shape[1]
    if X is None or L.shape[1] == 0:
        return None
    w, V = np.linalg.eigh((X + X.T) / 2)
    top = float(w[-1])
    if not top > 0:
        return None
    # the clear gap: eigenvalues below 1e-7 of the top, the next one up at least GAP times larger
    small = w <= RANK_RTOL * top
    m = int(np.count_nonzero(small))
    if m == 0 or m == q or float(w[m]) < GAP * max(float(np.abs(w[:m]).max()), 1e-15 * top):
        return None
    N = V[:, :m]
    C = L.T @ _congruence_columns(N, q)  # k x t: T must satisfy C svec(T) = 0
    t = m * (m + 1) // 2
    U, sv, Vt = np.linalg.svd(C, full_matrices=True)
    rank = int(np.count_nonzero(sv > 1e-10 * sv[0])) if sv.size and sv[0] > 0 else 0
    B = Vt[rank:].T  # allowed svec(T), orthonormal columns
    if B.shape[1] == 0:
        return None
    # T of unit trace with its smallest eigenvalue as large as alternating projections find (a small
    # one makes a weak step: verify's bound on the removed mass is rounding / lambda_min)
    T = None
    for floor in (0.5, 0.1, 1e-2, 1e-3, 1e-4, pd_floor):
        cand, lam0 = _alternating_projections(B, m, floor / m, 200, lambda v, f=floor: v > 0.5 * f / m)
        if cand is None:
            return None
        if lam0 > 0.5 * floor / m:
            T = cand
            break
    if T is None:
        return None
    S = N @ T @ N.T
    # the normal equations first; where their multipliers' combination is not PSD to 1e-9 (they pass
    # through a singular value of 1e-4 of the largest and the residual is 1e-8: sampled pairs, p = 40),
    # the rank-revealing dense solve
    for kernel in (L, None):
        alpha = _multipliers_for(Yr, Zr, S / np.linalg.norm(S), kernel=kernel)
        if alpha is None:
            continue
        idx = np.flatnonzero(alpha)
        Sa = _combination(Yr, Zr, idx, alpha[idx])
        out = _kernel_of_psd(Sa, psd_rtol=1e-9)
        if out is not None and out[0] == m:
            break
    else:
        return None
    k, K = out
    return FaceStep(indices=idx, values=alpha[idx], rank=k, kind="combination"), K, max(1e-9, _kernel_accuracy(Sa, k))


def span_member(cp, B, q, *, constrained=False):
    """A symmetric cvxpy expression X in span(smat(B)) and the function that reads the solver's answer
    back: ``(X, constraints, coefficients)``, where ``coefficients()`` gives c with smat(B c) the answer
    (projected onto span(B) in the second form, so that what the caller checks is a member whatever the
    solver's accuracy).  ``B``: orthonormal svec columns.  Two forms: X = smat(B c) with c free; or
    (``constrained``) X a free symmetric matrix with ``N^T svec(X) = 0`` for an orthonormal basis N of
    the complement of span(B) (the pair rows' span)."""
    P, k = B.shape
    if not constrained:
        c = cp.Variable(k)
        return _smat_expr(cp, B, c, q), [], lambda: c.value
    N = np.linalg.svd(B, full_matrices=True)[0][:, k:]
    X = cp.Variable((q, q), symmetric=True)
    cons = [(sp.csr_matrix(N.T) @ _smat_operator(q).T) @ cp.reshape(X, (q * q,), order="F") == 0]
    return X, cons, lambda: None if X.value is None else B.T @ svec((X.value + X.value.T) / 2)


def solve_in_span(cp, B, q, make_problem):
    """Solve an SDP over X in span(smat(B)): ``make_problem(X, constraints)`` builds it from
    :func:`span_member`'s expression and constraints.  Returns the coefficients c of the answer
    smat(B c), or None.  Tried in order: the free-coefficient form with the preferred solver (as always);
    where that solver fails and B has more columns than its complement, the constrained form with it;
    then the fallback solver (SCS) on the first form.  Measured (Gaussian pairs, p = 30, 50 and 60 pairs:
    405-415 columns against 50-60 constraints): Clarabel failed on the first form of the positive
    definite search and of the primal point, and SCS ran for 70-77 s (its 100,000 iterations) where
    Clarabel solves the constrained form in 0.2-0.4 s (optimum 7.6288e-6 against SCS's 7.6306e-6).  The
    second form is not tried first: the SDPs are sensitive to their form, and with it first at least two
    of the 1,298 verdicts of the p = 10/20 check changed, one from decided to undecided (measured on the
    solves that an earlier version changed; the whole check was not rerun for that order)."""
    P, k = B.shape
    forms = [False, True] if k > P - k else [False]
    for constrained in forms:
        X, cons, coefficients = span_member(cp, B, q, constrained=constrained)
        if solve_with_fallback(cp, make_problem(X, cons), fallback=False, ok=lambda _: X.value is not None):
            return coefficients()
    X, cons, coefficients = span_member(cp, B, q)
    if solve_with_fallback(cp, make_problem(X, cons), only_fallback=True, ok=lambda _: X.value is not None):
        return coefficients()
    return None


def _smat_expr(cp, B, c, q):
    """The symmetric cvxpy expression smat(B c), built entry by entry from the svec columns."""
    X = cp.reshape(_smat_operator(q) @ (B @ c), (q, q), order="F")
    return (X + X.T) / 2


def _smat_operator(q):
    """The sparse matrix T with vec_F(smat(v)) = T v; for symmetric X, T^T vec_F(X) = svec(X) (each
    off-diagonal entry counted twice with weight 1/sqrt(2))."""
    iu, ju = np.triu_indices(q)
    w = np.where(iu == ju, 1.0, 1.0 / np.sqrt(2.0))
    # vec_F(smat(v)) = T v with T[(j*q+i), k] = T[(i*q+j), k] = w_k for svec position k = (i, j)
    k = np.arange(iu.size)
    rows = np.concatenate([ju * q + iu, iu * q + ju])
    cols = np.concatenate([k, k])
    vals = np.concatenate([w, w])
    mask = np.concatenate([np.ones(k.size, bool), iu != ju])
    return sp.csr_matrix((vals[mask], (rows[mask], cols[mask])), shape=(q * q, iu.size))

"""Near solutions: a floating-point proof that pairs do not pin Phi down to a given precision.

For pairs computed in floating point from an irrational target, the exact solution set of the stored
numbers is not the one a user asks about (see :func:`featlib.verify`): near the identification
threshold rounding can remove the target's whole face or leave an overdetermined system on it, and a
"not identified" verdict there can be neither proved exactly nor refuted.  What *can* be proved is the
statement a user with such data needs:

    *two PSD matrices W1 = L1 L1^T and W2 = L2 L2^T, at relative trace-norm distance at least*
    ``distance`` *(each scaled to trace 1), both satisfy every pair to relative residual at most*
    ``tol``: ``|y^T W y - z^T W z| <= tol (||y||^2 + ||z||^2) tr W``.

So the pairs, read to precision ``tol``, do not tell W1 from W2: no matrix lies within ``distance / 2``
of every PSD matrix that fits the pairs to ``tol`` (both of these do).  The target itself fits
floating-point pairs only to about 1e-16, the rounding of the pairs, so ``tol`` = 1e-12 asks for no
more than the data hold.  It is a statement of a different kind from an exact "not identified" (two
exact solutions) and is reported as such (:data:`featlib.experiments.PHASE_OUTCOMES`: "not identified
(near solutions)").  The phase experiments ask for ``distance = 2 m``, m their certificate margin: an
"identified" certificate at margin m puts every *exact* solution within m of its generator, so two
exact solutions 2 m apart would both have to sit at exactly m, on opposite sides.  For solutions to
precision ``tol`` both statements can hold, since "identified" bounds exact solutions only.

:func:`verify_near_solutions` checks such a claim from the pairs and the two factors alone, with
proved rounding-error bounds (:mod:`featlib._rigorous`): PSD-ness holds by construction (a Gram
matrix), each residual is bounded above with the rounding of every product, and the distance is
bounded below through ``||D||_* >= <D, U> / ||U||_2`` for the sign matrix U of D's eigenvectors (no
eigenvalue routine is trusted: any U gives a lower bound).  Each pair and each factor is first scaled
by a power of two (exact; the statement is scale-free), so entries of 1e+-160 neither overflow nor
underflow.  :func:`featlib.solvers.near_solutions` searches for such a pair of matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _checks
from . import _rigorous as _R
from .certificates import CertificateError, FLOAT_MAX_P, Verification
from .feedback import PairFeedback

__all__ = ["NearSolutions", "verify_near_solutions", "NEAR_VERDICT"]

#: the verdict a valid :func:`verify_near_solutions` proves
NEAR_VERDICT = "not identified (near solutions)"


@dataclass(frozen=True)
class NearSolutions:
    """A claim that the pairs leave two distinguishable matrices at a given precision (module docstring).

    ``factors``: ``(L1, L2)``, each p x k (k >= 1), the matrices ``L L^T``; ``tol``: the claimed
    largest relative residual of each; ``distance``: the claimed smallest relative trace-norm distance
    between them after scaling each to trace 1.  ``residuals`` and ``found_distance``: what the search
    measured (information only; :func:`verify_near_solutions` re-derives both with proved bounds).
    """

    factors: tuple
    tol: float
    distance: float
    residuals: tuple = (float("nan"), float("nan"))
    found_distance: float = float("nan")

    def matrices(self):
        """The two matrices ``L L^T`` (floating point)."""
        return tuple(np.asarray(L, dtype=float) @ np.asarray(L, dtype=float).T for L in self.factors)

    def __repr__(self) -> str:
        ks = ", ".join(str(np.shape(L)[1]) if np.ndim(L) == 2 else "?" for L in self.factors)
        return (f"NearSolutions(ranks ({ks}), tol={self.tol:.1e}, distance={self.distance:.1e}, "
                f"found {self.found_distance:.2e})")


def _factor(L, p, i):
    try:
        arr = np.asarray(L)
    except Exception as exc:  # ragged lists and the like
        raise CertificateError(f"factor {i} must be a p x k array of finite real numbers ({exc}).") from None
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise CertificateError(f"factor {i} must hold finite real numbers; got dtype {arr.dtype}.")
    arr = arr.astype(float)
    if arr.ndim != 2 or arr.shape[0] != p or not 1 <= arr.shape[1] <= p:
        raise CertificateError(f"factor {i} must have shape (p, k) with p = {p} and 1 <= k <= p; got {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise CertificateError(f"factor {i} holds NaN or infinite values.")
    if not np.any(arr):
        raise CertificateError(f"factor {i} is zero: L L^T = 0 is not a non-zero solution.")
    return arr


def _pow2_scale(A):
    """``A`` divided by a power of two (exactly) so that its largest |entry| lies in [0.5, 1)."""
    m = float(np.max(np.abs(A)))
    return np.ldexp(A, -int(np.frexp(m)[1])) if m > 0 else A


def _residual_bounds(Y, Z, L):
    """Proved (lower, upper) bounds on each pair's relative residual ``|y^T W y - z^T W z| / ((|y|^2 +
    |z|^2) tr W)`` for W = L L^T, on pairs and a factor scaled to entries below 1 (``_pow2_scale``)."""
    n, p = Y.shape
    k = L.shape[1]
    g_p, g_k = _R.gamma(p), _R.gamma(k)
    absL = np.abs(L)
    quads, errs = [], []
    for A in (Y, Z):
        Uh = A @ L  # n x k
        bound = np.abs(A) @ absL  # entrywise |A| |L| (its own rounding is covered by SAFETY)
        e = _R.SAFETY * (g_p * np.linalg.norm(bound, axis=1) + _R.TINY * p * np.sqrt(k))  # ||fl(u) - u||
        Q = np.einsum("ij,ij->i", Uh, Uh)
        nu = np.sqrt(Q)
        # |fl(sum u_j^2) - |u|^2| <= gamma_k |fl(u)|^2 + (2 |fl(u)| + e) e
        errs.append(_R.SAFETY * (g_k * Q + (2 * nu + e) * e + _R.TINY * k))
        quads.append(Q)
    r = quads[0] - quads[1]
    err = errs[0] + errs[1] + _R.SAFETY * _R.U * (quads[0] + quads[1])
    g2p = _R.gamma(2 * p)
    nu_hat = np.einsum("ij,ij->i", Y, Y) + np.einsum("ij,ij->i", Z, Z)
    nu_lo = nu_hat * (1 - _R.SAFETY * g2p) - _R.SAFETY * _R.TINY * 2 * p
    nu_hi = nu_hat * (1 + _R.SAFETY * g2p) + _R.SAFETY * _R.TINY * 2 * p
    t_hat = float(np.einsum("ij,ij->", L, L))
    gt = _R.SAFETY * _R.gamma(p * k)
    t_lo = t_hat * (1 - gt) - _R.SAFETY * _R.TINY * p * k
    t_hi = t_hat * (1 + gt) + _R.SAFETY * _R.TINY * p * k
    with np.errstate(divide="ignore", invalid="ignore"):
        upper = (np.abs(r) + err) / (np.maximum(nu_lo, 0.0) * max(t_lo, 0.0)) * (1 + 8 * _R.U)
        lower = np.maximum(np.abs(r) - err, 0.0) / (nu_hi * t_hi) * (1 - 8 * _R.U)
    upper = np.where(nu_hat > 0, upper, 0.0)  # a trivial pair y = z = 0 holds for every W
    lower = np.where(nu_hat > 0, lower, 0.0)
    return lower, upper


def _normalised(L):
    """(fl(L L^T) / fl(tr), a bound on its Frobenius distance from the exact L L^T / tr(L L^T))."""
    p, k = L.shape
    W = L @ L.T
    t = float(np.einsum("ij,ij->", L, L))
    fl_ = _R.fro(L)
    E = _R.matmul_error(fl_, fl_, k, p * p)
    gt = _R.SAFETY * _R.gamma(p * k)
    t_lo = t * (1 - gt)
    Wn = W / t
    # |W/t - fl(W)/fl(t)| <= |W - fl W| / t + |fl W| |1/t - 1/fl(t)|, plus the division's rounding
    err = E / t_lo + _R.fro(W) * gt / (t * (1 - gt)) + _R.SAFETY * _R.U * _R.fro(Wn)
    return Wn, err


def _trace_norm_lower_bound(D, err):
    """A proved lower bound on ``||D'||_*`` for every symmetric D' with ``||D' - D||_F <= err``: the
    sign matrix U of D's (computed) eigenvectors gives ``||D'||_* >= <D', U> / ||U||_2``."""
    p = D.shape[0]
    Ds = (D + D.T) / 2
    try:
        w, V = np.linalg.eigh(Ds)
    except np.linalg.LinAlgError:
        return 0.0
    U = (V * np.sign(w)) @ V.T
    inner = float(np.einsum("ij,ij->", D, U))
    inner_err = _R.SAFETY * (_R.gamma(p * p) * float(np.einsum("ij,ij->", np.abs(D), np.abs(U))) + _R.TINY * p * p)
    lo = inner - inner_err - err * _R.fro(U) * (1 + 4 * _R.U)
    # ||U||_2^2 = ||U^T U||_2 <= 1 + ||U^T U - I||_F: U is orthogonal up to rounding, so this is 1 + 1e-15
    # where a generic bound (spectral_norm_upper_bound) would give away 2 %
    fu = _R.fro(U)
    G = U.T @ U - np.eye(p)
    g = _R.fro(G) * (1 + _R.SAFETY * _R.gamma(p * p)) + _R.matmul_error(fu, fu, p, p * p) + _R.SAFETY * _R.U * np.sqrt(p)
    nrm = float(np.sqrt(1 + g)) * (1 + 4 * _R.U)
    if not (lo > 0 and np.isfinite(nrm) and nrm > 0):
        return 0.0
    return float(np.nextafter(lo / nrm * (1 - 4 * _R.U), -np.inf))


def verify_near_solutions(feedback, near) -> Verification:
    """Check a :class:`NearSolutions` claim against the pairs, with proved rounding-error bounds.

    Valid: proved that both matrices ``L L^T`` (PSD by construction) satisfy every pair to relative
    residual ``near.tol`` (``|y^T W y - z^T W z| <= tol (||y||^2 + ||z||^2) tr W``) and lie at relative
    trace-norm distance at least ``near.distance`` after scaling to trace 1 (the module docstring says
    what that means).  Invalid: a residual is proved above ``tol``, or the distance proved below
    ``distance``.  Inconclusive: the rounding bounds decide neither.  ``residual`` of the result: the
    largest proved residual bound; ``distance``: the proved distance bound.  Raises
    :class:`~featlib.certificates.CertificateError` for a claim that cannot be checked as given (wrong
    shapes, NaN, a zero factor, tolerances out of range)."""
    if not isinstance(feedback, PairFeedback):
        raise _checks.ArgumentTypeError(f"verify_near_solutions expects a PairFeedback; got {type(feedback).__name__}.")
    if not isinstance(near, NearSolutions):
        raise CertificateError(f"verify_near_solutions expects a NearSolutions claim; got {type(near).__name__}.")
    p = feedback.p
    if p > FLOAT_MAX_P:
        raise CertificateError(f"near solutions are checked densely up to p = {FLOAT_MAX_P}; got p = {p}.")
    if not isinstance(near.factors, (tuple, list)) or len(near.factors) != 2:
        raise CertificateError("NearSolutions.factors must hold exactly two factors (L1, L2).")
    tol = near.tol
    dist = near.distance
    if not (isinstance(tol, (int, float, np.floating)) and 0 < float(tol) < 1):
        raise CertificateError(f"NearSolutions.tol must be a number in (0, 1); got {tol!r}.")
    if not (isinstance(dist, (int, float, np.floating)) and 0 < float(dist) <= 2):
        raise CertificateError(f"NearSolutions.distance must be a number in (0, 2]; got {dist!r}.")
    tol, dist = float(tol), float(dist)
    Ls = [_factor(L, p, i + 1) for i, L in enumerate(near.factors)]
    # each pair (y and z by the same power of two, as verify does: PairFeedback._normalized) and each
    # factor scaled exactly: the statement is invariant, and no product overflows or underflows far
    scaled = feedback._normalized()[0]
    Ys = np.asarray(scaled.dense_y(), dtype=float)
    Zs = np.asarray(scaled.dense_z(), dtype=float)
    if not (np.all(np.isfinite(Ys)) and np.all(np.isfinite(Zs))):
        raise CertificateError("the pairs hold NaN or infinite values.")
    Ls = [_pow2_scale(L) for L in Ls]
    checks, worst = [], 0.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for i, L in enumerate(Ls, start=1):
            lo, hi = _residual_bounds(Ys, Zs, L)
            top_lo = float(lo.max(initial=0.0))
            top_hi = float(hi.max(initial=0.0))
            if top_lo > tol:
                return Verification("invalid", NEAR_VERDICT, False, checks,
                                    f"matrix {i} violates a pair: relative residual at least {top_lo:.2e} > tol {tol:.1e}")
            if not top_hi <= tol:  # also NaN
                return Verification("inconclusive", NEAR_VERDICT, False, checks,
                                    f"matrix {i}: its residual could not be proved below tol {tol:.1e} (bound {top_hi:.2e})")
            worst = max(worst, top_hi)
            checks.append(f"matrix {i} = L L^T (rank <= {L.shape[1]}, PSD by construction): every pair holds to "
                          f"relative residual <= {top_hi:.1e} (proved)")
        (W1, e1), (W2, e2) = (_normalised(L) for L in Ls)
        D = W1 - W2
        errD = e1 + e2 + _R.SAFETY * _R.U * (_R.fro(W1) + _R.fro(W2))
        low = _trace_norm_lower_bound(D, errD)
        high = float(np.sqrt(p) * (_R.fro(D) + errD) * (1 + 4 * _R.U))
    if high < dist:
        return Verification("invalid", NEAR_VERDICT, False, checks,
                            f"the two matrices are closer than claimed: relative trace-norm distance at most {high:.2e} "
                            f"< {dist:.1e}")
    if not low >= dist:
        return Verification("inconclusive", NEAR_VERDICT, False, checks,
                            f"the distance could not be proved to be at least {dist:.1e} (proved {low:.2e})")
    checks.append(f"relative trace-norm distance between them (each scaled to trace 1) >= {low:.2e} (proved)")
    return Verification("valid", NEAR_VERDICT, False, checks, residual=worst, distance=low)

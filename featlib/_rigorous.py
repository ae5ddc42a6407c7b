"""Floating-point linear algebra with proved error bounds (the part of :func:`featlib.verify` that
must not lie).

Everything here assumes IEEE 754 binary64 with rounding to nearest (what numpy uses) and inputs
whose magnitudes keep every product far from overflow; callers rescale by powers of two first.
Underflow is covered by an absolute term (:data:`TINY` per entry).

The bounds are the standard ones of Higham, *Accuracy and Stability of Numerical Algorithms*
(2nd ed.), Lemma 3.1 and Section 3.5: a computed sum of ``k`` products differs from the exact one by
at most ``gamma(k) * (sum of |products|)``, with ``gamma(k) = k u / (1 - k u)`` and ``u = 2**-53``.
For matrix products this gives ``|fl(AB) - AB| <= gamma(k) |A||B|`` entrywise, hence
``||fl(AB) - AB||_F <= gamma(k) ||A||_F ||B||_F``.  Every bound is then doubled (:data:`SAFETY`):
the bounds are themselves computed in floating point as sums of non-negative terms, whose relative
error is below ``gamma(n) < 1/2`` for any size used here, so doubling covers it.

The only non-elementary step is :func:`pd_lower_bound`: no eigenvalue routine is trusted.  For a
float symmetric ``T`` and any float ``L``, the identity ``T - s I = L L^T + Delta`` holds exactly for
``Delta = T - s I - L L^T``, so ``lambda_min(T) >= s - ||Delta||_2`` (Weyl); ``L`` is a Cholesky
factor of ``T - s I`` (any ``L`` would do: it only has to make ``Delta`` small), and ``||Delta||`` is
bounded by its computed value plus the rounding bound above.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla

__all__ = ["U", "TINY", "SAFETY", "gamma", "pd_lower_bound", "fro", "matmul_error", "round_dyadic",
           "spectral_norm_upper_bound", "sigma_min_lower_bound"]

#: unit roundoff of binary64
U = 2.0 ** -53
#: absolute allowance per entry for underflow in products
TINY = 2.0 ** -960
#: factor applied to every computed error bound (covers the rounding of the bound itself)
SAFETY = 2.0


def gamma(k: int) -> float:
    """``k u / (1 - k u)``: the relative error bound of a computed sum of ``k`` products."""
    ku = (int(k) + 2) * U
    if ku >= 0.5:
        raise ValueError("problem too large for the rounding-error bounds")
    return ku / (1.0 - ku)


def fro(a) -> float:
    """Frobenius norm (a float; its own rounding is covered by :data:`SAFETY` where it is used)."""
    return float(np.linalg.norm(np.asarray(a, dtype=float)))


def matmul_error(a_fro: float, b_fro: float, inner: int, entries: int = 1) -> float:
    """A bound on ``||fl(A B) - A B||_F`` from ``||A||_F``, ``||B||_F`` and the inner dimension."""
    return SAFETY * (gamma(inner) * a_fro * b_fro + TINY * inner * max(entries, 1))


def round_dyadic(ints, e):
    """The float matrix nearest (to within two roundings) to the exact matrix ``ints * 2**e``
    (``ints``: Python integers), and a proved bound on the Frobenius norm of the difference.

    ``float(v)`` of a Python integer is correctly rounded (relative error <= U) when ``|v| < 2**1024``;
    larger integers are first shifted right (truncation, relative error < 2**-60); ``ldexp`` is exact
    unless the result is subnormal (absolute error < 2**-1074 <= TINY).  Returns (None, inf) when an
    entry overflows.
    """
    ints = np.asarray(ints, dtype=object)
    out = np.empty(ints.shape)
    flat = out.reshape(-1)
    for i, v in enumerate(ints.reshape(-1)):
        v = int(v)
        shift = max(0, v.bit_length() - 1000)
        try:
            flat[i] = math.ldexp(float(v >> shift if v >= 0 else -((-v) >> shift)), e + shift)
        except OverflowError:
            return None, np.inf
    if not np.all(np.isfinite(out)):
        return None, np.inf
    # |fl - exact| <= (U + 2**-60) |exact| + TINY <= 2 U |fl| (1 + 4 U) + TINY per entry: doubled
    return out, SAFETY * (2 * U * (1 + 4 * U) * fro(out) + TINY * out.size)


def pd_lower_bound(T, err: float = 0.0) -> float:
    """A proved lower bound on the smallest eigenvalue of every symmetric ``A`` with
    ``||A - T||_2 <= err``, where ``T`` is a float matrix (symmetrised here by mirroring its upper
    triangle; the mirroring's change is added to ``err``).  Returns ``-inf`` when no positive bound
    is found (which proves nothing either way).
    """
    T = np.asarray(T, dtype=float)
    n = T.shape[0]
    if n == 0:
        return np.inf
    if not np.all(np.isfinite(T)) or not np.isfinite(err) or err < 0:
        return -np.inf
    Ts = np.triu(T) + np.triu(T, 1).T
    asym = fro(T - Ts)
    err = float(err) + SAFETY * asym
    try:
        lam = float(np.linalg.eigvalsh(Ts)[0])
    except np.linalg.LinAlgError:
        return -np.inf
    if not lam > 0:
        return -np.inf
    s = lam / 2
    X = Ts - s * np.eye(n)
    try:
        L = np.linalg.cholesky(X)
    except np.linalg.LinAlgError:
        return -np.inf
    D = X - L @ L.T
    # |fl(Ts - sI) - (Ts - sI)| <= u |Ts - sI| (diagonal only); |fl(X - LL^T) - (X - LL^T)| <=
    # gamma(n + 1) (|X| + |L||L|^T)
    g = gamma(n + 2)
    bound = fro(D) * (1 + g) + g * (fro(Ts) + s * np.sqrt(n) + fro(L) ** 2) + U * (fro(Ts) + s * np.sqrt(n))
    bound = SAFETY * (bound + TINY * n * n)
    lb = s - bound - err
    # the subtraction above rounds; step one ulp down for each operation
    return float(np.nextafter(np.nextafter(lb, -np.inf), -np.inf))


def spectral_norm_upper_bound(X) -> float:
    """A proved upper bound on ``||X||_2`` for a float matrix: ``c = (1.01 sigma_est)^2`` with ``c I - X^T X``
    proved PSD by :func:`pd_lower_bound` (the rounding of forming ``X^T X`` charged), else ``||X||_F``."""
    X = np.asarray(X, dtype=float)
    fx = fro(X)
    if not np.isfinite(fx):
        return np.inf
    if X.size == 0 or fx == 0:
        return 0.0
    m, n = X.shape
    G = X.T @ X
    est = float(np.linalg.eigvalsh(G)[-1])
    c = 1.02 * est + 1e-300
    err = matmul_error(fx, fx, m, n * n) + SAFETY * gamma(2) * (fro(G) + c * np.sqrt(n))
    if pd_lower_bound(c * np.eye(n) - G, err) >= 0:
        return float(np.nextafter(np.sqrt(c) * (1 + 4 * U), np.inf))
    return fx


def sigma_min_lower_bound(A) -> float:
    """A proved lower bound on the smallest singular value of a float ``m x n`` matrix ``A`` (m >= n),
    without forming ``A^T A``; 0.0 when none is proved.

    A Gram matrix squares the condition number: at sigma_min ~ 1.5e-6 (819 Gaussian pairs at p = 40, rows
    of norm 1) the rounding of forming ``A^T A`` (about 7e-11) is above sigma_min^2.  Instead, with an
    approximate left inverse ``X`` (from a QR factorisation of A) and ``alpha >= ||I - X A||_2`` proved
    from the computed residual plus the rounding of the product, every u has ``||u|| <= ||X A u|| + alpha
    ||u|| <= ||X||_2 ||A u|| + alpha ||u||``, so ``sigma_min(A) >= (1 - alpha) / ||X||_2`` when alpha < 1
    (Rump's verification of an approximate inverse, in the Frobenius norm)."""
    A = np.asarray(A, dtype=float)
    m, n = A.shape
    if n == 0:
        return np.inf
    if m < n or not np.all(np.isfinite(A)):
        return 0.0
    try:
        Q, R = sla.qr(A, mode="economic", check_finite=False)
        X = sla.solve_triangular(R, Q.T, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return 0.0
    if not np.all(np.isfinite(X)):
        return 0.0
    P = X @ A
    E = np.eye(n) - P
    # |fl(X A) - X A| (Frobenius), the rounding of the subtraction (one per entry, relative U) and of the
    # Frobenius norm itself (a sum of n^2 squares)
    alpha = fro(E) * (1 + gamma(n * n + 2)) + matmul_error(fro(X), fro(A), m, n * n) + SAFETY * U * (fro(P) + np.sqrt(n))
    alpha = float(np.nextafter(alpha * (1 + 4 * U), np.inf))
    if not alpha < 1:
        return 0.0
    xn = spectral_norm_upper_bound(X)
    if not (np.isfinite(xn) and xn > 0):
        return 0.0
    lb = (1 - alpha) / xn * (1 - 4 * U)
    return float(np.nextafter(lb, -np.inf)) if lb > 0 else 0.0

"""Feature matrices given by a factor, never formed: ``Phi* = L^T L`` for ``L`` of shape (d, p).

The data type and its exact metrics (the bottom layer: numpy and :mod:`featlib._checks` only); the
workflow that teaches and solves in factored form is :mod:`featlib.factored`.

An SAE with p = 65,536 latents has a p x p feature matrix of 34 GB (float64); its decoder D
(d x p, d = 512) is 268 MB.  :class:`Factored` wraps the factor, so that quadratic forms are
``||L v||^2`` and comparisons go through small Gram products:

* :func:`pcc` and :func:`relative_error` accept a :class:`Factored` (or a dense matrix) on either
  side and are **exact** (no sampling): with ``H = [F, G, 1]`` (the two p x k factors and the
  all-ones vector) and its thin QR ``H = Q R``, every Frobenius inner product and entry sum of
  ``F F^T`` and ``G G^T`` equals that of two small ``(k + m + 1)``-square matrices, so the p x p
  matrices are never formed.  Cost O(p (k + m)^2).
* :meth:`Factored.quadratic` evaluates ``v^T Phi* v`` for a batch of vectors.

``featlib.pcc`` and ``featlib.relative_error`` dispatch here when either argument is a
:class:`Factored`.
"""

from __future__ import annotations

import numpy as np

from . import _checks

__all__ = ["Factored", "pcc", "relative_error", "compare"]


class Factored:
    """``Phi = L^T L`` for a real factor ``L`` of shape (d, p): for an SAE, its decoder D with
    atoms as columns (``featlib.sae.load_dictionary`` returns exactly that).

    Parameters
    ----------
    L : array_like, shape (d, p)
        Finite, not all zero.
    """

    def __init__(self, L):
        L = _checks.finite_array(L, "L")
        if L.ndim != 2 or 0 in L.shape:
            raise _checks.ShapeError(f"L must be a non-empty 2-D factor of shape (d, p); got {L.shape}.")
        if not np.any(L):
            raise _checks.FeatlibError("the factor is zero, so Phi = L^T L is zero; a feature matrix must be non-zero.")
        L.setflags(write=False)
        self._L = L

    L = property(lambda self: self._L, doc="The factor, shape (d, p) (read-only).")

    @property
    def p(self) -> int:
        return self._L.shape[1]

    @property
    def shape(self) -> tuple:
        return (self.p, self.p)

    def factor(self) -> np.ndarray:
        """``F = L^T`` (p x d), with ``Phi = F F^T``."""
        return self._L.T

    def quadratic(self, v) -> np.ndarray | float:
        """``v^T Phi v = ||L v||^2`` for one vector (p,) or a batch (..., p)."""
        v = _checks.finite_array(v, "v")
        if v.shape[-1] != self.p:
            raise _checks.ShapeError(f"v must end in dimension p = {self.p}; got {v.shape}.")
        Lv = v @ self._L.T
        out = np.einsum("...i,...i->...", Lv, Lv)
        return float(out) if np.ndim(out) == 0 else out

    def dense(self, *, max_bytes: int = 2**31) -> np.ndarray:
        """``L^T L`` as a dense p x p array, refused (with its size) above ``max_bytes`` (2 GiB)."""
        need = 8 * self.p * self.p
        if need > max_bytes:
            raise _checks.ResourceError(f"Phi would be {self.p} x {self.p} = {need / 2**30:.1f} GiB (float64); work "
                                        f"with the factor, or pass max_bytes= to form it anyway.")
        phi = self._L.T @ self._L
        return (phi + phi.T) / 2

    def __repr__(self) -> str:
        return f"Factored(d={self._L.shape[0]}, p={self.p})"


#: rows per block of the factored metrics' QR (:func:`pcc`, :func:`relative_error`)
QR_ROW_BLOCK = 8192


def _factor_of(x, name):
    """(F, None) with x = F F^T for a Factored, or (None, dense) for a matrix."""
    if isinstance(x, Factored):
        return x.factor(), None
    a = _checks.finite_array(x, name)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise _checks.ShapeError(f"{name} must be a square matrix or a featlib.Factored; got shape {a.shape}.")
    return None, a


def _small(a, b):
    """Two small symmetric matrices with the same Frobenius inner products, norms and entry sums
    (through the coefficient vector ``q`` of the all-ones vector) as the p x p ones."""
    Fa, Da = _factor_of(a, "a")
    Fb, Db = _factor_of(b, "b")
    p = (Fa if Fa is not None else Da).shape[0]
    if (Fb if Fb is not None else Db).shape[0] != p:
        raise _checks.ShapeError("a and b must have the same dimension p.")
    if Da is not None and Db is not None:
        return Da, Db, np.ones(p), p
    if Da is not None or Db is not None:  # one dense side: it exists already, so form the other
        dense = Da if Da is not None else Db
        F = Fb if Da is not None else Fa
        _checks.check_allocation(8 * p * p, f"a {p} x {p} matrix to compare with the dense one")
        F = F / float(np.max(np.abs(F)))  # the metrics are scale-invariant: no overflow or underflow at 1e+-200
        dense = dense / float(np.max(np.abs(dense))) if np.any(dense) else dense
        other = F @ F.T
        return (dense, other, np.ones(p), p) if Da is not None else (other, dense, np.ones(p), p)
    # each factor divided by its largest entry (the metrics are scale-invariant)
    sa, sb = _checks.max_abs(Fa), _checks.max_abs(Fb)
    k = Fa.shape[1]
    width = k + Fb.shape[1] + 1
    # R of the QR of H = [Fa / sa, Fb / sb, 1 / sqrt(p)], row block by row block (R of [R_so_far; block]):
    # the same R up to the signs of its rows, which the products R_a R_a^T etc. do not see; memory
    # O(rows x width) instead of 3 copies of the p x width H (26 GB at p = 2^20, d = 512)
    rows = max(width, QR_ROW_BLOCK)
    _checks.check_allocation(8 * (rows + width) * width * 3, f"the QR factorisation of a {p} x {width} matrix")
    R = np.zeros((0, width))
    for start in range(0, p, rows):
        stop = min(p, start + rows)
        block = np.empty((stop - start, width))
        block[:, :k] = Fa[start:stop]
        block[:, :k] /= sa
        block[:, k:-1] = Fb[start:stop]
        block[:, k:-1] /= sb
        block[:, -1] = 1.0 / np.sqrt(p)
        R = np.linalg.qr(np.concatenate([R, block]), mode="r")
    Ra, Rb, q = R[:, :k], R[:, k:-1], R[:, -1] * np.sqrt(p)
    return Ra @ Ra.T, Rb @ Rb.T, q, p


def pcc(a, b) -> float:
    """Pearson correlation of all p^2 entries of ``a`` and ``b`` (matrices or :class:`Factored`),
    exactly, without forming p x p matrices when both are factored."""
    return _pcc_small(*_small(a, b))


def compare(a, b) -> tuple:
    """``(pcc(a, b), relative_error(a, b))`` from one factorisation of the stacked factors (each
    function alone makes one: at p = 2^20, d = 512, about 100 s apiece on 2 cores)."""
    A, B, q, p = _small(a, b)
    return _pcc_small(A, B, q, p), dense_relative_error(A, B)


def _pcc_small(A, B, q, p):
    n = float(p) * float(p)
    qq = np.outer(q, q)
    Ac = A - (q @ A @ q) / n * qq  # the centred matrices, in the small coordinates
    Bc = B - (q @ B @ q) / n * qq
    na, nb = np.linalg.norm(Ac), np.linalg.norm(Bc)
    # rounding leaves about 1e-16 of a constant matrix after centring in these coordinates
    if na <= 1e-12 * np.linalg.norm(A) or nb <= 1e-12 * np.linalg.norm(B):
        raise _checks.ArgumentError("PCC is undefined when one input has all entries equal (zero variance).")
    return float(np.clip(np.vdot(Ac, Bc) / (na * nb), -1.0, 1.0))


def relative_error(a, b) -> float:
    """``min_{c >= 0} ||c a - b||_F / ||b||_F`` for matrices or :class:`Factored`, exactly."""
    A, B, _, _ = _small(a, b)  # dense and small here
    return dense_relative_error(A, B)


def dense_relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``min_{c >= 0} ||c a - b||_F / ||b||_F`` for two finite arrays of one shape (each first divided
    by its largest |entry|: the value is scale-invariant, and 1e200 entries must not overflow)."""
    a = a / max(float(np.max(np.abs(a))), np.finfo(float).tiny)
    b = b / max(float(np.max(np.abs(b))), np.finfo(float).tiny)
    nb = np.linalg.norm(b)
    if nb == 0:
        raise _checks.ArgumentError("the reference b is zero; the relative error is undefined.")
    na = float(np.vdot(a, a))
    c = max(float(np.vdot(a, b)) / na, 0.0) if na > 0 else 0.0
    return float(np.linalg.norm(c * a - b) / nb)

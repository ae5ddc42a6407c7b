"""Feature matrices given by a factor, never formed: ``Phi* = L^T L`` for ``L`` of shape (d, p).

An SAE with p = 65,536 latents has a p x p feature matrix of 34 GB (float64); its decoder D
(d x p, d = 512) is 268 MB.  :class:`Factored` wraps the factor, so that quadratic forms are
``||L v||^2`` and comparisons go through small Gram products:

* :func:`pcc` and :func:`relative_error` accept a :class:`Factored` (or a dense matrix) on either
  side and are **exact** (no sampling): with ``H = [F, G, 1]`` (the two p x k factors and the
  all-ones vector) and its thin QR ``H = Q R``, every Frobenius inner product and entry sum of
  ``F F^T`` and ``G G^T`` equals that of two small ``(k + m + 1)``-square matrices, so the p x p
  matrices are never formed.  Cost O(p (k + m)^2).
* :meth:`Factored.quadratic` evaluates ``v^T Phi* v`` for a batch of vectors.
* :func:`recover_eigen` runs Theorem 1's eigen feedback in factored form: the r-dimensional
  kernel pairs in the eigenbasis of ``Phi*`` (shared-basis storage), the p - r null-space pairs as
  their span (the orthogonal complement of the eigenbasis), solved exactly with a certificate, and
  returns the answer as a p x r factor (:class:`FactoredSolution`).

``featlib.pcc`` and ``featlib.relative_error`` dispatch here when either argument is a
:class:`Factored`.
"""

from __future__ import annotations

import numpy as np

from . import _checks
from .solvers._result import Solution

__all__ = ["Factored", "FactoredSolution", "recover_eigen", "pcc", "relative_error"]


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
    sa, sb = float(np.max(np.abs(Fa))), float(np.max(np.abs(Fb)))
    H = np.concatenate([Fa / sa, Fb / sb, np.ones((p, 1)) / np.sqrt(p)], axis=1)
    _checks.check_allocation(8 * H.size * 3, f"the QR factorisation of a {H.shape[0]} x {H.shape[1]} matrix")
    R = np.linalg.qr(H, mode="r")
    k = Fa.shape[1]
    Ra, Rb, q = R[:, :k], R[:, k:-1], R[:, -1] * np.sqrt(p)
    return Ra @ Ra.T, Rb @ Rb.T, q, p


def pcc(a, b) -> float:
    """Pearson correlation of all p^2 entries of ``a`` and ``b`` (matrices or :class:`Factored`),
    exactly, without forming p x p matrices when both are factored."""
    A, B, q, p = _small(a, b)
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
    from .metrics import relative_error as dense_relative_error

    A, B, _, _ = _small(a, b)
    return dense_relative_error(A, B)  # dense, small: A and B are matrices here


class FactoredSolution(Solution):
    """A :class:`featlib.Solution` held as a factor: ``Phi = factor @ factor.T`` (unit trace).

    ``phi`` forms the p x p matrix on demand and refuses (:class:`featlib.ResourceError`, with the
    size) above 2 GiB; compare with :func:`featlib.pcc` / :func:`featlib.relative_error` on
    :meth:`as_factored` instead, which never forms it.  ``certificate`` certifies the r-dimensional
    problem (see :func:`recover_eigen`)."""

    def __init__(self, factor, *, identified=False, version_space_dim=-1, residual=float("nan"), method="",
                 seconds=0.0, decided=True, info=None, certificate=None):
        factor = _checks.finite_array(factor, "factor")
        if factor.ndim != 2 or 0 in factor.shape:
            raise _checks.ShapeError(f"factor must be a non-empty p x k array; got shape {factor.shape}.")
        super().__init__(phi=None, identified=identified, version_space_dim=version_space_dim, residual=residual,
                         method=method, seconds=seconds, decided=decided, info=dict(info or {}),
                         certificate=certificate, factor=factor)


def recover_eigen(phi_star: Factored, *, rank=None, rtol=None) -> FactoredSolution:
    """Theorem 1's eigen feedback for ``Phi* = L^T L``, taught and solved without forming Phi*.

    1. The eigenpairs of ``Phi*`` with non-zero eigenvalue come from the d x d Gram matrix
       ``L L^T = U diag(gamma) U^T``: ``v_i = L^T u_i / sqrt(gamma_i)`` (p x r, r = numerical rank at
       ``rtol``, default p * eps, as :func:`featlib.linalg.numerical_rank`; or ``rank``).
    2. The feedback: the paper's r(r+1)/2 kernel pairs ``(v_i, sqrt(c_ii) y)``,
       ``(v_i + v_j, sqrt(c_ij) y)`` with ``y = v_1 + ... + v_r``, in shared-basis storage over the
       v_i (``teach(diag(gamma), "eigen")`` in these coordinates), and the p - r null-space pairs
       ``(0, v_k)``, ``v_k`` an orthonormal basis of the complement of ``span(v_1..v_r)``, kept as
       that span: for a PSD ``Phi``, ``v^T Phi v = 0`` for every v in the complement is the same as
       ``Phi v = 0`` there, i.e. the facial reduction of all p - r pairs at once (Lemma 4 of the
       paper, applied to the whole span), leaving ``Phi = V S V^T`` with S r x r PSD.
    3. The exact solver decides the r-dimensional problem for S, with its certificate
       (:func:`featlib.verify` re-checks it on ``info["feedback"]``).

    The answer is the factor ``V S^{1/2}`` (p x r).  p = 32,768 with d = 512 takes about half a
    minute and a few GB on a 2-core machine (``featlib benchmark sae-scale``).
    """
    import time

    from .linalg import default_rank_rtol
    from .solvers import solve
    from .teachers import teach

    if not isinstance(phi_star, Factored):
        raise _checks.ArgumentTypeError(f"recover_eigen expects a featlib.Factored; got {type(phi_star).__name__}.")
    t0 = time.perf_counter()
    L, p = phi_star.L, phi_star.p
    G = L @ L.T
    gam, U = np.linalg.eigh((G + G.T) / 2)
    order = np.argsort(gam)[::-1]
    gam, U = gam[order], U[:, order]
    rtol = default_rank_rtol(p) if rtol is None else _checks.check_rtol(rtol, "rtol")
    numerical = int(np.count_nonzero(gam > rtol * gam[0]))
    r = numerical if rank is None else _checks.check_positive_int(rank, "rank")
    if r > numerical:
        raise _checks.ArgumentError(f"rank = {r} exceeds the numerical rank {numerical} of Phi*.")
    V = (L.T @ U[:, :r]) / np.sqrt(gam[:r])
    V, _ = np.linalg.qr(V)  # orthonormal to rounding (span unchanged)
    t_spectrum = time.perf_counter() - t0
    fb = teach(np.diag(gam[:r]), "eigen")  # the kernel pairs, in eigen-coordinates
    sol = solve(fb, "exact")
    w, Q = np.linalg.eigh(sol.phi)
    factor = V @ (Q * np.sqrt(np.clip(w, 0.0, None)))
    info = {"rank": r, "numerical_rank": numerical, "pairs": len(fb) + (p - r), "kernel_pairs": len(fb),
            "null_pairs_as_span": p - r, "feedback": fb, "solution_r": sol, "seconds_spectrum": t_spectrum,
            "seconds_solve": sol.seconds}
    return FactoredSolution(factor, identified=sol.identified, version_space_dim=sol.version_space_dim,
                            residual=sol.residual, method="exact (factored eigen)",
                            seconds=time.perf_counter() - t0, decided=sol.decided, info=info,
                            certificate=sol.certificate)

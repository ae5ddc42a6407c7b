"""Theorem 1's eigen feedback taught and solved in factored form (:func:`recover_eigen`), and the
answer held as a factor (:class:`FactoredSolution`): a workflow over :mod:`featlib.teachers` and
:mod:`featlib.solvers`.

The data type :class:`Factored` and its exact metrics :func:`pcc` and :func:`relative_error` live
in :mod:`featlib.factors` (the bottom layer, used by every module) and are re-exported here.

* :func:`recover_eigen` runs Theorem 1's eigen feedback in factored form: the r-dimensional
  kernel pairs in the eigenbasis of ``Phi*`` (shared-basis storage), the p - r null-space pairs as
  their span (the orthogonal complement of the eigenbasis), solved exactly with a certificate, and
  returns the answer as a p x r factor (:class:`FactoredSolution`).
"""

from __future__ import annotations

import time

import numpy as np

from . import _checks
from .factors import Factored, pcc, relative_error
from .linalg import default_rank_rtol
from .solvers import solve
from .solvers._result import Solution
from .teachers import teach

__all__ = ["Factored", "FactoredSolution", "recover_eigen", "pcc", "relative_error"]


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

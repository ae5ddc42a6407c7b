"""Theorem 1's eigen feedback taught and solved in factored form (:func:`recover_eigen`), and the
answer held as a factor (:class:`FactoredSolution`): a workflow over :mod:`featlib.teachers` and
:mod:`featlib.solvers`.

The data type :class:`Factored` and its exact metrics :func:`pcc` and :func:`relative_error` live
in :mod:`featlib.factors` (the bottom layer, used by every module) and are re-exported here.

* :func:`recover_eigen` runs Theorem 1's eigen feedback in factored form and returns the answer as
  a p x r factor (:class:`FactoredSolution`): a convenience over ``teach(Factored(D), "eigen")``
  (:class:`featlib.SpanFeedback`: the p - r null-space pairs kept as a span) and ``solve``, which
  take the factored route by themselves.
"""

from __future__ import annotations

import time

import numpy as np

from . import _checks
from .factors import Factored, pcc, relative_error
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
    """Theorem 1's eigen feedback for ``Phi* = L^T L``, taught and solved without forming Phi*: a
    convenience over ``teach(phi_star, "eigen", storage="span")`` and ``solve(fb, "exact")``, which do
    the same by themselves for a :class:`Factored` target.

    1. The eigenpairs of ``Phi*`` with non-zero eigenvalue come from the d x d Gram matrix
       ``L L^T`` (:meth:`featlib.Agent.top_eigh`; r = numerical rank at ``rtol``, default p * eps,
       or ``rank``, at most the numerical rank).
    2. The feedback (:class:`featlib.SpanFeedback`): the paper's r(r+1)/2 kernel pairs over the frame
       of eigenvectors, and the p - r null-space pairs ``(0, v)`` kept as the complement of that frame.
    3. ``solve`` decides the exactly equivalent r-dimensional problem, with its certificate
       (:func:`featlib.verify` re-checks it on ``info["feedback"]``), and lifts the answer.

    The answer is a p x r factor.  p = 32,768 with d = 512 takes a few seconds and about 1.4 GB on a
    2-core machine (``featlib benchmark sae-scale``).
    """
    if not isinstance(phi_star, Factored):
        raise _checks.ArgumentTypeError(f"recover_eigen expects a featlib.Factored; got {type(phi_star).__name__}.")
    t0 = time.perf_counter()
    fb = teach(phi_star, "eigen", rank=rank, rtol=rtol, storage="span")
    t_teach = time.perf_counter() - t0
    sol = solve(fb, "exact")
    info = dict(sol.info)
    info.update(rank=fb.meta["rank"], numerical_rank=fb.meta["numerical_rank"], pairs=len(fb), kernel_pairs=fb.n_stored,
                null_pairs_as_span=fb.n_span, feedback=fb, seconds_teach=t_teach, seconds_solve=sol.seconds)
    return FactoredSolution(sol.factor, identified=sol.identified, version_space_dim=sol.version_space_dim,
                            residual=sol.residual, method="exact (factored eigen)",
                            seconds=time.perf_counter() - t0, decided=sol.decided, info=info,
                            certificate=sol.certificate)

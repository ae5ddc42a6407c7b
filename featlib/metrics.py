"""Scale-invariant comparisons of feature matrices.

Feedback determines a feature matrix only up to a positive scale (Definition 2 of the paper), so
every comparison here is invariant to multiplying the estimate by a positive number.
"""

from __future__ import annotations

import numpy as np

from . import _checks
from .factors import Factored
from .factors import pcc as _factored_pcc
from .factors import dense_relative_error
from .factors import relative_error as _factored_relative_error

__all__ = ["pcc", "relative_error", "equivalent", "best_scale"]


def _pair(a, b):
    """Both inputs checked, each divided by its largest |entry| (every comparison here is
    scale-invariant, and 1e200 * phi must not overflow the norms)."""
    a = _checks.finite_array(a, "a")
    b = _checks.finite_array(b, "b")
    if a.shape != b.shape:
        raise _checks.ShapeError(f"a and b must have the same shape; got {a.shape} and {b.shape}.")
    if a.size == 0:
        raise _checks.ShapeError("a and b are empty.")
    return _unit_max(a), _unit_max(b)


def _unit_max(a):
    m = float(np.max(np.abs(a)))
    return a / m if m > 0 else a


def _factored(*xs):
    return any(isinstance(x, Factored) for x in xs)


def pcc(a, b) -> float:
    """Pearson correlation of all entries of ``a`` and ``b`` (the paper's PCC metric).

    Invariant to positive scaling and to adding a constant; 1 means equivalent up to those.
    Raises ``ValueError`` when one input is constant (the correlation is undefined).  Either side
    may be a :class:`featlib.Factored` (``Phi = L^T L``): the value is then computed exactly from
    the factors, without forming p x p matrices (:mod:`featlib.factors`).
    """
    if _factored(a, b):
        return _factored_pcc(a, b)
    a, b = _pair(a, b)
    x = a.ravel() - a.mean()
    y = b.ravel() - b.mean()
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0 or ny == 0:
        raise _checks.ArgumentError("PCC is undefined when one input has all entries equal (zero variance).")
    return float(np.clip((x @ y) / (nx * ny), -1.0, 1.0))


def best_scale(a, b) -> float:
    """The c >= 0 minimising ``||c a - b||_F`` (0 when a and b are negatively aligned)."""
    a0 = _checks.finite_array(a, "a")
    b0 = _checks.finite_array(b, "b")
    ma, mb = float(np.max(np.abs(a0), initial=0.0)), float(np.max(np.abs(b0), initial=0.0))
    a, b = _pair(a0, b0)
    na = float(np.vdot(a, a))
    if na == 0 or ma == 0:
        return 0.0
    return max(float(np.vdot(a, b)) / na, 0.0) * (mb / ma)


def relative_error(a, b) -> float:
    """``min_{c >= 0} ||c a - b||_F / ||b||_F``: error of the estimate ``a`` against the reference ``b``.

    Scale-invariant in both arguments; 0 exactly when ``a`` is a positive multiple of ``b``, at
    most 1 (reached when they are orthogonal or negatively aligned).  Either side may be a
    :class:`featlib.Factored`, as for :func:`pcc`.
    """
    if _factored(a, b):
        return _factored_relative_error(a, b)
    return dense_relative_error(*_pair(a, b))


def equivalent(a, b, rtol: float = 1e-6) -> bool:
    """True when ``a = c b`` for some ``c > 0`` up to ``relative_error(a, b) <= rtol`` (Definition 2)."""
    rtol = _checks.check_real(rtol, "rtol", low=0)
    return relative_error(a, b) <= rtol

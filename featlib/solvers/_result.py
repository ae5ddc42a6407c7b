"""The :class:`Solution` every solver returns, and the shared normalisation rule."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..linalg import psd_project


@dataclass
class Solution:
    """What a solver learned from a feedback set.

    Attributes
    ----------
    phi : ndarray (p, p)
        The learned feature matrix: symmetric PSD, **normalised to unit trace** (a non-zero PSD
        matrix has positive trace, so this is always possible; compare with ``featlib.pcc`` or
        ``featlib.relative_error``, which are scale-invariant).
    identified : bool
        True exactly when every PSD matrix satisfying all pairs is a positive multiple of ``phi``.
        False when the solver proved the contrary, or could not decide (then ``decided`` is False).
    version_space_dim : int
        Dimension of the linear span of the version space, i.e. of the solutions of the pair
        equalities after the PSD reduction (pairs with a zero side force ``Phi v = 0``).  1 means the
        feedback pins the matrix down up to scale; 0 means no non-zero solution (inconsistent).
    residual : float
        Largest scale-free residual ``|y^T Phi y - z^T Phi z| / (||Phi||_2 (||y||^2 + ||z||^2))``
        over the pairs (see ``PairFeedback.relative_residuals``).
    method : str
        The back end that produced the answer ("exact", "sdp", "gd").
    seconds : float
        Wall-clock time of the solve.
    decided : bool
        Whether ``identified`` is a proven answer (True) or the solver could not tell (False).
    info : dict
        Back-end diagnostics (forced null space, singular values, probe spreads, ...).
    """

    phi: np.ndarray
    identified: bool
    version_space_dim: int
    residual: float
    method: str
    seconds: float
    decided: bool = True
    info: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"Solution(method={self.method!r}, identified={self.identified}, "
            f"version_space_dim={self.version_space_dim}, residual={self.residual:.2e}, "
            f"seconds={self.seconds:.3g}, p={self.phi.shape[0]})"
        )


def normalise(phi) -> np.ndarray:
    """Symmetrise, project onto the PSD cone (clipping rounding-level negative eigenvalues) and
    scale to unit trace."""
    phi = psd_project(phi)
    t = float(np.trace(phi))
    if t <= 0:
        raise ValueError("cannot normalise a matrix with no positive eigenvalue")
    return phi / t


def max_relative_residual(feedback, phi) -> float:
    if len(feedback) == 0:
        return 0.0
    return float(np.max(feedback.relative_residuals(phi)))

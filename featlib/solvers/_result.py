"""The :class:`Solution` every solver returns, and the shared normalisation rule."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _checks
from .._checks import shifted_cholesky_norm
from ..factors import Factored
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
        The solver's verdict that every PSD matrix satisfying all pairs is a positive multiple of
        ``phi``.  From ``"exact"`` it comes with a :attr:`certificate` (facial-reduction steps and the
        rank of the reduced system) that :func:`featlib.verify` re-checks; ``"sdp"`` carries the
        exact solver's certificate and verdict when that solver decides the pairs (on consistent
        feedback), and otherwise a numerical test (random linear objectives over the feasible set):
        evidence rather than a proof (``info["verdict_from"]`` says which); ``"gd"`` never claims it.  False when the solver found the contrary, or could not
        decide (then ``decided`` is False).
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
        Whether the solver reached a verdict (True) or could not tell (False).  For ``"exact"`` a
        decided answer carries a certificate; for ``"sdp"`` it means a certificate or the probes ran.
    info : dict
        Back-end diagnostics (forced null space, singular values, probe spreads, ...).
    certificate : Certificate or None
        What backs the verdict (``"exact"``, and ``"sdp"`` when the exact solver decided): see
        :mod:`featlib.certificates`.
    factor : ndarray (p, k) or None
        The answer as a factor, ``phi = factor @ factor.T`` (unit trace), from the learners that work
        on one (gradient descent, the factored eigen recovery).  Then ``phi`` is formed from it on
        first use, and refused (:class:`featlib.ResourceError`, with its size) above 2 GiB: compare
        with :func:`featlib.pcc` on :meth:`as_factored` instead, which never forms it.
    """

    phi: np.ndarray
    identified: bool
    version_space_dim: int
    residual: float
    method: str
    seconds: float
    decided: bool = True
    info: dict = field(default_factory=dict)
    certificate: object = None
    factor: np.ndarray | None = None

    @property
    def p(self) -> int:
        """Dimension of the learned matrix."""
        return (self.factor if self._phi is None else self._phi).shape[0]

    def as_factored(self):
        """The answer as a :class:`featlib.Factored` (``Phi = L^T L``): from :attr:`factor` when there is
        one, else from the eigendecomposition of :attr:`phi` (its positive part)."""
        if self.factor is not None:
            return Factored(self.factor.T)
        w, V = np.linalg.eigh(self._phi)
        keep = w > 0
        return Factored((V[:, keep] * np.sqrt(w[keep])).T)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(method={self.method!r}, identified={self.identified}, "
            f"version_space_dim={self.version_space_dim}, residual={self.residual:.2e}, "
            f"seconds={self.seconds:.3g}, p={self.p}"
            + ("" if self.factor is None else f", rank={self.factor.shape[1]}") + ")"
        )


def _get_phi(self):
    if self._phi is None and self.factor is not None:
        self._phi = Factored(self.factor.T).dense()  # refused with its size above 2 GiB
    return self._phi


def _set_phi(self, value):
    self._phi = value


# ``phi`` is a dataclass field (the constructor takes it) read through a property, so that a solution
# held as a factor forms its p x p matrix only when asked for
Solution.phi = property(_get_phi, _set_phi, doc="The learned p x p matrix (unit trace, PSD); see the class docstring.")


def normalise(phi) -> np.ndarray:
    """Symmetrise, project onto the PSD cone (clipping rounding-level negative eigenvalues) and
    scale to unit trace."""
    phi = psd_project(phi)
    t = float(np.trace(phi))
    if t <= 0:
        raise _checks.ArgumentError("cannot normalise a matrix with no positive eigenvalue")
    return phi / t


def max_relative_residual(feedback, phi, factor=None, norm=None) -> float:
    """Largest scale-free residual (``PairFeedback.relative_residuals``; ``factor``: phi = F F^T;
    ``norm``: ``||phi||_2`` if known)."""
    if len(feedback) == 0:
        return 0.0
    return float(np.max(feedback.relative_residuals(phi, factor=factor, norm=norm)))


def psd_generator(psi, psd_rtol):
    """Orient the generator of a one-dimensional solution space (positive trace) and check it is PSD.

    Returns ``(psi, eigenvalues, eigenvectors)`` with ``psi`` having its rounding-level negative
    eigenvalues clipped, or None when the smallest eigenvalue is below ``-psd_rtol * largest |.|``.
    """
    psi = (psi + psi.T) / 2
    if np.trace(psi) < 0:
        psi = -psi
    w, V = np.linalg.eigh(psi)
    if w[0] < -psd_rtol * max(abs(w[0]), abs(w[-1])):
        return None
    if w[0] < 0:
        w = np.clip(w, 0.0, None)
        psi = (V * w) @ V.T
        psi = (psi + psi.T) / 2
    return psi, w, V


#: above this size the sparse exact path certifies PSD by Cholesky instead of an eigendecomposition
CHOLESKY_CERTIFICATE_MIN = 1024


def psd_certificate(psi, psd_rtol):
    """Like :func:`psd_generator`, for large matrices: orient ``psi`` (positive trace) and certify
    ``lambda_min >= -psd_rtol * lambda_max`` by a Cholesky factorisation of
    ``psi + psd_rtol * lambda_max * I`` (lambda_max by Lanczos; returned too).

    About 7x cheaper than ``eigh`` at p = 4096 (0.9 s + 0.5 s against 6 s + 1.8 s for the
    reconstruction).  Rounding-level negative eigenvalues are not clipped: the returned matrix is
    PSD to within ``psd_rtol * lambda_max``.  Returns ``(oriented matrix, lambda_max)``, or None if
    not PSD.
    """
    psi = (psi + psi.T) / 2
    if np.trace(psi) < 0:
        psi = -psi
    top = shifted_cholesky_norm(psi, psd_rtol)
    return None if top is None else (psi, top)

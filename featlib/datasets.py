"""Synthetic targets: random feature matrices of a given rank and dictionaries in superposition."""

from __future__ import annotations

import numpy as np

from . import _checks

__all__ = ["random_feature_matrix", "random_dictionary", "random_orthogonal"]


def random_orthogonal(p: int, seed=None) -> np.ndarray:
    """A Haar-random p x p orthogonal matrix."""
    p = _checks.check_positive_int(p, "p")
    rng = _checks.as_generator(seed)
    Q, R = np.linalg.qr(rng.standard_normal((p, p)))
    return Q * np.sign(np.where(np.diag(R) == 0, 1.0, np.diag(R)))


def random_feature_matrix(p: int, rank: int | None = None, *, seed=None, eigenvalues=None) -> np.ndarray:
    """A random symmetric PSD p x p matrix ``Phi = Q diag(lam) Q^T`` of the given rank.

    ``Q`` is Haar-random orthogonal and the ``rank`` non-zero eigenvalues are drawn uniformly from
    [1, 2] (a well-conditioned spectrum), unless ``eigenvalues`` gives them explicitly (any
    non-negative values, e.g. repeated ones; zeros lower the rank).  ``rank`` defaults to ``p``.
    """
    p = _checks.check_positive_int(p, "p")
    rng = _checks.as_generator(seed)
    if eigenvalues is not None:
        lam = _checks.finite_array(eigenvalues, "eigenvalues").ravel()
        if rank is not None and lam.size != rank:
            raise _checks.ShapeError(f"got rank={rank} but {lam.size} eigenvalues; give one or make them agree.")
        if lam.size > p or lam.size == 0:
            raise _checks.ShapeError(f"need between 1 and p = {p} eigenvalues; got {lam.size}.")
        if np.any(lam < 0) or not np.any(lam > 0):
            raise ValueError("eigenvalues must be non-negative and not all zero (Phi must be PSD and non-zero).")
    else:
        r = p if rank is None else _checks.check_positive_int(rank, "rank")
        if r > p:
            raise ValueError(f"rank = {r} cannot exceed p = {p}.")
        lam = rng.uniform(1.0, 2.0, size=r)
    Q = random_orthogonal(p, rng)[:, : lam.size]
    phi = (Q * lam) @ Q.T
    return (phi + phi.T) / 2


def random_dictionary(d: int, p: int, *, seed=None, unit_norm: bool = True) -> np.ndarray:
    """A random dictionary ``D`` of shape (d, p) whose p columns are the atoms (Gaussian directions).

    With ``p > d`` the atoms are in superposition.  ``Phi* = D.T @ D`` is p x p of rank min(d, p),
    with unit diagonal when ``unit_norm`` (columns scaled to norm 1, as SAE decoders are).
    """
    d = _checks.check_positive_int(d, "d")
    p = _checks.check_positive_int(p, "p")
    rng = _checks.as_generator(seed)
    D = rng.standard_normal((d, p))
    if unit_norm:
        D /= np.linalg.norm(D, axis=0, keepdims=True)
    return D

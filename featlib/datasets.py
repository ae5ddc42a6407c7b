"""Synthetic targets: random feature matrices of a given rank (real, or integer for exact output), dictionaries in superposition, and the
monomial regression tasks on which the paper trains Recursive Feature Machines."""

from __future__ import annotations

import numpy as np

from . import _checks
from . import _exact

__all__ = ["random_feature_matrix", "integer_factor", "random_dictionary", "random_orthogonal", "monomial_task", "MONOMIAL_TASKS"]

#: The paper's RFM targets (0-based coordinates).  "z0z1" and "z0z1z3" are Figures 1 and 2
#: (written 0-based in the paper); "x1x2x3x4" is Appendix C.1's ``x1 x2 x3 x4 1(x5 > 0)``, read as
#: 1-based, i.e. coordinates 0-3 and the gate on coordinate 4.
MONOMIAL_TASKS = {
    "z0z1": ((0, 1), 5),
    "z0z1z3": ((0, 1, 3), 5),
    "x1x2x3x4": ((0, 1, 2, 3), 4),
}


def random_orthogonal(p: int, seed=None) -> np.ndarray:
    """A Haar-random p x p orthogonal matrix."""
    p = _checks.check_positive_int(p, "p")
    _checks.check_allocation(3 * 8 * p * p, f"a {p} x {p} matrix")
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
    _checks.check_allocation(3 * 8 * p * p, f"a {p} x {p} matrix")
    rng = _checks.as_generator(seed)
    if eigenvalues is not None:
        lam = _checks.finite_array(eigenvalues, "eigenvalues").ravel()
        if rank is not None and lam.size != rank:
            raise _checks.ShapeError(f"got rank={rank} but {lam.size} eigenvalues; give one or make them agree.")
        if lam.size > p or lam.size == 0:
            raise _checks.ShapeError(f"need between 1 and p = {p} eigenvalues; got {lam.size}.")
        if np.any(lam < 0) or not np.any(lam > 0):
            raise _checks.ArgumentError("eigenvalues must be non-negative and not all zero (Phi must be PSD and non-zero).")
    else:
        r = p if rank is None else _checks.check_positive_int(rank, "rank")
        if r > p:
            raise _checks.ArgumentError(f"rank = {r} cannot exceed p = {p}.")
        lam = rng.uniform(1.0, 2.0, size=r)
    Q = random_orthogonal(p, rng)[:, : lam.size]
    phi = (Q * lam) @ Q.T
    return (phi + phi.T) / 2


def integer_factor(p: int, rank: int | None = None, *, seed=None, bound: int = 2) -> np.ndarray:
    """A random integer ``rank x p`` matrix D of full row rank with entries in [-bound, bound]:
    ``Phi* = D^T D`` is an integer PSD target of exactly that rank, for exact output of the teachers
    (``teach(D.T @ D, method, exact=True)``, or ``teach(featlib.Factored(D), "compact", exact=True)``).
    The rank is checked in exact arithmetic; a draw of lower rank is redrawn."""
    p = _checks.check_positive_int(p, "p")
    r = p if rank is None else _checks.check_positive_int(rank, "rank")
    if r > p:
        raise _checks.ArgumentError(f"rank = {r} cannot exceed p = {p}.")
    bound = _checks.check_positive_int(bound, "bound")
    if bound > 2**10:
        raise _checks.ArgumentError(f"bound = {bound} is too large for exact integer targets; use at most 1024.")
    _checks.check_allocation(8 * r * p, f"a {r} x {p} integer matrix")
    rng = _checks.as_generator(seed)
    for _ in range(100):
        D = rng.integers(-bound, bound + 1, size=(r, p))
        if _exact.rank(D.astype(object)) == r:
            return D.astype(np.int64)
    raise _checks.ArgumentError(  # pragma: no cover - needs bound = 1 and a tiny p with bad luck 100 times
        f"could not draw an integer {r} x {p} matrix of full row rank with entries in [-{bound}, {bound}]; "
        f"raise bound.")


def random_dictionary(d: int, p: int, *, seed=None, unit_norm: bool = True) -> np.ndarray:
    """A random dictionary ``D`` of shape (d, p) whose p columns are the atoms (Gaussian directions).

    With ``p > d`` the atoms are in superposition.  ``Phi* = D.T @ D`` is p x p of rank min(d, p),
    with unit diagonal when ``unit_norm`` (columns scaled to norm 1, as SAE decoders are).
    """
    d = _checks.check_positive_int(d, "d")
    p = _checks.check_positive_int(p, "p")
    unit_norm = _checks.check_bool(unit_norm, "unit_norm")
    _checks.check_allocation(8 * d * p, f"a {d} x {p} dictionary")
    rng = _checks.as_generator(seed)
    D = rng.standard_normal((d, p))
    if unit_norm:
        D /= np.sqrt(np.einsum("ij,ij->j", D, D))  # no d x p temporary (numpy.linalg.norm squares a copy)
    return D


def monomial_task(name: str, n: int, *, p: int = 10, sigma: float = 0.5, seed=None):
    """Samples ``(X, y)`` of one of the paper's RFM tasks: ``y = prod_{i in S} x_i * 1(x_g > 0)``.

    Parameters
    ----------
    name : {"z0z1", "z0z1z3", "x1x2x3x4"}
        See :data:`MONOMIAL_TASKS`.
    n : int
        Number of samples.
    p : int
        Input dimension (the paper: 10).
    sigma : float
        Standard deviation of each coordinate, ``x ~ N(0, sigma^2 I_p)``.  The paper writes
        "N(0, 0.5 I)", which reads as variance 0.5 (``sigma = sqrt(0.5)``); the reference RFM notebook
        it adapts draws ``np.random.normal(scale=0.5)``, standard deviation 0.5.  The default follows
        the code; the RFM chapter shows both.
    seed : int or Generator
    """
    _checks.check_method(name, tuple(MONOMIAL_TASKS), "monomial task")
    n = _checks.check_positive_int(n, "n")
    p = _checks.check_positive_int(p, "p")
    support, gate = MONOMIAL_TASKS[name]
    if p <= max(max(support), gate):
        raise _checks.ArgumentError(f"task {name!r} uses coordinates up to {max(max(support), gate)}; p = {p} is too small.")
    sigma = _checks.check_real(sigma, "sigma", low=0, low_open=True)
    _checks.check_allocation(2 * 8 * n * p, f"{n:,} samples in dimension {p}")
    rng = _checks.as_generator(seed)
    X = sigma * rng.standard_normal((n, p))
    y = np.prod(X[:, list(support)], axis=1) * (X[:, gate] > 0)
    return X, y

"""Input validation and the library's exceptions, in one place.

Every public function validates its input here and raises one of the exceptions below with a
message that says what was expected, what was found and how to fix it.  Library code never
validates with ``assert``.

All exceptions derive from :class:`FeatlibError`; most also derive from the matching built-in
(``ValueError``, ``ImportError``) so that generic ``except ValueError`` code keeps working.
"""

from __future__ import annotations

import importlib
import numbers
from typing import Iterable

import numpy as np

__all__ = [
    "FeatlibError",
    "ShapeError",
    "NonFiniteError",
    "NotSymmetricError",
    "NotPSDError",
    "FeedbackError",
    "InconsistentFeedbackError",
    "UnknownMethodError",
    "MissingDependencyError",
    "IdentifiabilityWarning",
]

#: Default relative tolerance for symmetry and PSD checks of user-supplied matrices.
SYM_RTOL = 1e-10
PSD_RTOL = 1e-10


class FeatlibError(Exception):
    """Base class of every error featlib raises on purpose."""


class ShapeError(FeatlibError, ValueError):
    """An array has the wrong number of dimensions or the wrong size."""


class NonFiniteError(FeatlibError, ValueError):
    """An array holds NaN or infinite values."""


class NotSymmetricError(FeatlibError, ValueError):
    """A matrix that must be symmetric is not (beyond the tolerance)."""


class NotPSDError(FeatlibError, ValueError):
    """A matrix that must be positive semi-definite has a negative eigenvalue beyond the tolerance."""


class FeedbackError(FeatlibError, ValueError):
    """Feedback that cannot be built or used as asked (mismatched dimension, no valid rescaling...)."""


class InconsistentFeedbackError(FeedbackError):
    """No non-zero PSD matrix satisfies every pair exactly (for example noisy answers)."""


class UnknownMethodError(FeatlibError, ValueError):
    """A ``method=`` name that featlib does not know."""


class ArgumentError(FeatlibError, ValueError):
    """An argument has a value featlib cannot use (a rank above p, a negative sparsity, ...)."""


class ArgumentTypeError(FeatlibError, TypeError):
    """An argument has a type featlib cannot use (a string for a number, a complex array, ...)."""


class IndexOutOfRangeError(FeatlibError, IndexError):
    """An index (of a pair, a latent, a coordinate) outside the valid range."""


class ResourceError(FeatlibError, MemoryError):
    """What was asked for would not fit in this machine's memory (refused before allocating)."""


class MissingFileError(FeatlibError, FileNotFoundError):
    """A file or folder that featlib was asked to read does not exist."""


class MissingDependencyError(FeatlibError, ImportError):
    """An optional dependency (cvxpy, torch, ...) is not installed."""


class ConvergenceError(FeatlibError, RuntimeError):
    """An iterative estimate did not reach its stated tolerance (raised rather than returned inexact)."""


class IdentifiabilityWarning(UserWarning):
    """A solver could not decide whether the feedback identifies the feature matrix."""


# --------------------------------------------------------------------------------------------
# generic helpers


def as_generator(seed) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` from ``None``, an int, a SeedSequence or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed < 0:
        raise ArgumentError(f"seed must be a non-negative integer; got {seed}.")
    if seed is None or isinstance(seed, (numbers.Integral, np.random.SeedSequence)):
        return np.random.default_rng(seed)
    raise ArgumentTypeError(
        f"seed must be None, an int, a numpy SeedSequence or a numpy.random.Generator; "
        f"got {type(seed).__name__}."
    )


def check_method(method, valid: Iterable[str], what: str = "method") -> str:
    """Return ``method`` if it is one of ``valid``; otherwise raise :class:`UnknownMethodError`."""
    valid = tuple(valid)
    if not isinstance(method, str) or method not in valid:
        raise UnknownMethodError(
            f"Unknown {what} {method!r}. Valid {what}s are: {', '.join(repr(v) for v in valid)}."
        )
    return method


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be an integer, got {type(value).__name__} ({value!r}).")
    if value < minimum:
        raise ArgumentError(f"{name} must be an integer >= {minimum}, got {value}.")
    return int(value)


def check_real(value, name: str, *, low: float | None = None, low_open: bool = False) -> float:
    """A finite real number (not a bool, not a string), at least ``low`` (or above it, ``low_open``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ArgumentTypeError(f"{name} must be a real number; got {type(value).__name__} ({value!r}).")
    v = float(value)
    if not np.isfinite(v) or (low is not None and (v <= low if low_open else v < low)):
        bound = "" if low is None else f" {'>' if low_open else '>='} {low}"
        raise ArgumentError(f"{name} must be a finite number{bound}; got {value!r}.")
    return v


def check_rtol(value, name: str, *, zero_ok: bool = False) -> float:
    """A relative tolerance: a finite number in (0, 1) (or [0, 1) with ``zero_ok``)."""
    v = check_real(value, name)
    if not ((0 <= v if zero_ok else 0 < v) and v < 1):
        raise ArgumentError(f"{name} must be a number in {'[' if zero_ok else '('}0, 1); got {value!r}.")
    return v


def check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be True or False; got {type(value).__name__} ({value!r}).")
    return bool(value)


def physical_memory() -> int:
    """Bytes of physical memory on this machine (0 when unknown)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 0


def address_space_limit() -> int:
    """The process's address-space limit (RLIMIT_AS, e.g. ``ulimit -v`` or a grader's sandbox), in
    bytes; 0 when unlimited or unknown."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 0
    return 0 if soft == resource.RLIM_INFINITY or soft < 0 else int(soft)


def check_allocation(nbytes: int, what: str) -> None:
    """Refuse, before allocating, an array larger than this machine's physical memory or this
    process's address-space limit."""
    total = physical_memory()
    if total and nbytes > total:
        raise ResourceError(f"{what} would need {nbytes / 2**30:,.1f} GiB, more than this machine's "
                            f"{total / 2**30:,.1f} GiB of memory; ask for less.")
    limit = address_space_limit()
    if limit and nbytes > limit:
        raise ResourceError(f"{what} would need {nbytes / 2**30:,.1f} GiB, more than this process's address-space "
                            f"limit of {limit / 2**30:,.1f} GiB (ulimit -v); ask for less.")


def check_probability(value, name: str, *, closed_low=True, closed_high=True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{name} must be a number in [0, 1], got {value!r}.") from None
    lo_ok = v >= 0 if closed_low else v > 0
    hi_ok = v <= 1 if closed_high else v < 1
    if not (np.isfinite(v) and lo_ok and hi_ok):
        lo = "[" if closed_low else "("
        hi = "]" if closed_high else ")"
        raise ArgumentError(f"{name} must lie in {lo}0, 1{hi}, got {value!r}.")
    return v


def require(module: str, extra: str, purpose: str = ""):
    """Import an optional dependency or raise :class:`MissingDependencyError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised through monkeypatching in tests
        why = f" (needed for {purpose})" if purpose else ""
        raise MissingDependencyError(
            f"The optional dependency {module!r} is not installed{why}. "
            f"Install it with: pip install 'featlib[{extra}]'  (or pip install {module})."
        ) from exc


# --------------------------------------------------------------------------------------------
# arrays and matrices


def max_abs(a) -> float:
    """The largest absolute entry of a non-empty array, without an ``abs(a)`` temporary (a p x d one is
    4 GiB at p = 2^20, d = 512)."""
    return max(float(a.max()), -float(a.min()))


def finite_array(a, name: str) -> np.ndarray:
    """Convert to a float64 array and check every entry is finite (complex input is refused, not
    silently cast to its real part)."""
    if np.iscomplexobj(a) or (isinstance(a, (list, tuple)) and any(isinstance(x, complex) for x in np.ravel(
            np.asarray(a, dtype=object)))):
        raise ArgumentTypeError(f"{name} is complex; featlib works with real activations and matrices. Pass the real "
                        f"part explicitly (np.real) if that is what you mean.")
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ArgumentTypeError(f"{name} must be a numeric array, could not convert it: {exc}") from None
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise NonFiniteError(
            f"{name} holds {bad} NaN or infinite value(s); every entry must be finite. "
            f"Clean the input (e.g. np.nan_to_num) or find where the NaN came from."
        )
    return arr


def square_matrix(a, name: str) -> np.ndarray:
    """A finite float64 square matrix, or a clear :class:`ShapeError`."""
    arr = finite_array(a, name)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ShapeError(
            f"{name} must be a non-empty square 2-D array of shape (p, p); got shape {arr.shape}."
        )
    return arr


def symmetric_matrix(a, name: str, *, rtol: float = SYM_RTOL) -> np.ndarray:
    """Check symmetry to a relative tolerance and return the exactly symmetrised matrix."""
    arr = square_matrix(a, name)
    scale = float(np.max(np.abs(arr))) if arr.size else 0.0
    asym = float(np.max(np.abs(arr - arr.T))) if arr.size else 0.0
    if asym > rtol * max(scale, np.finfo(float).tiny):
        i, j = np.unravel_index(np.argmax(np.abs(arr - arr.T)), arr.shape)
        raise NotSymmetricError(
            f"{name} must be symmetric: |{name}[{i},{j}] - {name}[{j},{i}]| = {asym:.3g} exceeds "
            f"{rtol:g} x max|entry| = {rtol * scale:.3g}. If the asymmetry is rounding error, pass "
            f"({name} + {name}.T) / 2."
        )
    return arr / 2.0 + arr.T / 2.0  # halves first: no overflow near the largest float


#: above this size the PSD check is a Cholesky factorisation of ``a + rtol * lambda_max * I``
#: (lambda_max by Lanczos) instead of all eigenvalues: 2.5 s instead of 11.5 s at p = 4096 on one core
CHOLESKY_PSD_MIN = 1024


def shifted_cholesky_norm(arr, rtol):
    """PSD certificate of a symmetric matrix without its eigenvalues: ``max|eigenvalue|`` by Lanczos,
    returned when ``arr + rtol * max|eigenvalue| * I`` has a Cholesky factor (then the smallest
    eigenvalue is above ``-rtol * max|eigenvalue|``).  None when the factorisation fails, Lanczos does
    not converge or the matrix is zero: the caller decides with the eigenvalues (or gives up)."""
    import scipy.linalg
    import scipy.sparse.linalg as spla

    if not arr.any():
        return None
    try:
        top = float(abs(spla.eigsh(arr, k=1, which="LM", return_eigenvectors=False)[0]))
    except spla.ArpackError:  # no convergence (or a degenerate start): the eigenvalues decide
        return None
    if not top > 0:
        return None
    shifted = arr + (rtol * top) * np.eye(arr.shape[0])
    try:
        scipy.linalg.cholesky(shifted, lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError:
        return None  # not PSD (or borderline): the eigenvalues decide and word the error
    return top


def psd_matrix(a, name: str, *, rtol: float = PSD_RTOL, allow_zero: bool = False, return_norm: bool = False):
    """Check a symmetric PSD matrix (eigenvalues >= -rtol * largest |eigenvalue|); return it symmetrised
    (and its spectral norm with ``return_norm=True``).

    Above :data:`CHOLESKY_PSD_MIN` rows a PSD matrix is certified by one Cholesky factorisation of
    ``a + rtol * lambda_max * I``; the eigenvalues are computed only when that fails, to decide and
    to word the error.
    """
    arr = symmetric_matrix(a, name)
    if arr.shape[0] > CHOLESKY_PSD_MIN:
        top = shifted_cholesky_norm(arr, rtol)
        if top is not None:
            return (arr, top) if return_norm else arr
    evals = np.linalg.eigvalsh(arr)
    top = float(np.max(np.abs(evals)))
    if top == 0.0:
        if allow_zero:
            return (arr, top) if return_norm else arr
        raise NotPSDError(
            f"{name} is the zero matrix; a feature matrix must be non-zero (every matrix is "
            f"'equivalent' to zero up to scale, so there is nothing to learn)."
        )
    if evals[0] < -rtol * top:
        raise NotPSDError(
            f"{name} must be positive semi-definite: its smallest eigenvalue is {evals[0]:.3g}, "
            f"below the tolerance -{rtol:g} x {top:.3g}. A feature matrix is Phi = D^T D; build it that "
            f"way, or project with featlib.linalg.psd_project if the negative part is rounding error."
        )
    return (arr, top) if return_norm else arr


def vectors(a, name: str, p: int | None = None) -> np.ndarray:
    """A finite float64 array of shape (n, p) (a single vector of shape (p,) becomes (1, p))."""
    arr = finite_array(a, name)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ShapeError(f"{name} must have shape (n, p) or (p,); got shape {arr.shape}.")
    if p is not None and arr.shape[1] != p:
        raise ShapeError(
            f"{name} has vectors of length {arr.shape[1]}, but the feature matrix is {p} x {p}: "
            f"expected shape (n, {p})."
        )
    return arr

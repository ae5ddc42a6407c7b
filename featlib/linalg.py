"""Symmetric vectorisation, PSD tests and projections, null spaces.

**svec convention.**  ``svec(S)`` lists the upper triangle of a symmetric ``p x p`` matrix row by
row (``numpy.triu_indices(p)`` order), with off-diagonal entries multiplied by ``sqrt(2)``.  With
this scaling ``svec`` is an isometry: ``svec(A) @ svec(B) == trace(A @ B)`` (the Frobenius inner
product), so a pair ``(y, z)`` gives the linear constraint ``svec(y y^T - z z^T) @ svec(Phi) = 0``
and the constraint matrix keeps the geometry of ``Sym(R^{p x p})``.  ``smat`` is its inverse.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from . import _checks

__all__ = [
    "svec_dim",
    "svec_index",
    "svec",
    "smat",
    "svec_outer",
    "svec_outer_sparse",
    "svec_outer_difference_sparse",
    "psd_project",
    "spectral_norm",
    "is_psd",
    "numerical_rank",
    "null_space",
    "orthogonal_complement",
    "right_singular",
]

SQRT2 = np.sqrt(2.0)


def svec_dim(p: int) -> int:
    """Dimension p(p+1)/2 of the space of symmetric p x p matrices."""
    p = _checks.check_positive_int(p, "p", minimum=0)
    return p * (p + 1) // 2


def _rtol(value, name="rtol"):
    """A relative tolerance: a finite number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _checks.ArgumentTypeError(f"{name} must be a number in [0, 1); got {value!r}.")
    if not (np.isfinite(value) and 0 <= value < 1):
        raise _checks.ArgumentError(f"{name} must be a finite number in [0, 1); got {value!r}.")
    return float(value)


def _indices(a, name, p):
    arr = np.asarray(a)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_)):
        raise _checks.ArgumentTypeError(f"{name} must be integer indices; got {arr.dtype} values.")
    if arr.size and (arr.min() < 0 or arr.max() >= p):
        raise _checks.IndexOutOfRangeError(f"{name} must lie in [0, {p}); got {arr.min()}..{arr.max()}.")
    return arr


def svec_index(i, j, p: int):
    """Position of entry (i, j) (i <= j, vectorised) in ``svec`` of a p x p matrix."""
    p = _checks.check_positive_int(p, "p")
    i = _indices(i, "i", p)
    j = _indices(j, "j", p)
    try:
        lo = np.minimum(i, j)
    except ValueError:
        raise _checks.ShapeError(f"i and j must have the same (or broadcastable) shapes; got {i.shape} and {j.shape}.") from None
    hi = np.maximum(i, j)
    return _svec_position(lo, hi, p)


def _svec_position(lo, hi, p):
    """Position of entry (lo, hi), ``lo <= hi``, in svec of a p x p matrix (unchecked: callers validate)."""
    return lo * p - lo * (lo - 1) // 2 + (hi - lo)


def svec(S) -> np.ndarray:
    """Isometric vectorisation of a symmetric matrix, or of a stack of them (shape (..., p, p))."""
    S = _checks.finite_array(S, "S")
    if S.ndim < 2 or S.shape[-1] != S.shape[-2]:
        raise _checks.ShapeError(f"svec expects square matrices of shape (..., p, p); got {S.shape}.")
    iu, ju, w = _triu(S.shape[-1])
    return S[..., iu, ju] * w


def smat(v, p: int | None = None) -> np.ndarray:
    """Inverse of :func:`svec`: a vector of length p(p+1)/2 (or a stack) to symmetric matrices."""
    v = _checks.finite_array(v, "v")
    if v.ndim < 1:
        raise _checks.ShapeError("smat expects a vector of length p(p+1)/2 (or a stack of them); got a scalar.")
    P = v.shape[-1]
    if p is None:
        p = int(round((np.sqrt(8 * P + 1) - 1) / 2))
    p = _checks.check_positive_int(p, "p", minimum=0)
    if svec_dim(p) != P:
        raise _checks.ShapeError(
            f"smat expects a vector of length p(p+1)/2; got length {P}, which is not of that form"
            f" for p = {p}."
        )
    iu, ju, w = _triu(p)
    out = np.zeros(v.shape[:-1] + (p, p))
    vals = v / w
    out[..., iu, ju] = vals
    out[..., ju, iu] = vals
    return out


def svec_outer(Y) -> np.ndarray:
    """Rows ``svec(y_k y_k^T)`` for the rows y_k of a dense array Y of shape (n, p)."""
    Y = _checks.finite_array(Y, "Y")
    if Y.ndim != 2:
        raise _checks.ShapeError(f"svec_outer expects an (n, p) array of rows; got shape {Y.shape}.")
    iu, ju, w = _triu(Y.shape[1])
    return (Y[:, iu] * Y[:, ju]) * w


def svec_outer_difference(Y, Z) -> np.ndarray:
    """``svec_outer(Y) - svec_outer(Z)`` as a dense array, for dense Y and Z of the same shape.  When they
    are mostly zeros (sparse activations) the rows are assembled from the non-zeros
    (:func:`svec_outer_difference_sparse`, the same products in the same order, so the same numbers;
    an exact zero comes out as +0.0 where the dense formula may give -0.0) and written out once: at p = 80 with 3-sparse pairs, 0.1 s instead of 1.2 s (the dense form makes
    three n x p(p+1)/2 temporaries)."""
    Y, Z = _checks.finite_array(Y, "Y"), _checks.finite_array(Z, "Z")
    if Y.shape != Z.shape or Y.ndim != 2:
        raise _checks.ShapeError(f"Y and Z must be (n, p) arrays of the same shape; got {Y.shape} and {Z.shape}.")
    if Y.size and np.count_nonzero(Y) + np.count_nonzero(Z) <= 0.5 * Y.size:
        # column-major, as the dense form comes out: later products then take the same BLAS kernels and
        # give the same roundings (a near-threshold solve flipped from decided to undecided without it)
        return svec_outer_difference_sparse(sp.csr_matrix(Y), sp.csr_matrix(Z)).toarray(order="F")
    return svec_outer(Y) - svec_outer(Z)


def svec_outer_sparse(Y) -> sp.csr_matrix:
    """Sparse rows ``svec(y_k y_k^T)`` for the rows of a scipy.sparse matrix Y of shape (n, p).

    Vectorised over rows with equal numbers of non-zeros, so the cost is proportional to the
    number of non-zeros of the output.
    """
    Y = _sparse_rows(Y, "Y")
    n, p = Y.shape
    rows, cols, vals = _svec_outer_entries(Y)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, svec_dim(p)))


def svec_outer_difference_sparse(Y, Z) -> sp.csr_matrix:
    """``svec_outer_sparse(Y) - svec_outer_sparse(Z)`` in one assembly (Y, Z scipy.sparse of the same
    shape): the two sets of entries go into one COO matrix whose conversion to CSR sums them; exact
    zeros are removed.  The rows ``svec(y_k y_k^T - z_k z_k^T)`` of the pairs' constraints."""
    Y, Z = _sparse_rows(Y, "Y"), _sparse_rows(Z, "Z")
    if Y.shape != Z.shape:
        raise _checks.ShapeError(f"Y and Z must have the same shape; got {Y.shape} and {Z.shape}.")
    n, p = Y.shape
    ry, cy, vy = _svec_outer_entries(Y)
    rz, cz, vz = _svec_outer_entries(Z)
    M = sp.csr_matrix((np.concatenate([vy, -vz]), (np.concatenate([ry, rz]), np.concatenate([cy, cz]))),
                      shape=(n, svec_dim(p)))  # duplicates summed
    M.eliminate_zeros()  # entries that cancel exactly (as a subtraction of the two would drop them)
    return M


def _sparse_rows(Y, name):
    if not sp.issparse(Y):
        Y = _checks.finite_array(Y, name)
        if Y.ndim != 2:
            raise _checks.ShapeError(f"svec_outer_sparse expects an (n, p) matrix; got shape {Y.shape}.")
    elif np.iscomplexobj(Y.data) or not np.all(np.isfinite(Y.data)):
        raise _checks.NonFiniteError(f"{name} must hold finite real values.")
    elif (Y.format == "csr" and Y.dtype == np.float64 and Y.has_canonical_format and np.all(Y.data != 0)):
        return Y  # already what the assembly needs: no copy (it only reads Y)
    Y = sp.csr_matrix(Y, dtype=float, copy=True)  # canonicalised below: never the caller's matrix in place
    Y.sum_duplicates()
    Y.eliminate_zeros()
    return Y


#: ``triu_indices(k)`` and the svec weights, kept (read-only) for k up to this size
TRIU_CACHE_MAX = 256
_TRIU = {}


def _triu(k):
    """(rows, columns, svec weights) of the upper triangle of a k x k matrix; cached for small k (svec and
    smat are called thousands of times on small matrices, where computing these dominated)."""
    if k in _TRIU:
        return _TRIU[k]
    a, b = np.triu_indices(k)
    w = np.where(a == b, 1.0, SQRT2)
    if k <= TRIU_CACHE_MAX:
        for arr in (a, b, w):
            arr.setflags(write=False)
        _TRIU[k] = (a, b, w)
    return a, b, w


def _svec_outer_entries(Y):
    """(rows, cols, values) of the entries of ``svec(y_k y_k^T)`` for a canonical CSR matrix Y."""
    n, p = Y.shape
    counts = np.diff(Y.indptr)
    rows, cols, vals = [], [], []
    for k in np.unique(counts):
        if k == 0:
            continue
        sel = np.flatnonzero(counts == k)
        starts = Y.indptr[sel]
        pos = starts[:, None] + np.arange(k)[None, :]
        idx = Y.indices[pos]  # (m, k), increasing along each row (canonical CSR)
        val = Y.data[pos]
        a, b, w = _triu(int(k))
        lo, hi = idx[:, a], idx[:, b]  # lo <= hi
        rows.append(np.repeat(sel, a.size))
        cols.append(_svec_position(lo, hi, p).ravel())
        vals.append((val[:, a] * val[:, b] * w).ravel())
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def psd_project(S) -> np.ndarray:
    """Nearest PSD matrix in Frobenius norm (negative eigenvalues set to zero)."""
    S = _checks.square_matrix(S, "S")
    S = (S + S.T) / 2
    w, V = np.linalg.eigh(S)
    w = np.clip(w, 0.0, None)
    out = (V * w) @ V.T
    return (out + out.T) / 2


def spectral_norm(S) -> float:
    """Largest absolute eigenvalue of a symmetric matrix (Lanczos for large ones, so p = 4096 takes
    a fraction of a second instead of a full SVD)."""
    S = _checks.square_matrix(S, "S")
    if S.shape[0] <= 256:
        return float(np.max(np.abs(np.linalg.eigvalsh((S + S.T) / 2)))) if S.size else 0.0
    import scipy.sparse.linalg as spla

    return float(abs(spla.eigsh((S + S.T) / 2, k=1, which="LM", return_eigenvectors=False)[0]))


def is_psd(S, rtol: float = 1e-10) -> bool:
    """True when the symmetric part of S has no eigenvalue below ``-rtol * max|eigenvalue|``."""
    S = _checks.square_matrix(S, "S")
    rtol = _rtol(rtol)
    w = np.linalg.eigvalsh((S + S.T) / 2)
    top = np.max(np.abs(w)) if w.size else 0.0
    return bool(w.size == 0 or w[0] >= -rtol * top)


def default_rank_rtol(p: int) -> float:
    """numpy.linalg.matrix_rank's convention: p * machine epsilon (relative to the top eigenvalue)."""
    return p * np.finfo(float).eps


def numerical_rank(phi, rtol: float | None = None) -> int:
    """Number of eigenvalues of a symmetric PSD matrix above ``rtol * largest eigenvalue``.

    The default ``rtol`` is ``p * eps`` (NumPy's ``matrix_rank`` convention), so exactly low-rank
    matrices built in floating point get their true rank.  Matrices that are only approximately
    low rank (a trained model's feature matrix) need an explicit, documented ``rtol``.
    """
    phi = _checks.square_matrix(phi, "phi")
    w = np.linalg.eigvalsh((phi + phi.T) / 2)
    rtol = default_rank_rtol(phi.shape[0]) if rtol is None else _rtol(rtol)
    top = float(np.max(np.abs(w))) if w.size else 0.0
    return int(np.count_nonzero(w > rtol * top)) if top > 0 else 0


def null_space(A, rtol: float = 1e-12) -> np.ndarray:
    """Orthonormal basis (columns) of the null space of A (singular values <= rtol * largest)."""
    A = np.atleast_2d(_checks.finite_array(A, "A"))
    rtol = _rtol(rtol)
    if A.ndim != 2:
        raise _checks.ShapeError(f"null_space expects a 2-D matrix; got shape {A.shape}.")
    if A.size == 0:
        return np.eye(A.shape[1])
    return sla.null_space(A, rcond=rtol)


def right_singular(M):
    """``(singular values, Vt)`` of a 2-D array with every right singular vector (Vt square, of the
    column count) but without the full left factor: the economy SVD when there are at least as many rows
    as columns (its Vt is then square already), the full one otherwise (its left factor is then the small
    one).  ``numpy.linalg.svd(M, full_matrices=True)`` on pairs x unknowns builds a pairs x pairs left
    factor: 0.47 s of a 1.2 s exact solve at p = 40 (2,075 x 210, in the solve's profile); measured alone,
    0.29 s against 0.03 s for this."""
    M = _checks.finite_array(M, "M")
    if M.ndim != 2:
        raise _checks.ShapeError(f"right_singular expects a 2-D matrix; got shape {M.shape}.")
    _, s, Vt = np.linalg.svd(M, full_matrices=M.shape[0] < M.shape[1])
    return s, Vt


def orthogonal_complement(N, p: int, rtol: float = 1e-12) -> np.ndarray:
    """Orthonormal basis (columns, p x q) of the orthogonal complement of span(columns of N)."""
    p = _checks.check_positive_int(p, "p")
    N = _checks.finite_array(N, "N")
    if N.size % p:
        raise _checks.ShapeError(f"N must have p = {p} rows (columns span the subspace); got shape {N.shape}.")
    N = N.reshape(p, -1)
    if N.shape[1] == 0:
        return np.eye(p)
    return null_space(N.T, rtol=rtol)

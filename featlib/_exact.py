"""Exact rational linear algebra for :mod:`featlib.certificates` (small sizes), on python-flint.

Matrices are numpy object arrays whose entries are :class:`flint.fmpq` (exact rationals in C);
elimination (reduced row echelon form, rank, null space, solving) runs in FLINT's ``fmpq_mat``,
which is one to three orders of magnitude faster than the same elimination on Python's
:class:`fractions.Fraction` (measured: verify's exact path on Gaussian pairs at p = 10 went from
8.2 s to well under a second).  Every float is a dyadic rational, so :func:`q` is exact.

Only the elimination moves to C; what is decided is unchanged: ranks, null spaces and the exact
LDL^T sign test of :func:`psd_rank` are exact whatever library computes them.
"""

from __future__ import annotations

import math
from fractions import Fraction

import flint
import numpy as np

__all__ = ["q", "rationalize", "rref", "rank", "null_space", "solve", "psd_rank", "identity", "zeros", "matmul",
           "full_column_rank_mod_prime", "integer_rank_mod_prime", "to_float", "height_bits",
           "integer_null_basis", "reduced_lattice_basis", "solve_matrix",
           "integer_vectors_near", "dyadic", "pair_combination", "svec_rows", "smat", "project"]

ZERO = flint.fmpq(0)
ONE = flint.fmpq(1)


def _scalar(x):
    if isinstance(x, flint.fmpq):
        return x
    if isinstance(x, (bool, np.bool_)):
        raise TypeError("a boolean is not a number here")
    if isinstance(x, (int, np.integer)):
        return flint.fmpq(int(x))
    if isinstance(x, Fraction):
        return flint.fmpq(x.numerator, x.denominator)
    num, den = float(x).as_integer_ratio()  # exact: a float is a dyadic rational (raises on NaN/inf)
    return flint.fmpq(num, den)


def q(a):
    """A numpy object array of exact rationals equal to ``a`` (floats, integers, Fractions)."""
    a = np.asarray(a)
    out = np.empty(a.shape, dtype=object)
    flat = out.reshape(-1)
    for i, x in enumerate(a.reshape(-1)):
        flat[i] = _scalar(x)
    return out


def rationalize(a, max_den=10**6):
    """The nearest rationals with denominator at most ``max_den`` (continued fractions)."""
    a = np.asarray(a, dtype=float)
    out = np.empty(a.shape, dtype=object)
    flat = out.reshape(-1)
    for i, x in enumerate(a.reshape(-1)):
        f = Fraction(float(x)).limit_denominator(max_den)
        flat[i] = flint.fmpq(f.numerator, f.denominator)
    return out


def identity(p):
    out = zeros((p, p))
    for i in range(p):
        out[i, i] = ONE
    return out


def zeros(shape):
    out = np.empty(shape, dtype=object)
    out[...] = ZERO
    return out


def to_float(a):
    return np.array([[float(x) for x in row] for row in np.atleast_2d(np.asarray(a, dtype=object))])


def _mat(M):
    M = np.asarray(M, dtype=object)
    n, m = M.shape
    return flint.fmpq_mat(n, m, [_scalar(x) for x in M.reshape(-1)])


def rref(M):
    """Reduced row echelon form of an exact matrix: ``(R, pivot columns)``, R an object array with the
    zero rows dropped."""
    M = np.asarray(M, dtype=object)
    if M.ndim != 2 or M.shape[0] == 0 or M.shape[1] == 0:
        return np.empty((0, M.shape[-1] if M.ndim == 2 else 0), dtype=object), []
    R, rk = _mat(M).rref()
    entries = R.entries()
    m = M.shape[1]
    rows = np.array(entries, dtype=object).reshape(M.shape)[:rk]
    pivots = []
    for row in rows:
        pivots.append(next(j for j in range(m) if row[j] != 0))
    return rows, pivots


def rank(M) -> int:
    M = np.asarray(M, dtype=object)
    if M.size == 0:
        return 0
    return int(_mat(M).rank())


def null_space(M, ncols=None):
    """Exact basis (columns, object array) of the null space of M, in reduced form (identity on the
    free columns)."""
    M = np.asarray(M, dtype=object)
    m = M.shape[1] if M.ndim == 2 and M.shape[0] else (ncols if ncols is not None else M.shape[-1])
    if M.size == 0:
        return identity(m)
    R, piv = rref(M)
    free = [c for c in range(m) if c not in set(piv)]
    out = zeros((m, len(free)))
    for k, f in enumerate(free):
        out[f, k] = ONE
        for r, c in enumerate(piv):
            out[c, k] = -R[r][f]
    return out


def solve(A, b):
    """One exact solution x of A x = b, or None if the system is inconsistent."""
    A = np.asarray(A, dtype=object)
    aug = np.concatenate([A, np.asarray(b, dtype=object).reshape(-1, 1)], axis=1)
    R, piv = rref(aug)
    m = A.shape[1]
    if m in piv:
        return None
    x = zeros(m)
    for r, c in enumerate(piv):
        x[c] = R[r][m]
    return x


def psd_rank(S):
    """(is PSD, rank) of a symmetric exact matrix, from its characteristic polynomial.

    ``det(t I - S) = sum_k (-1)^k e_k t^(n-k)`` with e_k the elementary symmetric functions of the
    (real) eigenvalues.  If every e_k >= 0, the polynomial has no negative root (all its terms have one
    sign at t < 0), so S is PSD; conversely a PSD matrix has every e_k >= 0.  For a PSD matrix e_k > 0
    exactly when at least k eigenvalues are positive, so the rank is the largest k with e_k != 0.  The
    polynomial is computed by FLINT on the integer matrix ``d S`` (d the common denominator, d > 0: the
    same signs and rank); this replaced an LDL^T on rationals whose entries grew to thousands of bits
    (2.2 s a call at p = 20, measured)."""
    S = np.asarray(S, dtype=object)
    n = S.shape[0]
    if n == 0:
        return True, 0
    for i in range(n):
        for j in range(i):
            if S[i, j] != S[j, i]:
                return False, 0
    Zm, _den = _mat(S).numer_denom()
    coeffs = [int(c) for c in Zm.charpoly().coeffs()]  # c_0 .. c_n, c_n = 1
    coeffs += [0] * (n + 1 - len(coeffs))
    e = [(-1) ** k * coeffs[n - k] for k in range(n + 1)]
    if any(x < 0 for x in e):
        return False, 0
    return True, max(k for k in range(n + 1) if e[k] != 0)


PRIME = 2**61 - 1


def integer_rank_mod_prime(rows) -> int:
    """The rank modulo :data:`PRIME` of a list of integer rows (at most the rank over the rationals, so a
    full rank here proves it there)."""
    if not rows:
        return 0
    entries = [int(x) % PRIME for row in rows for x in row]
    return int(flint.nmod_mat(len(rows), len(rows[0]), entries, PRIME).rank())


def full_column_rank_mod_prime(M, ncols) -> bool:
    """True when the exact matrix M (rows) has rank ``ncols`` modulo a large prime, which proves full
    column rank over the rationals (a minor non-zero mod p is non-zero).  Each row is first multiplied
    by the common denominator of its entries; False (undecided) if the prime divides one."""
    M = np.asarray(M, dtype=object)
    if M.size == 0 or M.shape[0] < ncols:
        return False
    entries = []
    for row in M:
        den = 1
        for x in row:
            d = int(_scalar(x).denominator)
            den = den * d // math.gcd(den, d)
        if den % PRIME == 0:
            return False
        entries.extend(int(_scalar(x) * den) % PRIME for x in row)
    R = flint.nmod_mat(M.shape[0], M.shape[1], entries, PRIME)
    return int(R.rank()) == ncols


def matmul(A, B):
    """The exact product of two exact matrices (2-D object arrays), computed in FLINT."""
    A = np.asarray(A, dtype=object)
    B = np.asarray(B, dtype=object)
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"shapes {A.shape} and {B.shape} do not multiply")
    if A.size == 0 or B.size == 0:
        return zeros((A.shape[0], B.shape[1]))
    P = _mat(A) * _mat(B)
    return np.array(P.entries(), dtype=object).reshape(A.shape[0], B.shape[1])


def height_bits(A) -> int:
    """The largest bit height (of numerator and denominator) among the entries of an exact array."""
    A = np.asarray(A, dtype=object)
    return max((int(_scalar(x).height_bits()) for x in A.reshape(-1)), default=0)


def _fmpz_mat(A):
    A = np.asarray(A, dtype=object)
    return flint.fmpz_mat(A.shape[0], A.shape[1], [int(x) for x in A.reshape(-1)])


def integer_null_basis(A):
    """For an integer matrix A (object array of ints, p columns): an integer array whose columns are a basis
    of its null space (primitive integer vectors, LLL-reduced), exactly."""
    A = np.asarray(A, dtype=object)
    p = A.shape[1]
    X, nullity = _fmpz_mat(A).nullspace()
    Nm = np.array([int(x) for x in X.entries()], dtype=object).reshape(p, p)[:, :int(nullity)]
    if Nm.shape[1]:
        # LLL-reduce the basis (as rows): short, nearly orthogonal integer vectors
        red = _fmpz_mat(Nm.T).lll()
        Nm = np.array([int(x) for x in red.entries()], dtype=object).reshape(Nm.shape[1], p).T
    for k in range(Nm.shape[1]):
        g = math.gcd(*[int(x) for x in Nm[:, k]])
        if g > 1:
            Nm[:, k] = [int(x) // g for x in Nm[:, k]]
    return Nm


def reduced_lattice_basis(N, p):
    """An LLL-reduced basis (columns) of the integer vectors orthogonal to the columns of N (p x m,
    integers): for N a basis of null(A), short integer vectors spanning range(A), better conditioned
    than A's own columns.  The identity when N has no columns."""
    N = np.asarray(N, dtype=object).reshape(p, -1)
    if N.shape[1] == 0:
        out = np.zeros((p, p), dtype=object)
        for i in range(p):
            out[i, i] = 1
        return out
    m = N.shape[1]
    # the integer kernel lattice {x in Z^p : N^T x = 0} (saturated: a rational null-space basis spans a
    # sublattice of huge index, whose reduced vectors stay long), by LLL on [I | K N] with K large: the
    # reduced rows whose last m entries vanish are a reduced basis of the kernel lattice
    K = 2 ** (60 + max(1, max(abs(int(x)) for x in N.ravel())).bit_length())
    M = np.concatenate([np.eye(p, dtype=np.int64).astype(object), N * K], axis=1)
    red = np.array([int(x) for x in _fmpz_mat(M).lll().entries()], dtype=object).reshape(p, p + m)
    rows = [row[:p] for row in red if all(x == 0 for x in row[p:])]
    B = np.array(rows, dtype=object).reshape(len(rows), p).T
    if B.shape[1] != p - m or any(int(v) != 0 for v in N.T.dot(B).ravel()):  # pragma: no cover - K too small
        raise ArithmeticError("could not reduce the integer kernel lattice")
    return B


def solve_matrix(A, B):
    """The exact solution X of A X = B for a square invertible exact A and exact B (object arrays):
    an object array of fmpq."""
    A = np.asarray(A, dtype=object)
    B = np.asarray(B, dtype=object)
    X = _mat(A).solve(_mat(B))
    return np.array(X.entries(), dtype=object).reshape(A.shape[1], B.shape[1])


def integer_vectors_near(K, weight=2.0**40, max_entry=2**10, tol=1e-9):
    """A basis (columns, exact integers) of an integer lattice spanning the column space of the float
    matrix K (f x k), found by LLL, or None.

    The rows of ``[I_f | round(weight * x^T Q)]`` (Q an orthonormal basis of the complement of range(K))
    generate a lattice in which an integer vector x close to range(K) is short; after LLL the k shortest
    rows whose second part is small relative to ``weight`` are candidates, accepted when they are k
    linearly independent vectors within ``tol`` (relative) of range(K), with entries up to ``max_entry``
    (any subspace is approximated that well by long enough integer vectors).  Recovers a rational subspace
    from a float basis accurate to ~1e-12 when short integer vectors span it, whatever the
    denominators of its reduced row echelon form."""
    K = np.asarray(K, dtype=float)
    f, k = K.shape
    if k == f:
        return identity(f)
    if k == 0:
        return zeros((f, 0))
    U, _, _ = np.linalg.svd(K, full_matrices=True)
    Q = U[:, k:]  # complement
    tail = np.round(weight * Q).astype(object)
    rows = np.concatenate([identity(f).astype(object), tail], axis=1)
    red = np.array([int(x) for x in _fmpz_mat(np.array([[int(x) for x in row] for row in rows], dtype=object))
                    .lll().entries()], dtype=object).reshape(f, f + (f - k))
    picked = []
    for row in red:
        x = np.array([float(v) for v in row[:f]])
        nx = np.linalg.norm(x)
        if nx == 0:
            continue
        if np.linalg.norm(Q.T @ x) <= tol * nx and np.abs(x).max() <= max_entry:
            picked.append([int(v) for v in row[:f]])
        if len(picked) == k:
            break
    if len(picked) < k:
        return None
    B = np.array(picked, dtype=object).T
    if rank(q(B)) != k:
        return None
    return q(B)


def dyadic(a, max_bits=2048):
    """``a`` (finite floats) as ``(ints, e)``: a numpy object array of Python integers with
    ``a == ints * 2**e`` exactly (every float is a dyadic rational; one common exponent).  None when
    the magnitudes span more than ``max_bits`` bits (the integers would be needlessly huge)."""
    a = np.asarray(a, dtype=float)
    if not np.all(np.isfinite(a)):
        raise ValueError("dyadic() needs finite numbers")
    frac, ex = np.frexp(a)  # a = frac * 2**ex exactly, 0.5 <= |frac| < 1 (or frac = 0)
    mant = np.ldexp(frac, 53).astype(np.int64)  # an integer below 2**53 in magnitude: exact
    nz = mant != 0
    if not nz.any():
        return np.zeros(a.shape, dtype=object), 0
    e0 = int(ex[nz].min()) - 53
    shift = np.where(nz, ex.astype(np.int64) - 53 - e0, 0)
    if int(shift.max()) > max_bits:
        return None
    return mant.astype(object) << shift.astype(object), e0


def pair_combination(Y, Z, alpha, max_bits=2048, max_work=2 * 10**8):
    """``sum_k alpha_k (y_k y_k^T - z_k z_k^T)`` in exact integer arithmetic (FLINT's ``fmpz_mat``):
    returns ``(C, e)`` with C a numpy object array of Python integers and the exact combination
    equal to ``C * 2**e``; None when the inputs span more than ``max_bits`` bits of magnitude, or
    when the work (products of non-zeros, or n p^2 for dense rows) is above ``max_work`` (a hostile
    certificate must not make verify run for hours: the caller then uses floating point).

    The rows of ``Y`` and ``Z`` and the multipliers are floats; nothing is rounded here (the caller
    rounds the result once, with a proved bound: :func:`featlib._rigorous.round_dyadic`)."""
    Y, Z, alpha = np.asarray(Y, dtype=float), np.asarray(Z, dtype=float), np.asarray(alpha, dtype=float)
    keep = alpha != 0
    YZ, alpha = np.vstack([Y[keep], Z[keep]]), alpha[keep]
    n, p = len(alpha), Y.shape[1]
    if n == 0:
        return np.zeros((p, p), dtype=object), 0
    # the work first: refuse before converting anything to Python integers
    nnz = np.count_nonzero(YZ, axis=1)
    sparse_work = int(nnz @ nnz)
    if min(sparse_work, n * p * p) > max_work:
        return None
    yz, aa = dyadic(YZ, max_bits), dyadic(alpha, max_bits)
    if yz is None or aa is None:
        return None
    (V, ev), (A, ea) = yz, aa
    if sparse_work * 8 < n * p * p:
        # sparse rows (sampled activations): only the products of each row's non-zeros, + for y, - for z
        C = np.zeros((p, p), dtype=object)
        for rows, signs in ((V[:n], A), (V[n:], -A)):
            for row, a in zip(rows, signs):
                idx = np.flatnonzero(row)
                if idx.size:
                    C[np.ix_(idx, idx)] += np.outer(row[idx], row[idx]) * a
        return C, 2 * ev + ea
    Yi, Zi = V[:n], V[n:]
    Dy, Dz = Yi * A[:, None], Zi * A[:, None]
    C = (_fmpz_mat(Dy.T) * _fmpz_mat(Yi)) - (_fmpz_mat(Dz.T) * _fmpz_mat(Zi))
    return np.array([int(x) for x in C.entries()], dtype=object).reshape(p, p), 2 * ev + ea


def svec_rows(Ys, Zs):
    """Rows of <W, y y^T - z z^T> over the upper-triangle entries of W (exact)."""
    f = Ys.shape[1]
    iu, ju = np.triu_indices(f)
    rows = []
    for y, z in zip(Ys, Zs):
        row = []
        for i, j in zip(iu, ju):
            v = y[i] * y[j] - z[i] * z[j]
            row.append(v if i == j else 2 * v)
        rows.append(row)
    return np.array(rows, dtype=object).reshape(len(rows), iu.size)


def smat(w, f):
    """The symmetric f x f matrix whose upper triangle (row by row) is ``w`` (exact)."""
    iu, ju = np.triu_indices(f)
    W = zeros((f, f))
    for k, (i, j) in enumerate(zip(iu, ju)):
        W[i, j] = w[k]
        W[j, i] = w[k]
    return W


def project(x, N):
    """The point of span(N) (exact columns) nearest to x (exact), by the normal equations."""
    G = matmul(N.T, N)
    c = solve(G, matmul(N.T, np.asarray(x, dtype=object).reshape(-1, 1)).reshape(-1))
    return matmul(N, c.reshape(-1, 1)).reshape(-1)

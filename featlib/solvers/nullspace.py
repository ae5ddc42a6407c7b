"""Stage 2 of the exact solver: the null space of the linear system left on the face.

Three ways to compute it, by the size and structure of the problem:

* :func:`dense_null_space`: QR + SVD of the unit-normalised constraint rows (small and medium p);
* :func:`peel`: back substitution over sparse rows, round after round, which proves a
  one-dimensional solution space without any rank decision when it determines every unknown
  (Theorem 2's pairs at p = 4096, the shared-basis path);
* shift-invert Lanczos on ``M^T M`` (in :mod:`featlib.solvers.exact`, for sparse feedback that
  back substitution cannot finish).

Nothing here knows about PSD matrices or teachers: the rows come from the reduced pairs.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ..linalg import svec_outer_difference

__all__ = ["constraint_rows", "dense_null_space", "gram_null_space", "peel"]


def constraint_rows(Yr, Zr, scale=None, drop_rtol=1e-12, *, return_index=False):
    """Unit-normalised rows svec(y y^T - z z^T) of dense (reduced) pairs.

    Rows whose norm is at most ``drop_rtol * scale`` (``scale``: ||y||^2 + ||z||^2 of the original
    pair, default of the given one) carry nothing above rounding and are dropped.  With
    ``return_index=True`` also returns the indices of the kept pairs and their row norms.
    """
    M = svec_outer_difference(Yr, Zr)
    if scale is None:
        scale = np.einsum("ij,ij->i", Yr, Yr) + np.einsum("ij,ij->i", Zr, Zr)
    norms = np.linalg.norm(M, axis=1)
    keep = norms > drop_rtol * scale
    rows = M[keep] / norms[keep, None]
    if return_index:
        return rows, np.flatnonzero(keep), norms[keep]
    return rows


def dense_null_space(M, rtol):
    """(basis of the numerical null space (orthonormal columns), singular values or None) of a dense
    matrix whose rows are unit-normalised (as :func:`constraint_rows` returns them).

    The rank counts singular values above ``rtol`` times the largest.  It is decided first from QR
    factorisations whose bounds settle it without the spectrum: with fewer rows than unknowns one QR of
    ``M^T`` that proves full row rank (:func:`_null_space_if_full_row_rank`), else a plain QR of M and
    then a column-pivoted one (:func:`_null_space_from_qr`); the singular values are then not computed
    and None is returned in their place.  Where the bounds leave the rank open, a full SVD decides (and
    its values are returned).  At p = 40 (820 unknowns, 819 Gaussian pairs) the QR route takes 0.04 s,
    the SVD 0.25 s.
    """
    n, P = M.shape
    if n == 0:
        return np.eye(P), np.zeros(0)
    if n < P:  # fewer rows than unknowns (e.g. one Gaussian pair fewer than unknowns): full row rank?
        fast = _null_space_if_full_row_rank(M, rtol)
        if fast is not None:
            return fast, None
    # a plain QR, then a column-pivoted one; each is used only when its bounds prove the rank
    R = sla.qr(M, mode="r", overwrite_a=False, check_finite=False)[0][:P]
    M = R if n > P else M  # same singular values and null space
    fast = _null_space_from_qr(R, np.arange(P), rtol)
    if fast is None:
        R, piv = sla.qr(M, mode="r", pivoting=True, check_finite=False)
        fast = _null_space_from_qr(R, piv, rtol)
    if fast is not None:
        return fast, None
    _, s, Vt = np.linalg.svd(M, full_matrices=True)
    rank = int(np.count_nonzero(s > rtol * s[0]))
    return Vt[rank:].T, s


def _fro(a):
    """Frobenius norm by one fused sum (numpy.linalg.norm makes temporaries: 8 ms against 0.5 ms for an
    820 x 820 matrix here)."""
    return float(np.sqrt(np.einsum("ij,ij->", a, a)))


def _null_space_if_full_row_rank(M, rtol):
    """The null space of an n x P matrix ``M`` (n < P) when a QR factorisation ``M^T = Q [R; 0]`` proves
    it has full row rank under the rule of :func:`dense_null_space`, else None: ``sigma_n(M) =
    sigma_min(R) >= 1 / ||R^-1||_F`` and ``sigma_1 <= ||R||_F``, so every singular value is above
    ``rtol sigma_1`` when ``1 / ||R^-1||_F > rtol ||R||_F`` (with the rounding margin of
    :func:`_null_space_from_qr`).  The null space is then the last P - n columns of Q, applied from the
    Householder reflectors (one QR in all; backward stable)."""
    n, P = M.shape
    (qr, tau), R = sla.qr(M.T, mode="raw", check_finite=False)
    R = np.triu(R[:n, :n])
    total = _fro(R)
    if not total > 0:
        return None
    inv, info = sla.lapack.dtrtri(R, lower=0)
    if info != 0 or not np.all(np.isfinite(inv)):
        return None
    if not 1.0 / _fro(inv) - 16.0 * P * np.finfo(float).eps * total > rtol * total:
        return None
    E = np.zeros((P, P - n))
    E[n:] = np.eye(P - n)
    C, _, info = sla.lapack.dormqr("L", "N", qr, tau, E, lwork=max(1, 64 * P))
    return C if info == 0 else None


def _null_space_from_qr(R, piv, rtol):
    """The null space of ``M`` from a QR factorisation ``M[:, piv] = Q R`` when its bounds prove the rank
    rule of :func:`dense_null_space` (``sigma_i > rtol sigma_1``), else None.

    With r the length of the leading run of diagonal entries above ``rtol c`` (``c``: the largest
    column norm of R, which is M's, and ``c <= sigma_1 <= ||R||_F``) and ``R = [R11 R12; 0 R22]``: the
    first r columns of ``M[:, piv]`` have the singular values of R11, so by interlacing
    ``sigma_r(M) >= sigma_min(R11) >= 1 / ||R11^-1||_F``; and ``M[:, piv] - Q [R11 R12; 0 0]`` has norm
    ``||R22||_2``, so by Weyl ``sigma_(r+1)(M) <= ||R22||_F``.  The rank is r when
    ``1 / ||R11^-1||_F > rtol ||R||_F`` and ``||R22||_F <= rtol c``, each with a margin of
    ``16 P eps ||R||_F`` for the rounding of the factorisation (a numerical rank decision at ``rtol``,
    like the SVD's, whose computed singular values carry rounding of the same order; ``rtol`` is at
    least 1e-9 in the solvers, far above the margin).  The null space is then the orthogonal complement
    of the rows ``[R11 R12]`` (rows permuted back)."""
    P = R.shape[1]
    R = R[: min(R.shape[0], P)]
    c = float(np.sqrt(np.max(np.einsum("ij,ij->j", R, R), initial=0.0)))
    if not c > 0:
        return None
    d = np.abs(np.diag(R))
    total = _fro(R)
    slack = 16.0 * P * np.finfo(float).eps * total
    small = np.flatnonzero(d <= rtol * c)
    r = int(small[0]) if small.size else d.size
    rest = _fro(R[r:, r:]) if r < R.shape[0] else 0.0
    if not rest + slack <= rtol * c:
        return None
    R11 = np.triu(R[:r, :r])
    if r:
        inv, info = sla.lapack.dtrtri(R11, lower=0)
        if info != 0 or not np.all(np.isfinite(inv)):
            return None
        if not 1.0 / _fro(inv) - slack > rtol * total:
            return None
    k = P - r
    if k == 0:
        return np.zeros((P, 0))
    N = np.zeros((P, k))
    if not r:
        N[piv, np.arange(k)] = 1.0
        return N
    # the orthogonal complement of the row space of [R11 R12] (which is M's to the dropped R22), from a
    # Householder QR of its transpose: backward stable, as accurate as the SVD's basis.  The explicit
    # form [-R11^-1 R12; I] (orthonormalised) was not: on the face of exact Gaussian pairs at p = 20,
    # rank 1, 42 pairs, seed 5 (41 x 190 rows) it was 3e-13 from the SVD's null space with residual
    # 2e-13, against 1e-14 and 1e-15 for this one, and the solve was left undecided
    (qr, tau), _ = sla.qr(R[:r].T, mode="raw", check_finite=False)
    E = np.zeros((P, k))
    E[r:] = np.eye(k)
    C, _, info = sla.lapack.dormqr("L", "N", qr, tau, E, lwork=max(1, 64 * P))
    if info != 0:
        return None
    N[piv] = C
    return N


#: the eigensolver's backward error is taken as GRAM_EIGH_FACTOR P eps ||G||_1 (the form of the QR route's
#: 16 P eps margin, :func:`_null_space_from_qr`)
GRAM_EIGH_FACTOR = 16.0
#: inverse-iteration steps that bring the Gram's null vectors (accurate to eps ||G|| / lambda_(k+1), 1e-6 on
#: sampled pairs at p = 80) to the accuracy of a QR's (eps ||A|| / sigma_(P-k)); each gains about
#: lambda_(k+1) / (eps ||G||)
GRAM_REFINE_STEPS = 2


def gram_null_space(A, rtol):
    """The numerical null space (orthonormal columns) of unit-normalised rows ``A`` (CSR or dense) under the
    rule of :func:`dense_null_space` (singular values above ``rtol`` times the largest count), from the
    Gram matrix ``A^T A`` instead of a dense QR of A; None when this route cannot decide (the caller then
    uses :func:`dense_null_space`).

    The Gram matrix of sparse rows is cheap to form and small (unknowns x unknowns), but it squares the
    singular values: it can only separate a null space whose neighbours are far above its rounding.  With
    ``m = gamma_c || |A|^T |A| ||_1 + GRAM_EIGH_FACTOR P eps ||G||_1`` (the rounding of forming G, c the most
    rows an unknown occurs in, plus the eigensolver's backward error), the computed eigenvalues are within
    m of those of the exact ``A^T A`` (Weyl).  The k computed eigenvalues at most m are the candidates; the
    next must exceed ``m + 2 (rtol ||A||_F)^2``, so ``sigma_(P-k)(A) > rtol ||A||_F >= rtol sigma_1`` (none in
    between, else None).  The candidates' eigenvectors, refined by inverse iteration against A itself
    (:data:`GRAM_REFINE_STEPS`, with the Cholesky factor of ``G + g V0 V0^T``) and orthonormalised, must
    satisfy ``||A V0||_F + 16 P eps ||A||_F <= rtol c`` (c: the largest column norm, at most sigma_1), so
    that A has k singular values at most ``rtol sigma_1``: the rank is then P - k under the rule, and V0
    spans the null space to ``||A V0|| / sigma_(P-k)``.  Measured on sampled 3-sparse pairs (2,062 x 820 at
    p = 40, 8,162 x 3,240 at p = 80): 0.03 s and 2.2 s against 0.2 s and 6.7 s for the dense QR."""
    dense = not sp.issparse(A)
    A = np.asarray(A, dtype=float) if dense else sp.csr_matrix(A)
    n, P = A.shape
    if n == 0 or P == 0:
        return None
    eps = np.finfo(float).eps
    if dense:
        G = A.T @ A
        col_count = n
        absA = np.abs(A)
        abs_sums = absA.T @ absA.sum(axis=1)  # the column sums of |A|^T |A|
    else:
        G = (A.T @ A).toarray()
        col_count = int(np.max(np.diff(A.tocsc().indptr), initial=0))
        absA = abs(A)
        abs_sums = np.asarray((absA.T @ absA).sum(axis=0)).ravel()
    G = (G + G.T) / 2
    if not np.all(np.isfinite(G)):
        return None
    gram_err = 2.0 * (col_count + 2) * eps * float(np.max(abs_sums, initial=0.0))
    g1 = float(np.max(np.abs(G).sum(axis=0), initial=0.0))
    if not g1 > 0:
        return None
    margin = GRAM_EIGH_FACTOR * P * eps * g1 + gram_err
    fro = float(np.sqrt(max(np.trace(G), 0.0)))  # ||A||_F, at least sigma_1
    c = float(np.sqrt(np.max(G.diagonal(), initial=0.0)))  # the largest column norm of A, at most sigma_1
    try:
        w, V = sla.eigh(G, subset_by_value=(-np.inf, margin + 2.0 * (rtol * fro) ** 2), driver="evr",
                        check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None
    if np.any(w > margin):  # an eigenvalue the Gram cannot place on either side of the rule
        return None
    k = w.size
    if k == 0:
        return np.zeros((P, 0))
    if k == P:
        return None
    g = float(np.trace(G)) / P
    try:
        cho = sla.cho_factor(G + g * (V @ V.T), check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None
    for _ in range(GRAM_REFINE_STEPS):
        V = V - sla.cho_solve(cho, np.asarray(A.T @ (A @ V)), check_finite=False)
        V, R = np.linalg.qr(V)
        if not (np.all(np.isfinite(V)) and np.abs(np.diag(R)).min() > 0.5):
            return None
    if not float(np.linalg.norm(A @ V)) + 16.0 * P * eps * fro <= rtol * c:
        return None
    return V


#: peel continues one unknown at a time (:func:`_peel_worklist`) once PEEL_WORKLIST_ROUNDS rounds in a row
#: each solved fewer than PEEL_WORKLIST_FRACTION of the unknowns left, with at least PEEL_WORKLIST_MIN left.
#: One slow round is not a chain: Theorem 2's first round solves only the p diagonal entries (0.05 % of
#: 8.4 M unknowns at p = 4096) and its second all the rest; switching after that first round took the
#: solve from 14 s to 130 s (the work list is a Python loop, about 14 us an unknown)
PEEL_WORKLIST_FRACTION = 0.01
PEEL_WORKLIST_MIN = 4096
PEEL_WORKLIST_ROUNDS = 8


def _peel_worklist(M, x, solved, b, row_of):
    """Back substitution by a work list (unit propagation): a row whose unknowns are all solved but one
    solves it, and each solved unknown updates only the rows it occurs in.  Updates ``x`` and ``solved``
    in place; returns whether every unknown got solved.  O(nnz) numpy slices in all, where the rounds of
    :func:`peel` cost O(nnz) each."""
    n = M.shape[0]
    C = M.tocsc()
    open_count = np.bincount(row_of[~solved[M.indices]], minlength=n)
    known = M @ x
    queue = np.flatnonzero(open_count == 1).tolist()
    indptr, indices, data = M.indptr, M.indices, M.data
    while queue:
        i = queue.pop()
        if open_count[i] != 1:
            continue  # solved meanwhile through another row: it is checked by the final residual
        lo, hi = indptr[i], indptr[i + 1]
        pos = lo + int(np.flatnonzero(~solved[indices[lo:hi]])[0])
        j = indices[pos]
        x[j] = (b[i] - known[i]) / data[pos]
        solved[j] = True
        rows, vals = C.indices[C.indptr[j]:C.indptr[j + 1]], C.data[C.indptr[j]:C.indptr[j + 1]]
        known[rows] += vals * x[j]
        open_count[rows] -= 1
        queue.extend(rows[open_count[rows] == 1].tolist())
    return bool(solved.all())


def peel(M, dim, b=None):
    """Back substitution on the sparse system ``M x = b`` (unit rows).

    Homogeneous (``b`` None): fix the unknown that occurs in the most rows to 1.  Inhomogeneous:
    no unknown is fixed; the right-hand side ``b`` carries the scale.  Then repeatedly solve every
    row that has exactly one unknown left (when several rows can solve the same unknown, the one
    with the largest coefficient does).  Linear in the number of non-zeros per round; Theorem 2's
    feedback needs two rounds, whatever p.  When the rounds stall on a chain (few unknowns a round for
    several rounds, as for the compact pairs), it goes on one unknown at a time (:func:`_peel_worklist`).

    Returns x when every unknown gets determined *and* every row is satisfied to
    ``1e3 * eps * max|x| * dim``; then the solution space of the homogeneous system is exactly
    one-dimensional (each unknown is a fixed multiple of the normalised one, or of the common
    scale of ``b``), with no rank decision.  Else None.
    """
    n, P = M.shape
    if n == 0 or P == 0:
        return None
    x = np.zeros(P)
    solved = np.zeros(P, dtype=bool)
    if b is None:
        b = np.zeros(n)
        ref = int(np.argmax(np.bincount(M.indices, minlength=P)))
        x[ref], solved[ref] = 1.0, True
    else:
        b = np.asarray(b, dtype=float)
    row_of = np.repeat(np.arange(n), np.diff(M.indptr))
    slow = 0  # consecutive rounds that solved few unknowns
    while not solved.all():
        open_nnz = ~solved[M.indices]
        single = np.bincount(row_of[open_nnz], minlength=n) == 1
        sel = open_nnz & single[row_of]
        if not sel.any():
            return None
        cols, coef, rows = M.indices[sel], M.data[sel], row_of[sel]
        known = M @ x  # contributions of the solved unknowns (unsolved ones are still 0)
        # by column, largest |coefficient| first: one argsort of a combined key (a lexsort costs ~3x more)
        mag = np.abs(coef)
        order = np.argsort(cols + 0.5 * (1.0 - mag / mag.max()), kind="stable")
        cols, coef, rows = cols[order], coef[order], rows[order]
        first = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
        cols, coef, rows = cols[first], coef[first], rows[first]
        x[cols] = (b[rows] - known[rows]) / coef
        solved[cols] = True
        left = P - int(np.count_nonzero(solved))
        slow = slow + 1 if left >= PEEL_WORKLIST_MIN and cols.size < PEEL_WORKLIST_FRACTION * left else 0
        if slow >= PEEL_WORKLIST_ROUNDS:
            # a chain (the compact pairs: each cycle pair links two family vectors) solves a few unknowns a
            # round, and each round costs O(nnz): continue one unknown at a time, O(nnz) in all
            if not _peel_worklist(M, x, solved, b, row_of):
                return None
    scale = max(np.max(np.abs(x)), np.max(np.abs(b), initial=0.0))
    if np.max(np.abs(M @ x - b), initial=0.0) > 1e3 * np.finfo(float).eps * scale * max(1, dim):
        return None  # the rows not used for substitution disagree: inconsistent or ill-conditioned
    if not np.any(x):
        return None
    return x


def trace_vector(q):
    """svec(I_q): ``svec(I) @ svec(X) == trace(X)``."""
    iu, ju = np.triu_indices(q)
    return (iu == ju).astype(float)


def _alternating_projections(B, q, floor, iters, accept, start=None, stall=None, rank=None):
    """Alternate between ``span(B) ∩ {trace = 1}`` and ``{X >= floor * I}``.

    ``B`` has orthonormal svec columns.  Returns (X, lambda_min) for the first affine point with
    ``accept(lambda_min)`` true, else the affine point with the largest smallest eigenvalue seen;
    (None, -inf) when every member of span(B) has zero trace.  ``start``: a symmetric matrix to start
    from (its projection onto the affine set) instead of the identity's.  ``stall``: stop early when
    the best smallest eigenvalue has not grown by more than 1e-3 of its size (plus 1e-15) over this
    many iterations: the two sets do not meet and the iterates have settled at their distance.
    ``rank``: project onto the PSD matrices of rank at most this (the largest eigenvalues kept,
    clipped at ``floor``) instead of the whole cone: near a boundary point of that rank these
    projections meet the affine set at an angle and converge several times faster.
    """
    t = trace_vector(q)
    g = B.T @ t  # trace of smat(B a) is g @ a
    gg = float(g @ g)
    if gg == 0:
        return None, -np.inf

    def to_affine(x):
        a = B.T @ x
        return B @ (a - g * ((g @ a - 1.0) / gg))

    # svec / smat with the index arrays computed once (this loop runs thousands of times)
    iu, ju = np.triu_indices(q)
    wts = np.where(iu == ju, 1.0, np.sqrt(2.0))

    def to_mat(x):
        X = np.empty((q, q))
        X[iu, ju] = x / wts
        X[ju, iu] = X[iu, ju]
        return X

    x = to_affine(t / q if start is None else start[iu, ju] * wts)
    best, best_min = None, -np.inf
    history = []
    for it in range(iters):
        X = to_mat(x)
        w, V = np.linalg.eigh(X)
        if accept(w[0]):
            return X, float(w[0])
        if w[0] > best_min:
            best, best_min = X, float(w[0])
        if stall:
            history.append(best_min)
            if it >= stall and best_min - history[it - stall] <= 1e-3 * abs(best_min) + 1e-15:
                break
        if rank is None:
            x_new = to_affine(((V * np.maximum(w, floor)) @ V.T)[iu, ju] * wts)
        else:
            Vr = V[:, q - rank:]
            x_new = to_affine(((Vr * np.maximum(w[q - rank:], floor)) @ Vr.T)[iu, ju] * wts)
        if np.linalg.norm(x_new - x) < 1e-15:
            break
        x = x_new
    return best, best_min

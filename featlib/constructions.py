"""Feedback sets with integer entries, for claims that are checked in exact arithmetic.

Each function returns ``(Y, Z)`` integer arrays (one pair per row) for an integer target, so that
:func:`featlib.verify` can re-check an identification certificate exactly.  The compact teacher
(``teach(phi, "compact")``) maps :func:`compact_canonical` onto any PSD target.

* :func:`compact_canonical` -- the smallest identifying set for a rank-r target, ``max(p, r(r+1)/2)``
  pairs for ``2 <= r < p`` (``p - 1`` for r = 1, ``p(p+1)/2 - 1`` for r = p), against the paper's
  ``r(r+1)/2 + (p - r) - 1``; see :func:`featlib.bounds.constructive_minimum` for the proof.
* :func:`householder_example` -- the first counterexample to the paper's Lemma 11: 6 pairs at
  p = 5, r = 3 built from a rational orthogonal matrix.
* :func:`rank_one_two_sparse` -- p - 1 two-sparse pairs that identify a dense rank-one target,
  against the remark after the paper's Theorem 2.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from . import _checks

__all__ = ["compact_family", "compact_canonical", "householder_example", "rank_one_two_sparse"]


def compact_family(r: int, *, sparse: bool = False):
    """r(r+1)/2 integer vectors of squared norm 25 whose outer products form a basis of Sym(R^{r x r}).

    ``5 e_i`` (i = 1..r) and ``3 e_i + 4 e_j`` (i < j): each off-diagonal entry (i, j) appears in
    exactly one outer product, and the diagonal ones follow, so the matrix of outer products is
    triangular.  Rows of the returned array (a scipy.sparse CSR matrix with ``sparse=True``), the
    ``5 e_i`` first.
    """
    r = _checks.check_positive_int(r, "r")
    iu, ju = np.triu_indices(r, 1)
    R = r + iu.size
    rows = np.r_[np.arange(r), r + np.arange(iu.size), r + np.arange(iu.size)]
    cols = np.r_[np.arange(r), iu, ju]
    vals = np.r_[np.full(r, 5), np.full(iu.size, 3), np.full(iu.size, 4)].astype(np.int64)
    F = sp.csr_matrix((vals, (rows, cols)), shape=(R, r))
    return F if sparse else F.toarray()


def compact_canonical(p: int, r: int, *, sparse: bool = False):
    """The compact construction for ``Phi* = diag(1, ..., 1, 0, ..., 0)`` (rank r), as integer pairs.

    Returns ``(Y, Z, hint)``: pairs as rows (integer arrays, or CSR matrices with ``sparse=True``)
    and the facial-reduction multipliers ``hint`` (a list of ``(indices, values)``) under which the
    pairs' matrices sum to a PSD matrix whose kernel is the range of Phi*.

    For 2 <= r < p, with ``a_1, ..., a_R`` the vectors of :func:`compact_family` (R = r(r+1)/2;
    repeated cyclically when p > R) and ``A = [a_1 ... a_p]`` (r x p):

    * **p cycle pairs** ``((a_k; n_k), (a_{k+1}; 0))`` (indices mod p), where ``n_k`` is column k
      of ``N = [-A_1^T, 5 I]`` (A = [5 I, A_1]), so that ``A N^T = 0``.  Their matrices sum to
      ``0 (+) N N^T``: PSD, with kernel exactly the first r coordinates.  Every PSD solution is
      therefore ``W (+) 0`` (one facial-reduction step by a *combination* of pairs; no single pair
      is semidefinite).
    * **R - p type-2 pairs** ``((a_j; 0), (a_1; 0))`` for j > p (none when p >= R).

    On the face, the pairs say ``a^T W a`` is the same for every family vector a; their outer
    products span Sym(R^r), so the differences span the trace-zero matrices and W = c I.  Total:
    ``max(p, R)`` pairs.  r = 1: the null pairs ``(0, e_j)``, j > 1 (p - 1 pairs).  r = p: only
    type-2 pairs (R - 1).
    """
    p = _checks.check_positive_int(p, "p")
    r = _checks.check_positive_int(r, "r")
    if r > p:
        raise _checks.ArgumentError(f"the rank r = {r} cannot exceed p = {p}.")
    m = p - r
    hint = []
    if r == 1:
        Y = sp.csr_matrix((m, p), dtype=np.int64)
        Z = sp.csr_matrix(sp.eye(p, dtype=np.int64, format="csr")[1:])
    else:
        fam = compact_family(r, sparse=True)
        R = fam.shape[0]
        if m == 0:  # full rank: the family's differences against a_1
            Y = fam[1:]
            Z = fam[np.zeros(R - 1, dtype=np.int64)]
        else:
            A_T = fam[np.arange(p) % R]  # p x r: rows a_k; the first r rows are 5 e_i
            N_T = sp.vstack([-A_T[r:].T, 5 * sp.eye(m, dtype=np.int64)]).tocsr()  # p x m: rows n_k
            zeros_pm = sp.csr_matrix((p, m), dtype=np.int64)
            Y = sp.hstack([A_T, N_T])
            Z = sp.hstack([A_T[(np.arange(p) + 1) % p], zeros_pm])
            if R > p:
                extra = R - p
                Y = sp.vstack([Y, sp.hstack([fam[p:], sp.csr_matrix((extra, m), dtype=np.int64)])])
                Z = sp.vstack([Z, sp.hstack([fam[np.zeros(extra, dtype=np.int64)],
                                             sp.csr_matrix((extra, m), dtype=np.int64)])])
            hint = [(np.arange(p), np.ones(p))]
    Y, Z = sp.csr_matrix(Y, dtype=np.int64), sp.csr_matrix(Z, dtype=np.int64)
    if sparse:
        return Y, Z, hint
    return Y.toarray(), Z.toarray(), hint


def householder_example():
    """The p = 5, r = 3 counterexample to Lemma 11 of the paper, in integers.

    ``Phi* = diag(1, 1, 1, 0, 0)``.  C = H(u) H(w) is a rational orthogonal 5 x 5 matrix
    (Householder reflections with integer vectors u = (1, 1, 1, 1, 1), w = (1, 2, 0, -1, 1)); its
    columns are ``(a_i; n_i)`` with a_i in R^3.  O is the rotation of R^3 by the 3-4-5 angle about
    the third axis.  The pairs are ``((a_i; n_i), (O a_i; 0))``, i = 1..5, and ``(e_3, e_1)``:
    six pairs, against the seven of the paper's bound r(r+1)/2 + (p - r) - 1.  The five pair
    matrices sum to ``diag(0, 0, 0, 1, 1)``.  Everything is scaled by 35 * 5 to integers.

    Returns ``(Y, Z, phi_star, hint)``.
    """
    def householder(v):
        v = np.asarray(v, dtype=np.int64)
        return np.eye(5, dtype=np.int64) * int(v @ v) - 2 * np.outer(v, v), int(v @ v)

    Hu, su = householder([1, 1, 1, 1, 1])
    Hw, sw = householder([1, 2, 0, -1, 1])
    C = Hu @ Hw  # orthogonal times su * sw = 5 * 7 = 35
    scale = su * sw
    O = np.array([[3, -4, 0], [4, 3, 0], [0, 0, 5]], dtype=np.int64)  # 5 x a rotation
    Y, Z = [], []
    for i in range(5):
        a, n = C[:3, i], C[3:, i]
        Y.append(np.r_[5 * a, 5 * n])
        Z.append(np.r_[O @ a, 0, 0])
    Y.append(np.r_[0, 0, 5 * scale, 0, 0])
    Z.append(np.r_[5 * scale, 0, 0, 0, 0])
    phi = np.diag([1, 1, 1, 0, 0]).astype(np.int64)
    return np.array(Y), np.array(Z), phi, [(np.arange(5), np.ones(5))]


def rank_one_two_sparse(v):
    """p - 1 two-sparse pairs that identify ``Phi* = v v^T`` (every v_i non-zero).

    The pairs ``(v_{i+1} e_i - v_i e_{i+1}, 0)``, i = 1..p-1: each u_i is orthogonal to v, so
    ``u_i^T Phi* u_i = 0`` and, for a PSD learner, ``Phi u_i = 0``.  The u_i span v's orthogonal
    complement, so every PSD solution is a multiple of v v^T.  (The remark after the paper's
    Theorem 2 says 2-sparse activations need Omega(p^2) pairs for such a target; that holds only
    for a learner that ignores the PSD constraint.)  Integer v gives integer pairs.
    """
    v = np.asarray(v)
    if v.dtype.kind not in "iuf":  # integers stay integers (exact pairs); anything else must be a real array
        v = _checks.finite_array(v, "v")
    if v.ndim != 1 or v.size < 2:
        raise _checks.ShapeError(f"v must be a vector with at least two entries; got shape {v.shape}.")
    if not np.all(np.isfinite(v.astype(float))) or np.any(v == 0):
        raise _checks.ArgumentError("every entry of v must be finite and non-zero (a zero entry needs a null pair e_i instead).")
    p = v.size
    Y = np.zeros((p - 1, p), dtype=v.dtype)
    for i in range(p - 1):
        Y[i, i], Y[i, i + 1] = v[i + 1], -v[i]
    return Y, np.zeros_like(Y)

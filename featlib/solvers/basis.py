"""Exact solve of feedback stored over a shared basis, at scale (e.g. Theorem 1's pairs for
p = 4096, r = 512: 134,912 pairs).

Each side of a pair is ``B c`` for a sparse coefficient row ``c`` over the columns ("atoms") of
``B`` (p x b).  Nothing here knows which teacher made the pairs; the structure is found:

1. **Facial reduction.**  A pair with an empty side forces ``Phi (B c) = 0`` for its other side
   (PSD); a checked hint ``sum_k alpha_k (c_k c_k^T - d_k d_k^T) >= 0`` (in basis coefficients, as
   ``teach(..., "compact")`` hands over) forces ``Phi B v = 0`` for v in its range.  Let P be the
   orthogonal projector onto the complement of those directions (economic QR).  Atoms that P
   sends to zero drop out of every side.
2. **Atom coordinates.**  Project the atoms that the other pairs use, ``K = P B_J``; pick a basis
   ``A`` among them (pivoted QR).  Every PSD solution is ``Phi = K_A^{+T} G K_A^{+}`` with G
   symmetric PSD (q x q), and a side ``B c`` has quadratic form ``a^T G a`` where a holds its
   coordinates in the atoms A.
3. **Lifting.**  A side that is a multiple of one atom j outside A (Theorem 1's shared reference
   y = v_1 + ... + v_r) has a dense coordinate vector a_j; instead of expanding ``a_j^T G a_j``
   into q(q+1)/2 terms in every row, introduce one unknown ``t_j = a_j^T G a_j`` and one defining
   row.  Every other row then has a handful of non-zeros.
4. **Back substitution** (:func:`featlib.solvers.exact._peel`) with the most frequent unknown set
   to 1; if it determines every unknown and satisfies every row, the solution space is
   one-dimensional.  ``Phi = L L^T`` with ``L = K_A S U sqrt(w)`` (S = (K_A^T K_A)^{-1}, G = U w U^T).

Returns None whenever the structure does not fit (then the caller falls back or reports).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ..certificates import Certificate, FaceStep
from ..linalg import svec_dim, svec_outer_sparse
from ._result import Solution, max_relative_residual, psd_generator
from .nullspace import peel
from .reduce import simple_rationals

__all__ = ["solve_basis"]



def _row_sets(C):
    C = sp.csr_matrix(C)
    C.eliminate_zeros()
    return C, np.diff(C.indptr)


def _independent_columns(K, rank_rtol, limit=None):
    """Indices of a maximal set of linearly independent columns (pivoted QR), at most ``limit``."""
    if K.shape[1] == 0:
        return np.zeros(0, dtype=np.int64)
    _, R, piv = sla.qr(K, mode="economic", pivoting=True)
    d = np.abs(np.diag(R))
    scale = max(float(np.linalg.norm(K, axis=0).max()), np.finfo(float).tiny)
    k = int(np.count_nonzero(d > rank_rtol * scale))
    if limit is not None:
        k = min(k, limit)
    return np.sort(piv[:k])


def _hint_directions(Yc, Zc, idx, val, b):
    """Range of the basis-coefficient combination of a hint, as coefficient vectors (b x k), if it is
    PSD with a clear rank; else None.  Only the rows and columns the combination touches are formed.

    This path takes the hint's face as exact, so only hints that can be: simple rational multipliers
    (:func:`~featlib.solvers.reduce.simple_rationals`; the compact teacher's are all 1) whose combination is positive definite on
    its support, or PSD to 1e-12 of its top with every other eigenvalue above 1e-7 of it.  Any other hint
    is left to the dense path, which tracks how accurate its face is (a float hint PSD to rounding with a
    small gap, taken as exact, made the dense path call a wrong matrix "identified": :func:`~featlib.solvers.reduce.hint_step`)."""
    if not simple_rationals(val):
        return None
    Yh = sp.csr_matrix(Yc[idx]).multiply(np.sqrt(np.abs(val))[:, None]).tocsr()
    Zh = sp.csr_matrix(Zc[idx]).multiply(np.sqrt(np.abs(val))[:, None]).tocsr()
    sign = sp.diags(np.sign(val))
    S = (Yh.T @ sign @ Yh - Zh.T @ sign @ Zh).tocsr()
    S.eliminate_zeros()
    support = np.unique(S.indices)
    if support.size == 0:
        return None
    block = S[support][:, support].toarray()
    block = (block + block.T) / 2
    top = float(np.abs(block).max())
    try:  # positive definite on its support (the common case): one Cholesky factorisation, shifted down
        sla.cholesky(block - 1e-9 * top * np.eye(support.size), lower=True, check_finite=False)
        out = np.zeros((b, support.size))
        out[support, np.arange(support.size)] = 1.0
        return out
    except np.linalg.LinAlgError:
        w, V = np.linalg.eigh(block)
        if not w[-1] > 0 or w[0] < -1e-12 * w[-1]:
            return None
        keep = w > 1e-7 * w[-1]
        if np.any(np.abs(w[~keep]) > 1e-12 * w[-1]):
            return None  # no clear rank
        out = np.zeros((b, int(keep.sum())))
        out[support] = V[:, keep]
        return out


def solve_basis(feedback, *, psd_rtol: float = 1e-8, rank_rtol: float = 1e-10, hints=()):
    B = np.asarray(feedback.basis)
    p, b = B.shape
    Y0, Z0 = feedback._stored_rows()
    Yc, ny = _row_sets(Y0)
    Zc, nz = _row_sets(Z0)
    # 1. facial reduction by pairs with an empty side
    null_rows_y = (ny == 0) & (nz > 0)  # (0, B c): direction B c
    null_rows_z = (nz == 0) & (ny > 0)
    Cnull = sp.vstack([Zc[np.flatnonzero(null_rows_y)], Yc[np.flatnonzero(null_rows_z)]]).tocsr()
    info = {"path": "basis"}
    steps = []
    blocks = []
    if Cnull.shape[0]:
        blocks.append(np.asarray((Cnull @ B.T).T))  # p x m: the non-empty sides of the null pairs
        rows_null = np.r_[np.flatnonzero(null_rows_y), np.flatnonzero(null_rows_z)]
        signs = np.r_[-np.ones(int(null_rows_y.sum())), np.ones(int(null_rows_z.sum()))]
        steps.append(FaceStep(indices=rows_null, values=signs, rank=0, kind="pairs"))
    for idx, val in hints:
        dirs = _hint_directions(Yc, Zc, idx, val, b)
        if dirs is not None:
            blocks.append(B @ dirs)
            steps.append(FaceStep(indices=idx, values=val, rank=0, kind="hint"))
    Qn = np.zeros((p, 0))
    for t, block in enumerate(blocks):  # one step at a time: its rank on the face the earlier ones left
        rest = block - Qn @ (Qn.T @ block)
        Qb, R, _ = sla.qr(rest, mode="economic", pivoting=True)
        d = np.abs(np.diag(R))
        k = int(np.count_nonzero(d > rank_rtol * max(float(np.linalg.norm(block, axis=0).max()), 1e-300)))
        Qn = np.hstack([Qn, Qb[:, :k]])
        s_ = steps[t]
        steps[t] = FaceStep(indices=s_.indices, values=s_.values, rank=k, kind=s_.kind)
    steps = [s_ for s_ in steps if s_.rank > 0]
    q = p - Qn.shape[1]
    info["null_dim"] = Qn.shape[1]
    if q == 0:
        return None
    # 2. atoms used by the other pairs, projected onto the complement
    live = ~(null_rows_y | null_rows_z) & ((ny > 0) | (nz > 0))
    Yl, Zl = Yc[np.flatnonzero(live)], Zc[np.flatnonzero(live)]
    J = np.unique(np.concatenate([Yl.indices, Zl.indices]))
    K = B[:, J] - Qn @ (Qn.T @ B[:, J])
    if Qn.shape[1] and J.size:
        # atoms inside the removed directions contribute nothing: drop them from every side
        cn = np.linalg.norm(K, axis=0)
        dead = cn <= 1e-10 * max(float(np.linalg.norm(B[:, J], axis=0).max()), np.finfo(float).tiny)
        if dead.any():
            drop = np.zeros(b, dtype=bool)
            drop[J[dead]] = True
            Yl, Zl = _drop_atoms(Yl, drop), _drop_atoms(Zl, drop)
            J, K = J[~dead], K[:, ~dead]
    # atoms that occur together with others in one side must be basis atoms; atoms that only
    # occur alone (a shared reference) are the ones to lift, so they are chosen last
    multi = np.zeros(b, dtype=bool)
    for C in (Yl, Zl):
        cnt = np.diff(C.indptr)
        multi[C.indices[np.repeat(cnt, cnt) > 1]] = True
    first = np.flatnonzero(multi[J])
    chosen = _independent_columns(K[:, first], rank_rtol)
    A_local = first[chosen]
    if A_local.size < q:
        rest = np.flatnonzero(~multi[J])
        Qa = np.linalg.qr(K[:, A_local])[0] if A_local.size else np.zeros((p, 0))
        Kr = K[:, rest] - Qa @ (Qa.T @ K[:, rest])
        A_local = np.concatenate([A_local, rest[_independent_columns(Kr, rank_rtol, limit=q - A_local.size)]])
    if A_local.size != q:
        return None  # the pairs do not reach every direction of the complement
    A_local = np.sort(A_local)
    A = J[A_local]
    KA = K[:, A_local]
    pos = -np.ones(b, dtype=np.int64)
    pos[A] = np.arange(q)
    others = np.setdiff1d(J, A)
    # coordinates of the other atoms in the basis K_A
    if others.size:
        Ko = B[:, others] - Qn @ (Qn.T @ B[:, others])
        coords = np.linalg.lstsq(KA, Ko, rcond=None)[0]  # q x len(others)
        lift = -np.ones(b, dtype=np.int64)
        lift[others] = np.arange(others.size)
    else:
        coords = np.zeros((q, 0))
        lift = -np.ones(b, dtype=np.int64)
    Pq = svec_dim(q)
    n_unknowns = Pq + others.size

    # 3. rows over [svec(G), t_j]
    def side_rows(C):
        """(sparse rows over the unknowns of the side's quadratic form) or None if mixed."""
        C = sp.csr_matrix(C)
        cnt = np.diff(C.indptr)
        rows_idx = np.repeat(np.arange(C.shape[0]), cnt)
        in_A = pos[C.indices] >= 0
        bad_rows = np.unique(rows_idx[~in_A])
        # a side may use non-basis atoms only as a single atom
        if bad_rows.size and np.any(cnt[bad_rows] != 1):
            return None
        lifted = np.zeros(C.shape[0], dtype=bool)
        lifted[bad_rows] = True
        CA = sp.csr_matrix((C.data[in_A], pos[C.indices[in_A]], np.r_[0, np.cumsum(np.bincount(rows_idx[in_A], minlength=C.shape[0]))]),
                           shape=(C.shape[0], q))
        part = svec_outer_sparse(CA)
        part = sp.csr_matrix((part.data, part.indices, part.indptr), shape=(C.shape[0], n_unknowns))
        if lifted.any():
            r = np.flatnonzero(lifted)
            s = C.indptr[r]
            extra = sp.csr_matrix((C.data[s] ** 2, (r, Pq + lift[C.indices[s]])), shape=(C.shape[0], n_unknowns))
            part = part + extra
        return part

    Ry, Rz = side_rows(Yl), side_rows(Zl)
    if Ry is None or Rz is None:
        return None
    M = (Ry - Rz).tocsr()
    # defining rows a_j^T G a_j - t_j = 0 (dense in svec(G), one per lifted atom)
    if others.size:
        iu, ju = np.triu_indices(q)
        w = np.where(iu == ju, 1.0, np.sqrt(2.0))
        rows = []
        for j in range(others.size):
            a = coords[:, j]
            vals = a[iu] * a[ju] * w
            row = np.zeros(n_unknowns)
            row[:Pq] = vals
            row[Pq + j] = -1.0
            rows.append(sp.csr_matrix(row))
        M = sp.vstack([M] + rows).tocsr()
    norms = np.sqrt(np.asarray(M.multiply(M).sum(axis=1)).ravel())
    keep = norms > 0
    M = (sp.diags(1.0 / norms[keep]) @ M[keep]).tocsr()
    # 4. back substitution
    x = peel(M, dim=q)
    if x is None:
        return None
    G = np.zeros((q, q))
    iu, ju = np.triu_indices(q)
    g = x[:Pq] / np.where(iu == ju, 1.0, np.sqrt(2.0))
    G[iu, ju] = g
    G[ju, iu] = g
    gen = psd_generator(G, psd_rtol)
    if gen is None:
        return None
    _, ev, U = gen
    S = np.linalg.inv(KA.T @ KA)
    L = KA @ (S @ (U * np.sqrt(ev)))
    L /= np.linalg.norm(L)  # trace(L L^T) = 1
    phi = L @ L.T
    info.update({"peeled": True, "complement_dim": q, "lifted_atoms": int(others.size), "null_space": Qn})
    U = svec_dim(q)
    cert = Certificate(verdict="identified", steps=tuple(steps), face_dim=q, reduced_rank=U - 1, unknowns=U,
                       face=None, method="back substitution")
    return Solution(phi=phi, identified=True, version_space_dim=1,
                    residual=max_relative_residual(feedback, phi, factor=L), method="exact",
                    seconds=0.0, decided=True, info=info, certificate=cert)


def _drop_atoms(C, drop):
    C = sp.csr_matrix(C, copy=True)
    C.data[drop[C.indices]] = 0.0
    C.eliminate_zeros()
    return C

"""The agent that answers triplet comparisons, and containers for the feedback it gives.

* :class:`Agent` holds a hidden PSD feature matrix ``Phi*`` and answers triplet comparisons of
  activations with the squared Mahalanobis distance ``d(a, b) = (a-b)^T Phi* (a-b)``.  Its
  :meth:`Agent.equalize` is the rescaling of Lemma 2, which turns a triplet into an *equality pair*.
* :class:`PairFeedback` holds n equality pairs ``(y_k, z_k)`` with ``y_k^T Phi* y_k = z_k^T Phi* z_k``
  and turns them into the linear constraints ``<Phi, y y^T - z z^T> = 0`` that solvers use.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from . import _checks
from .factors import Factored
from .noise import Exact, as_noise
from .linalg import default_rank_rtol, spectral_norm, svec_dim, svec_outer, svec_outer_difference_sparse

__all__ = ["Agent", "PairFeedback"]


# ============================================================================================
# Agent


def _unnormalised_eigenvectors(L, U, w):
    """``L^T U / sqrt(w)``: the eigenvectors of ``L^T L`` from those of ``L L^T``, unnormalised."""
    return (L.T @ U) / np.sqrt(w)


def _in_place_right_solve(V, Ru, rows=65536):
    """``V <- V Ru^-1`` for an upper triangular ``Ru``, row block by row block (no copy of V)."""
    for start in range(0, V.shape[0], rows):
        block = V[start:start + rows]
        block[...] = sla.solve_triangular(Ru, block.T, trans="T", lower=False, check_finite=False).T


class Agent:
    """An agent that knows a hidden feature matrix ``Phi*`` and answers triplet comparisons.

    Parameters
    ----------
    phi_star : array_like, shape (p, p), or featlib.Factored
        Symmetric positive semi-definite, non-zero.  Checked: finite, square, symmetric to a
        relative ``1e-10``, smallest eigenvalue ``>= -psd_rtol * largest``.  A
        :class:`featlib.Factored` ``(L)`` stands for ``L^T L`` and is never formed: distances are
        ``||L (a - b)||^2`` (an SAE decoder with 65,536 latents answers without a 34 GB matrix);
        ``phi_star`` then forms it on demand and refuses above 2 GiB.
    psd_rtol : float
        Tolerance of the PSD check.
    tie_rtol : float
        Two distances whose difference is at most ``tie_rtol * (d1 + d2)`` count as equal
        (``compare`` answers 0, ``equalize`` uses case (i) of Lemma 2).
    null_rtol : float
        A vector ``v`` with ``v^T Phi* v <= null_rtol * ||Phi*||_2 * ||v||^2`` counts as lying in the
        null space of ``Phi*`` (its distance is zero up to rounding).
    noise : featlib.noise model, optional
        How the agent errs (:mod:`featlib.noise`): ``Flip(eps)`` or ``Logistic(temperature)`` perturb
        the answers of ``compare``; ``LambdaNoise(sigma)`` perturbs the rescaling of ``equalize``.
        Default: the paper's exact oracle.
    seed : int or Generator, optional
        Seed of the noise draws (reproducible runs).

    Notes
    -----
    The sign convention follows the paper's Algorithm 1: ``compare(x, y, z) = sign(d(x, y) - d(x, z))``.
    """

    def __init__(self, phi_star, *, psd_rtol: float = _checks.PSD_RTOL, tie_rtol: float = 1e-12,
                 null_rtol: float = 1e-12, noise=None, seed=None):
        psd_rtol = _checks.check_rtol(psd_rtol, "psd_rtol", zero_ok=True)
        tie_rtol = _checks.check_rtol(tie_rtol, "tie_rtol", zero_ok=True)
        null_rtol = _checks.check_rtol(null_rtol, "null_rtol", zero_ok=True)
        self._factor = None
        if isinstance(phi_star, Factored):
            L = phi_star.L
            self._factor, self._p, self._phi = phi_star, L.shape[1], None
            G = L @ L.T
            self._norm = float(np.linalg.eigvalsh((G + G.T) / 2)[-1])  # spectral norm of L^T L
        else:
            phi, norm = _checks.psd_matrix(phi_star, "phi_star", rtol=psd_rtol, return_norm=True)
            phi.setflags(write=False)
            self._phi, self._p = phi, phi.shape[0]
            self._norm = norm  # spectral norm
        self.tie_rtol = float(tie_rtol)
        self.null_rtol = float(null_rtol)
        self.noise = as_noise(noise)
        self._rng = _checks.as_generator(seed)

    # ------------------------------------------------------------------ basic facts
    @property
    def p(self) -> int:
        """Dimension of the activations (the feature matrix is p x p)."""
        return self._p

    @property
    def phi_star(self) -> np.ndarray:
        """The hidden feature matrix (read-only view), for evaluation only (formed from the factor,
        and refused above 2 GiB, when the agent holds a :class:`featlib.Factored`)."""
        if self._phi is None:
            phi = self._factor.dense()
            phi.setflags(write=False)
            return phi
        return self._phi

    @property
    def spectral_norm(self) -> float:
        """The largest eigenvalue of Phi*."""
        return self._norm

    def diagonal(self) -> np.ndarray:
        """The diagonal of Phi* (squared column norms of the factor, when factored)."""
        if self._factor is not None:
            return np.einsum("ij,ij->j", self._factor.L, self._factor.L)
        return np.diag(self._phi).copy()

    def gram(self, B) -> np.ndarray:
        """``B^T Phi* B`` for a (p, b) array B (through the factor when factored: ``(L B)^T (L B)``)."""
        B = np.asarray(B, dtype=float)
        if self._factor is not None:
            LB = self._factor.L @ B
            G = LB.T @ LB
        else:
            G = B.T @ self._phi @ B
        return (G + G.T) / 2

    def eigh(self):
        """Eigenvalues (ascending, as ``numpy.linalg.eigh``) and orthonormal eigenvectors of Phi*.  For a
        factored agent they come from the d x d Gram matrix ``L L^T`` and a completion of its
        eigenvectors to an orthonormal basis of R^p (eigenvalue 0), without forming Phi*."""
        if self._factor is None:
            return np.linalg.eigh(self._phi)
        L = self._factor.L
        p = L.shape[1]
        _checks.check_allocation(8 * 3 * p * p, f"a {p} x {p} eigenbasis")
        G = L @ L.T
        gam, U = np.linalg.eigh((G + G.T) / 2)
        keep = gam > max(gam[-1], 0.0) * p * np.finfo(float).eps
        gam, U = gam[keep][::-1], U[:, keep][:, ::-1]
        Vr = (L.T @ U) / np.sqrt(gam) if gam.size else np.zeros((p, 0))
        Q, _ = np.linalg.qr(Vr, mode="complete")  # first columns span V_r, the rest complete the basis
        V = np.column_stack([Vr, Q[:, gam.size:]])
        w = np.concatenate([gam, np.zeros(p - gam.size)])
        return w[::-1], V[:, ::-1]

    @property
    def factor(self):
        """The :class:`featlib.Factored` the agent holds, or None for a dense ``Phi*``."""
        return self._factor

    def top_eigh(self, rtol=None):
        """The eigenpairs of ``Phi*`` above ``rtol * largest`` (default ``p * eps``, as
        :func:`featlib.linalg.numerical_rank`), largest first: ``(w, V, r, rtol)`` with ``w`` (r,),
        ``V`` (p x r) orthonormal columns and r the numerical rank.  For a factored agent from the
        d x d Gram matrix ``L L^T`` (``v_i = L^T u_i / sqrt(w_i)``, then re-orthonormalised with
        their signs kept): O(p d^2) time and O(p d) memory, no p x p array."""
        p = self.p
        rtol = default_rank_rtol(p) if rtol is None else _checks.check_rtol(rtol, "rtol")
        if self._factor is None:
            w, V = np.linalg.eigh(self._phi)
        else:
            L = self._factor.L
            G = L @ L.T
            w, V = np.linalg.eigh((G + G.T) / 2)
        w, V = w[::-1], V[:, ::-1]
        r = int(np.count_nonzero(w > rtol * w[0])) if w[0] > 0 else 0
        w, V = w[:r].copy(), V[:, :r]
        if self._factor is not None and r:
            U = V
            V = np.empty((p, r))
            np.matmul(self._factor.L.T, U, out=V)
            V /= np.sqrt(w)
            # re-orthonormalised in place by two rounds of Cholesky QR (V is orthonormal up to rounding, so
            # one round already is, and the second removes what the first's rounding left): the positive
            # diagonal of the Cholesky factor keeps each column's sign, and no second p x r array exists
            # (a LAPACK QR needs two more: at p = 2^20, r = 512, 4 GiB each)
            try:
                for _ in range(2):
                    C = np.linalg.cholesky(V.T @ V)  # lower triangular, V^T V = C C^T
                    _in_place_right_solve(V, C.T)
            except np.linalg.LinAlgError:  # V^T V not numerically PD (not met in 200 near-threshold spectra)
                Q, Rq = np.linalg.qr(_unnormalised_eigenvectors(self._factor.L, U, w))
                V = Q * np.where(np.diag(Rq) < 0, -1.0, 1.0)
        return w, np.ascontiguousarray(V), r, float(rtol)

    def row_quadratics(self, X) -> np.ndarray:
        """``x_k^T Phi* x_k`` for the rows of a dense or scipy.sparse (n, p) matrix."""
        if self._factor is not None:
            XL = X @ self._factor.L.T  # (n, d), also for sparse X
            XL = np.asarray(XL)
            return np.einsum("ij,ij->i", XL, XL)
        return row_quadratics(X, self._phi)

    def __repr__(self) -> str:
        return f"Agent(p={self.p})"

    # ------------------------------------------------------------------ answers
    def _vecs(self, a, name):
        a = _checks.finite_array(a, name)
        if a.ndim == 0 or a.shape[-1] != self.p:
            raise _checks.ShapeError(
                f"{name} must have shape (p,) or (n, p) with p = {self.p}; got shape {a.shape}."
            )
        return a

    def quadratic(self, v) -> np.ndarray | float:
        """``v^T Phi* v`` for one vector (shape (p,)) or a batch (shape (..., p))."""
        v = self._vecs(v, "v")
        if self._factor is not None:
            return self._factor.quadratic(v)
        out = np.einsum("...i,ij,...j->...", v, self._phi, v)
        return float(out) if out.ndim == 0 else out

    def distance(self, a, b):
        """Squared Mahalanobis distance ``(a-b)^T Phi* (a-b)``; batched over leading axes."""
        a = self._vecs(a, "a")
        b = self._vecs(b, "b")
        return self.quadratic(a - b)

    @staticmethod
    def _check_distances(*ds):
        for d in ds:
            if not np.all(np.isfinite(d)):
                raise _checks.NonFiniteError(
                    "a squared distance overflowed to infinity (activations too large for float64 at this "
                    "Phi*): the answer would be a guess. Rescale the activations (answers are invariant to a "
                    "common positive scale).")

    def compare(self, x, y, z, *, rng=None):
        """Triplet answer ``sign(d(x, y) - d(x, z))`` in {+1, 0, -1}; batched over leading axes.

        Differences within ``tie_rtol * (d(x,y) + d(x,z))`` are ties (answer 0).  A noisy agent
        (``noise=``) perturbs the answers, drawing from ``rng`` (default: the agent's own seeded
        generator).
        """
        dy = np.asarray(self.distance(x, y))
        dz = np.asarray(self.distance(x, z))
        self._check_distances(dy, dz)
        diff = dy - dz
        tie = np.abs(diff) <= self.tie_rtol * (dy + dz)
        out = np.where(tie, 0, np.sign(diff)).astype(int)
        if not isinstance(self.noise, Exact):
            total = dy + dz
            gap = np.where(total > 0, diff / np.where(total > 0, total, 1.0), 0.0)
            out = np.asarray(self.noise.answers(out, gap, self._rng if rng is None else _checks.as_generator(rng)),
                             dtype=int)
        return int(out) if out.ndim == 0 else out

    def equalize(self, x, y, z):
        """Lemma 2: turn the triplet (x, y, z) into an equality pair ``(y', z')``.

        With ``u = x - y`` and ``w = x - z``:

        * case (i), ``d(x,y) = d(x,z)`` (within ``tie_rtol``): the pair is ``(u, w)``;
        * case (ii), ``d(x,y) > d(x,z)``: the pair is ``(u, sqrt(1+lam) * w)`` with
          ``1 + lam = d(x,y) / d(x,z)``, the paper's construction;
        * ``d(x,y) < d(x,z)`` (the other label): symmetrically ``(sqrt(1+lam) * u, w)``.

        Then ``y'^T Phi* y' = z'^T Phi* z'``.  If the shorter side lies in the null space of
        ``Phi*`` while the longer does not, no rescaling exists and :class:`FeedbackError` is raised.
        Accepts single vectors (returns two arrays of shape (p,)) or batches of shape (n, p)
        (returns two arrays of shape (n, p)); pass them to :class:`PairFeedback`.
        """
        x = self._vecs(x, "x")
        y = self._vecs(y, "y")
        z = self._vecs(z, "z")
        single = x.ndim == 1 and y.ndim == 1 and z.ndim == 1
        if x.ndim > 2 or y.ndim > 2 or z.ndim > 2:
            raise _checks.ShapeError(f"x, y and z must be vectors (p,) or batches (n, p); got shapes {x.shape}, "
                                     f"{y.shape}, {z.shape}.")
        try:
            u, w = np.atleast_2d(x - y), np.atleast_2d(x - z)
        except ValueError:
            raise _checks.ShapeError(f"x, y and z must have one shape (or broadcast to one); got {x.shape}, {y.shape}, "
                                     f"{z.shape}.") from None
        if u.shape != w.shape:
            raise _checks.ShapeError(f"x, y and z must broadcast to one shape; got {u.shape} and {w.shape}.")
        du, dw = self.quadratic(u), self.quadratic(w)
        du, dw = np.atleast_1d(du), np.atleast_1d(dw)
        self._check_distances(du, dw)
        zero_u = du <= self.null_rtol * self._norm * np.sum(u * u, axis=1)
        zero_w = dw <= self.null_rtol * self._norm * np.sum(w * w, axis=1)
        tie = (np.abs(du - dw) <= self.tie_rtol * (du + dw)) | (zero_u & zero_w)
        bad = ~tie & (zero_u | zero_w)
        if np.any(bad):
            k = int(np.flatnonzero(bad)[0])
            side = "x - z" if zero_w[k] else "x - y"
            other = "x - y" if zero_w[k] else "x - z"
            raise _checks.FeedbackError(
                f"Triplet {k}: {side} lies in the null space of Phi* (distance {min(du[k], dw[k]):.3g}) "
                f"while {other} does not (distance {max(du[k], dw[k]):.3g}); no rescaling "
                f"sqrt(1 + lambda) can make the two distances equal (Lemma 2 needs the shorter side "
                f"to have positive distance). Drop this triplet or use another anchor."
            )
        u_out, w_out = u.copy(), w.copy()
        grow_w = ~tie & (du > dw)
        grow_u = ~tie & (du < dw)
        factor_u = dw[grow_u] / du[grow_u]  # 1 + lambda of Lemma 2 (squared rescaling)
        factor_w = du[grow_w] / dw[grow_w]
        if not isinstance(self.noise, Exact):
            factor_u = self.noise.rescale(factor_u, self._rng)
            factor_w = self.noise.rescale(factor_w, self._rng)
        u_out[grow_u] *= np.sqrt(factor_u)[:, None]
        w_out[grow_w] *= np.sqrt(factor_w)[:, None]
        if single:
            return u_out[0], w_out[0]
        return u_out, w_out


# ============================================================================================
# PairFeedback


def _is_sparse(a) -> bool:
    return sp.issparse(a)


def padded_rows(C, dtype=np.int64):
    """Rows of a CSR matrix as padded ``(indices, values)`` arrays of shape (n, kmax).

    Padding uses index 0 with value 0, so a gather-and-sum over a row ignores it.  This is the
    lean layout of few-sparse activations (2- or 3-sparse pairs at scale) used by the row
    quadratic forms below and by the gradient-descent solver.
    """
    C = sp.csr_matrix(C)
    n = C.shape[0]
    counts = np.diff(C.indptr)
    k = max(int(counts.max()) if n else 0, 1)
    idx = np.zeros((n, k), dtype=dtype)
    val = np.zeros((n, k), dtype=C.dtype if C.dtype.kind == "f" else np.float64)
    pos = np.arange(C.nnz) - np.repeat(C.indptr[:-1], counts)
    rows = np.repeat(np.arange(n), counts)
    idx[rows, pos] = C.indices
    val[rows, pos] = C.data
    return idx, val


def row_sq_norms(C) -> np.ndarray:
    """Squared norm of every row of a CSR matrix: one reduceat over the stored values (C.multiply(C)
    builds a whole new matrix first: 1.3 s against 0.1 s for 8.4M two-sparse rows)."""
    if not C.has_canonical_format:  # duplicates add up before squaring; work on a copy, never in place
        C = C.copy()
        C.sum_duplicates()
    out = np.zeros(C.shape[0])
    starts = C.indptr[:-1]
    filled = np.diff(C.indptr) > 0
    if filled.any():
        out[filled] = np.add.reduceat(C.data * C.data, starts[filled])
    return out


def row_quadratics(C, M, *, chunk_rows: int = 1_000_000) -> np.ndarray:
    """``c_k^T M c_k`` for every row of C (dense array or CSR, shape (n, p)); M is (p, p).

    CSR rows with at most 8 non-zeros (few-sparse activations) cost O(nnz_k^2) each: entries of M
    are gathered, never the n x p product ``C @ M`` (10 million 3-sparse rows against a 4096 x 4096
    M would need 330 GB that way).  Other inputs go through ``C @ M`` in row chunks.
    """
    M = np.asarray(M)
    n = C.shape[0]
    out = np.empty(n)
    if _is_sparse(C):
        C = sp.csr_matrix(C)
        if n and np.diff(C.indptr).max() <= 8:
            flat, p = np.ascontiguousarray(M).ravel(), M.shape[1]
            for start in range(0, n, chunk_rows):
                idx, val = padded_rows(C[start:start + chunk_rows])
                # sum over slot pairs (a, b) of v_a v_b M[i_a, i_b], each a 1-D gather from the flat
                # M (2.5x faster than gathering (rows, k, k) blocks by broadcast fancy indexing)
                rows_p = idx * p
                q = np.zeros(idx.shape[0])
                for a in range(idx.shape[1]):
                    for b in range(idx.shape[1]):
                        q += val[:, a] * val[:, b] * flat[rows_p[:, a] + idx[:, b]]
                out[start:start + chunk_rows] = q
            return out
        rows = max(1, 4_000_000 // max(1, M.shape[0]))
        for start in range(0, n, rows):
            blk = C[start:start + rows]
            out[start:start + rows] = np.asarray(blk.multiply(blk @ M).sum(axis=1)).ravel()
        return out
    C = np.asarray(C)
    rows = max(1, 4_000_000 // max(1, M.shape[0]))
    for start in range(0, n, rows):
        blk = C[start:start + rows]
        out[start:start + rows] = np.einsum("ij,jk,ik->i", blk, M, blk)
    return out


def _rows_scaled(C, factors):
    """A CSR copy of the sparse matrix C with row k multiplied by ``factors[k]``."""
    C = sp.csr_matrix(C, copy=True)
    C.sum_duplicates()
    C.data *= np.repeat(factors, np.diff(C.indptr))
    return C


def _as_rows(a, name):
    """Dense float array (n, m) or CSR matrix (n, m), checked finite; always a private copy."""
    if _is_sparse(a):
        if np.iscomplexobj(a.data):
            raise _checks.ArgumentTypeError(f"{name} is complex; featlib works with real activations.")
        a = sp.csr_matrix(a, dtype=np.float64, copy=True)
        if a.ndim != 2:
            raise _checks.ShapeError(f"{name} must be 2-D; got shape {a.shape}.")
        if not np.all(np.isfinite(a.data)):
            raise _checks.NonFiniteError(f"{name} holds NaN or infinite values; every entry must be finite.")
        return a
    return np.array(_checks.vectors(a, name), copy=True)


def _read_only(a):
    """A read-only view of a stored array (dense) or a copy (sparse: scipy has no read-only flag), so
    that writing into what a property returns cannot change the feedback."""
    if _is_sparse(a):
        return a.copy()
    view = a.view()
    view.setflags(write=False)
    return view


class PairFeedback:
    """n equality pairs ``(y_k, z_k)`` in ``R^p``, meant to satisfy ``y_k^T Phi* y_k = z_k^T Phi* z_k``.

    Three storages, chosen by the constructor arguments:

    * ``"dense"``: ``y`` and ``z`` are NumPy arrays of shape (n, p);
    * ``"sparse"``: ``y`` and ``z`` are scipy.sparse matrices of shape (n, p) (e.g. 2-sparse
      activations: memory proportional to the non-zeros);
    * ``"basis"``: ``basis`` is a (p, b) array whose columns are shared vectors and ``y``, ``z`` are
      coefficient arrays of shape (n, b) (dense or sparse) with ``y_k = basis @ y[k]``.  This is
      how constructive (eigendecomposition) feedback is kept small at scale.

    Indexing: ``fb[3:5]``, ``fb[[0, 2, 7]]`` and boolean masks give a ``PairFeedback`` of the same
    storage; ``fb[k]`` with an integer gives the pair ``(y_k, z_k)`` as two dense vectors.
    Concatenate with ``PairFeedback.concat([...])`` or ``fb1 + fb2``.

    ``meta`` is a free dictionary (the teacher records what it did there); solvers never read it,
    so a feedback set is always solved from its pairs alone.
    """

    def __init__(self, y, z, *, basis=None, meta: dict | None = None):
        if basis is not None:
            basis = _checks.finite_array(basis, "basis")
            if basis.ndim != 2:
                raise _checks.ShapeError(f"basis must have shape (p, b); got shape {basis.shape}.")
            basis.setflags(write=False)
        Y = _as_rows(y, "y")
        Z = _as_rows(z, "z")
        if _is_sparse(Y) != _is_sparse(Z):
            Y, Z = sp.csr_matrix(Y), sp.csr_matrix(Z)
        if Y.shape != Z.shape:
            raise _checks.ShapeError(
                f"y and z must have the same shape (one row per pair); got {Y.shape} and {Z.shape}."
            )
        if Y.shape[1] == 0 or (basis is not None and basis.shape[0] == 0):
            raise _checks.ShapeError(
                f"activations must have at least one coordinate (p >= 1); got y of shape {Y.shape}. For no pairs "
                f"in R^p use PairFeedback.empty(p).")
        if basis is not None and Y.shape[1] != basis.shape[1]:
            raise _checks.ShapeError(
                f"With a basis of shape {basis.shape} (p, b), the coefficient arrays y and z must have "
                f"shape (n, {basis.shape[1]}); got {Y.shape}."
            )
        self._Y, self._Z, self._basis = Y, Z, basis
        if meta is not None and not isinstance(meta, dict):
            raise _checks.ArgumentTypeError(f"meta must be a dict (or None); got {type(meta).__name__}.")
        self.meta = dict(meta or {})

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def empty(cls, p: int) -> "PairFeedback":
        """No pairs, activations in R^p."""
        p = _checks.check_positive_int(p, "p")
        return cls(np.zeros((0, p)), np.zeros((0, p)))

    @classmethod
    def concat(cls, parts) -> "PairFeedback":
        """Concatenate feedback sets with the same p (keeps the storage when they share it)."""
        parts = list(parts)
        if not parts:
            raise _checks.ArgumentError("concat needs at least one PairFeedback.")
        for k, f in enumerate(parts):
            if not isinstance(f, PairFeedback):
                raise _checks.ArgumentTypeError(f"concat expects PairFeedback objects; item {k} is {type(f).__name__}.")
        p = parts[0].p
        for k, f in enumerate(parts):
            if f.p != p:
                raise _checks.ShapeError(f"Cannot concatenate feedback with p = {p} and p = {f.p}.")
        kinds = {f.storage for f in parts}
        if kinds == {"basis"} and all(
            f._basis.shape == parts[0]._basis.shape and np.array_equal(f._basis, parts[0]._basis) for f in parts
        ):
            stack = sp.vstack if any(_is_sparse(f._Y) for f in parts) else np.vstack
            Ys = [sp.csr_matrix(f._Y) if stack is sp.vstack else f._Y for f in parts]
            Zs = [sp.csr_matrix(f._Z) if stack is sp.vstack else f._Z for f in parts]
            return cls(stack(Ys), stack(Zs), basis=parts[0]._basis)
        if kinds <= {"sparse"}:
            return cls(sp.vstack([f._Y for f in parts]).tocsr(), sp.vstack([f._Z for f in parts]).tocsr())
        return cls(np.vstack([f.dense_y() for f in parts]), np.vstack([f.dense_z() for f in parts]))

    def __add__(self, other):
        if not isinstance(other, PairFeedback):
            return NotImplemented
        return PairFeedback.concat([self, other])

    # ------------------------------------------------------------------ basic facts
    @property
    def storage(self) -> str:
        """``"dense"``, ``"sparse"`` or ``"basis"``."""
        if self._basis is not None:
            return "basis"
        return "sparse" if _is_sparse(self._Y) else "dense"

    @property
    def p(self) -> int:
        """Dimension of the activations."""
        return self._basis.shape[0] if self._basis is not None else self._Y.shape[1]

    @property
    def n(self) -> int:
        """Number of pairs."""
        return self._Y.shape[0]

    def __len__(self) -> int:
        return self.n

    @property
    def basis(self):
        """The shared (p, b) basis of ``"basis"`` storage, else None."""
        return self._basis

    @property
    def y_coef(self):
        """Stored left-hand rows: activations (dense/sparse storage) or basis coefficients (read-only
        view, or a copy for sparse storage)."""
        return _read_only(self._Y)

    @property
    def z_coef(self):
        """Stored right-hand rows: activations (dense/sparse storage) or basis coefficients (read-only
        view, or a copy for sparse storage)."""
        return _read_only(self._Z)

    def _normalized(self):
        """The same pairs, each divided by the power of two just above the largest |entry| of its two
        stored rows (and an extreme basis likewise): pairs are homogeneous, so nothing changes but the
        floating-point range, and the division is exact.
        Returns ``(feedback, factors)`` with ``y'_k = y_k / factors[k]`` (up to the basis scale)."""
        def row_max(C):
            if _is_sparse(C):
                C = C.tocsr()  # no copy when it is CSR already
                out = np.zeros(C.shape[0])
                filled = np.diff(C.indptr) > 0
                if filled.any():
                    out[filled] = np.maximum.reduceat(np.abs(C.data), C.indptr[:-1][filled])
                return out
            return np.max(np.abs(C), axis=1, initial=0.0)

        m = np.maximum(row_max(self._Y), row_max(self._Z))
        # a power of two: dividing by it is exact, so the rescaled pairs are the same numbers (and
        # the same rationals) in another binary exponent range
        m = np.where(m > 0, np.ldexp(1.0, np.frexp(np.where(m > 0, m, 1.0))[1]), 1.0)
        if _is_sparse(self._Y):  # the stored values scaled row by row (a product with diags(1/m) costs ~5x more)
            Y, Z = (_rows_scaled(C, 1.0 / m) for C in (self._Y, self._Z))
        else:
            Y, Z = self._Y / m[:, None], self._Z / m[:, None]
        basis = self._basis
        if basis is not None:
            bm = float(np.max(np.abs(basis))) if basis.size else 1.0
            if bm > 0 and not 1e-100 < bm < 1e100:
                basis = basis / np.ldexp(1.0, np.frexp(bm)[1])
        out = PairFeedback.__new__(PairFeedback)
        out._Y, out._Z, out._basis = Y, Z, basis
        out.meta = dict(self.meta)
        return out, m

    def _stored_rows(self):
        """The stored (Y, Z) rows themselves, for featlib's own solvers (never modified there): no
        copy, unlike the public properties."""
        return self._Y, self._Z

    def _materialise(self, C):
        if self._basis is None:
            return _read_only(C)
        return np.asarray(C @ self._basis.T)

    @property
    def y(self):
        """The left activations y_k as rows, shape (n, p): an ndarray, or CSR for sparse storage."""
        return self._materialise(self._Y)

    @property
    def z(self):
        """The right activations z_k as rows, shape (n, p): an ndarray, or CSR for sparse storage."""
        return self._materialise(self._Z)

    def dense_y(self) -> np.ndarray:
        """``y`` as a dense array whatever the storage."""
        Y = self.y
        return Y.toarray() if _is_sparse(Y) else np.asarray(Y)

    def dense_z(self) -> np.ndarray:
        """``z`` as a dense array whatever the storage."""
        Z = self.z
        return Z.toarray() if _is_sparse(Z) else np.asarray(Z)

    def has_integer_entries(self) -> bool:
        """Whether every entry of every activation is an integer (exact teacher output, hand-made pairs):
        :func:`featlib.verify` then checks exactly at larger p."""
        for M in (self.y, self.z):
            data = M.data if _is_sparse(M) else np.asarray(M)
            if not (np.all(np.isfinite(data)) and np.all(data == np.round(data))):
                return False
        return True

    def has_integer_pairs_up_to_scale(self, bits: int = 32) -> bool:
        """Whether every pair is a power of two times a pair of integer vectors with entries below
        ``2**bits``: integer pairs, and integer pairs rescaled by powers of two as ``solve`` rescales
        them (a pair and its multiple are the same constraint).  :func:`featlib.verify` then checks
        exactly at larger p, as for :meth:`has_integer_entries`.  Every finite float is an integer times
        a power of two; what this bounds is the bits a pair spans, from its smallest entry's lowest set
        bit to its largest entry's top bit (generic floats span 53 bits or more)."""
        lows, highs = np.full(self.n, np.inf), np.full(self.n, -np.inf)

        def bits_of(data):  # data = mant 2^expo, 0.5 <= |mant| < 1; the lowest set bit's exponent
            mant, expo = np.frexp(data)
            ints = np.abs(mant * 2.0 ** 53).astype(np.int64)  # exact: 53 significant bits
            return expo - 53 + np.frexp((ints & -ints).astype(float))[1] - 1, expo

        for M in (self.y, self.z):
            if _is_sparse(M):
                C = sp.coo_matrix(M)
                keep = C.data != 0
                if not np.all(np.isfinite(C.data)):
                    return False
                low, high = bits_of(C.data[keep])
                np.minimum.at(lows, C.row[keep], low)
                np.maximum.at(highs, C.row[keep], high)
                continue
            M = np.asarray(M, dtype=float)
            for start in range(0, M.shape[0], 65536):  # row blocks: a few temporaries of the block's size
                D = M[start:start + 65536]
                if not np.all(np.isfinite(D)):
                    return False
                nz = D != 0
                low, high = bits_of(np.where(nz, D, 1.0))
                rows = slice(start, start + D.shape[0])
                lows[rows] = np.minimum(lows[rows], np.where(nz, low, np.inf).min(axis=1, initial=np.inf))
                highs[rows] = np.maximum(highs[rows], np.where(nz, high, -np.inf).max(axis=1, initial=-np.inf))
        span = highs - lows
        return bool(np.all((span <= bits) | ~np.isfinite(span)))

    def __repr__(self) -> str:
        extra = f", b={self._basis.shape[1]}" if self._basis is not None else ""
        who = f", teacher={self.meta['teacher']!r}" if "teacher" in self.meta else ""
        return f"PairFeedback(n={self.n}, p={self.p}, storage={self.storage!r}{extra}{who})"

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, key):
        if isinstance(key, numbers.Integral) and not isinstance(key, bool):
            k = int(key)
            if not -self.n <= k < self.n:
                raise _checks.IndexOutOfRangeError(f"pair index {key} out of range for {self.n} pairs.")
            k %= self.n
            y, z = self[k:k + 1].dense_y()[0], self[k:k + 1].dense_z()[0]
            return y, z
        if isinstance(key, slice):
            idx = np.arange(self.n)[key]
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                if idx.shape != (self.n,):
                    raise _checks.IndexOutOfRangeError(f"boolean mask must have shape ({self.n},); got {idx.shape}.")
                idx = np.flatnonzero(idx)
            elif idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
                if idx.size == 0:
                    idx = idx.astype(int).reshape(0)
                else:
                    raise _checks.IndexOutOfRangeError("index pairs with an int, a slice, a list/array of ints or a boolean mask.")
            if idx.size and (idx.max() >= self.n or idx.min() < -self.n):
                raise _checks.IndexOutOfRangeError(f"pair index out of range for {self.n} pairs.")
        out = PairFeedback.__new__(PairFeedback)
        out._Y, out._Z, out._basis = self._Y[idx], self._Z[idx], self._basis
        out.meta = dict(self.meta)
        return out

    # ------------------------------------------------------------------ algebra
    def _quads(self, M):
        """(y_k^T M y_k, z_k^T M z_k) for a symmetric (p, p) matrix M."""
        if self._basis is not None:
            M = self._basis.T @ M @ self._basis
        return row_quadratics(self._Y, M), row_quadratics(self._Z, M)

    def _factor_quads(self, F, chunk_entries: int = 4_000_000):
        """(||F^T y_k||^2, ||F^T z_k||^2), i.e. the quadratic forms of ``F F^T`` (F = None: the
        identity, i.e. squared norms), in row chunks.

        No p x p (or b x b) product is formed: basis storage goes through ``B^T F``.  This is how
        shared-basis feedback at scale (p = 4096, b = 4097) is evaluated.
        """
        if F is None:  # the identity: squared norms
            G = np.eye(self.p) if self._basis is None else self._basis.T
        else:
            G = F if self._basis is None else self._basis.T @ F
        chunk = max(256, chunk_entries // max(1, G.shape[1]))  # rows per block: ~32 MB of products
        out = []
        for C in (self._Y, self._Z):
            vals = np.empty(C.shape[0])
            for start in range(0, C.shape[0], chunk):
                W = np.asarray(C[start:start + chunk] @ G)
                vals[start:start + chunk] = np.einsum("ij,ij->i", W, W)
            out.append(vals)
        return out[0], out[1]

    def _check_phi(self, phi):
        phi = _checks.square_matrix(phi, "phi")
        if phi.shape[0] != self.p:
            raise _checks.ShapeError(
                f"phi is {phi.shape[0]} x {phi.shape[0]} but the feedback lives in R^{self.p}: expected "
                f"a {self.p} x {self.p} matrix."
            )
        return (phi + phi.T) / 2

    def residuals(self, phi) -> np.ndarray:
        """``y_k^T Phi y_k - z_k^T Phi z_k`` for every pair (shape (n,))."""
        qy, qz = self._quads(self._check_phi(phi))
        return qy - qz

    def relative_residuals(self, phi, *, factor=None, norm: float | None = None) -> np.ndarray:
        """Scale-free residuals ``|y^T Phi y - z^T Phi z| / (||Phi||_2 (||y||^2 + ||z||^2))`` in [0, 1].

        0 for an exact pair; a trivial pair (y = z = 0) counts as 0.  If ``phi = factor @ factor.T``
        is known, pass ``factor`` (p x k): the forms are then computed through it, without p x p
        products (what large shared-basis feedback needs).  ``norm``: ``||phi||_2`` when the caller
        already knows it (saves a Lanczos run at large p).  With ``factor``, ``phi`` may be None.
        """
        if factor is None:
            phi = self._check_phi(phi)
            qy, qz = self._quads(phi)
            norm = spectral_norm(phi) if norm is None else float(norm)
        else:
            factor = np.asarray(factor, dtype=float)
            if factor.ndim != 2 or factor.shape[0] != self.p:
                raise _checks.ShapeError(f"factor must have shape ({self.p}, k); got {factor.shape}.")
            qy, qz = self._factor_quads(factor)
            norm = float(np.linalg.norm(factor, 2)) ** 2 if norm is None else float(norm)
        ny, nz = self.sq_norms()
        scale = norm * (ny + nz)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(scale > 0, np.abs(qy - qz) / np.where(scale > 0, scale, 1.0), 0.0)
        return r

    def sq_norms(self):
        """(||y_k||^2, ||z_k||^2) for every pair."""
        if self._basis is not None:  # through B^T in chunks, never the b x b Gram matrix
            return self._factor_quads(None)
        if self.storage == "sparse":  # O(nnz)
            return tuple(row_sq_norms(C) for C in (self._Y, self._Z))
        return tuple(np.einsum("ij,ij->i", C, C) for C in (self._Y, self._Z))

    def constraints(self) -> sp.csr_matrix:
        """The n x p(p+1)/2 sparse matrix with rows ``svec(y_k y_k^T - z_k z_k^T)``.

        With featlib's isometric ``svec`` (see :mod:`featlib.linalg`), row k times ``svec(Phi)``
        equals ``y_k^T Phi y_k - z_k^T Phi z_k``.
        """
        if self.storage == "sparse":
            A = svec_outer_difference_sparse(self._Y, self._Z)
        else:
            Y, Z = self.dense_y(), self.dense_z()
            A = sp.csr_matrix(svec_outer(Y) - svec_outer(Z))
        A.eliminate_zeros()
        return A.tocsr()

    @property
    def n_unknowns(self) -> int:
        """p(p+1)/2, the dimension of the symmetric matrices the pairs constrain."""
        return svec_dim(self.p)

    # ------------------------------------------------------------------ conversions
    def to_dense(self) -> "PairFeedback":
        """Same pairs, dense storage."""
        return PairFeedback(self.dense_y(), self.dense_z(), meta=self.meta)

    def to_sparse(self) -> "PairFeedback":
        """Same pairs, scipy.sparse storage."""
        Y, Z = self.y, self.z
        return PairFeedback(sp.csr_matrix(Y), sp.csr_matrix(Z), meta=self.meta)

"""Feedback that keeps its null-space pairs as a span: :class:`SpanFeedback` (storage ``"span"``), and
the compact pairs over an implicit complement: :class:`FrameFeedback` (storage ``"frame"``).

Theorem 1's eigen feedback for an SAE decoder with p = 16,384 latents has p - r null-space pairs
``(0, v)``; written out, their vectors alone take p^2 floats (2 GiB).  For a PSD learner all of
them together say one thing: ``Phi v = 0`` for every v orthogonal to the range of ``Phi*``.  A
:class:`SpanFeedback` therefore stores

* a **frame** ``W`` (p x k, linearly independent columns, e.g. the eigenvectors of ``Phi*`` with
  non-zero eigenvalue);
* the **stored pairs** ``(W R a_j, W R c_j)``: coefficient rows ``a_j, c_j`` over a small k x b
  matrix ``R`` (the *reduced basis*; the identity when omitted);
* and, implicitly, the **span pairs** ``(0, v)`` for v running over an orthonormal basis of the
  orthogonal complement of ``span(W)``: p - k pairs, numbered after the stored ones.

Memory is O(p k + n b).  The exact reduction that solvers and :func:`featlib.verify` use
(:meth:`SpanFeedback.reduced`): *a PSD ``Phi`` satisfies every pair if and only if
``range(Phi) ⊆ span(W)`` and ``S = W^T Phi W`` (k x k, PSD) satisfies the stored pairs read in
R^k, ``(R a_j, R c_j)``.*  Proof: for PSD ``Phi``, ``v^T Phi v = 0`` is ``Phi v = 0``, so the span
pairs say exactly that ``Phi`` vanishes on ``span(W)^⊥``; for y = W u, ``y^T Phi y = u^T S u``.
The map ``Phi -> W^T Phi W`` is linear, keeps PSD-ness, and is injective on the matrices with
range in ``span(W)`` (``W^T Phi W = 0`` gives ``Phi^{1/2} W = 0``); when ``W`` has full column rank
it is onto the PSD k x k matrices (``Phi = W G^-1 S G^-1 W^T``, ``G = W^T W``).  The reduced pairs
are the stored numbers themselves (no arithmetic), so the equivalence holds for the floats as
stored, with no rounding.

The compact teacher's pairs for a factored target have no span pairs: each of its p cycle pairs carries
its own null-space vector.  :class:`FrameFeedback` (storage ``"frame"``) keeps them as coefficients over
the frame and over an orthonormal basis U of its complement that is never formed; a facial-reduction
step (the teacher's hint) proves ``range(Phi) ⊆ span(W)`` and leaves the same reduced problem (see its
docstring).

Every :class:`featlib.PairFeedback` operation works on a :class:`SpanFeedback`: those that need the
span pairs one by one (``y``, ``z``, ``basis``, ``constraints``, most indexing) write them out
(an orthonormal complement from a complete QR of ``W``) and refuse, with the size, when that
would take more than :data:`EXPAND_MAX_BYTES`; ``solve`` and ``verify`` use the reduction instead
and never write them out.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

from . import _checks
from .feedback import PairFeedback, _as_rows, _is_sparse, _read_only, row_sq_norms

__all__ = ["SpanFeedback", "FrameFeedback", "EXPAND_MAX_BYTES"]

#: Largest explicit form (the p x p complete basis of the complement, in float64) written out on
#: demand: 1 GiB, i.e. p up to 11,585.
EXPAND_MAX_BYTES = 2**30


#: frames whose largest absolute entry lies in this range are used as they are; others are divided by a power
#: of two (:attr:`SpanFeedback.scaled_frame`)
FRAME_SAFE = (2.0 ** -200, 2.0 ** 200)

#: rows per block where p x k products are formed block by block
ROW_BLOCK = 16384


def _checked_frame(frame):
    """(W read-only, W_s, G = W_s^T W_s) for a frame with linearly independent columns (see
    :class:`SpanFeedback`), W_s the frame divided by a power of two when its entries leave
    :data:`FRAME_SAFE`."""
    W = _checks.finite_array(frame, "frame")
    if W.ndim != 2 or W.shape[1] == 0 or W.shape[1] > W.shape[0]:
        raise _checks.ShapeError(f"frame must have shape (p, k) with 1 <= k <= p; got {W.shape}.")
    top = _checks.max_abs(W)
    # a frame with entries beyond 2^+-200 is divided by a power of two (exact): every internal product
    # then stays far from overflow and underflow (k 2^400 < 2^1023), and the answers are up to scale
    # anyway.  Within that range W itself is used: a copy would cost 4 GiB at p = 2^20, k = 512
    Ws = W / np.ldexp(1.0, np.frexp(top)[1]) if top > 0 and not FRAME_SAFE[0] <= top <= FRAME_SAFE[1] else W
    G = Ws.T @ Ws  # O(p k^2), one matrix product
    G = (G + G.T) / 2
    g = np.linalg.eigvalsh(G)  # squared singular values of W
    if not g[-1] > 0 or not g[0] > 1e-12 * g[-1]:
        raise _checks.ArgumentError(
            f"the frame's columns must be linearly independent (condition number below 1e6); W^T W has "
            f"eigenvalues from {g[0]:.3g} to {g[-1]:.3g}. Pass an orthonormal basis of the span "
            f"(numpy.linalg.qr).")
    G.setflags(write=False)
    Ws.setflags(write=False)
    W.setflags(write=False)
    return W, Ws, G


def _checked_rows(y, z):
    Y, Z = _as_rows(y, "y"), _as_rows(z, "z")
    if _is_sparse(Y) != _is_sparse(Z):
        Y, Z = sp.csr_matrix(Y), sp.csr_matrix(Z)
    if Y.shape != Z.shape:
        raise _checks.ShapeError(f"y and z must have the same shape (one row per pair); got {Y.shape} and {Z.shape}.")
    return Y, Z


def _checked_reduced_basis(basis, k):
    if basis is None:
        return None
    R = _checks.finite_array(basis, "basis")
    if R.ndim != 2 or R.shape[0] != k:
        raise _checks.ShapeError(f"the reduced basis must have shape (k, b) = ({k}, b); got {R.shape}.")
    R.setflags(write=False)
    return R


def _checks_meta(meta):
    if meta is not None and not isinstance(meta, dict):
        raise _checks.ArgumentTypeError(f"meta must be a dict (or None); got {type(meta).__name__}.")


def _lift(Ws, G, S):
    """``W_s G^-1 S^{1/2}`` (see :meth:`SpanFeedback.lift`)."""
    S = _checks.square_matrix(S, "S")
    if S.shape[0] != Ws.shape[1]:
        raise _checks.ShapeError(f"S must be {Ws.shape[1]} x {Ws.shape[1]}; got {S.shape}.")
    w, Q = np.linalg.eigh((S + S.T) / 2)
    keep = w > 0
    half = Q[:, keep] * np.sqrt(w[keep])
    return Ws @ np.linalg.solve(G, half)  # W G_W^-1 S^{1/2} up to a positive scale


def _span_mass(Ws, G, factor):
    """``trace((I - P) F F^T)``, P the orthogonal projector onto span(W) (see :meth:`SpanFeedback.span_mass`)."""
    F = np.asarray(factor, dtype=float)
    if F.ndim != 2 or F.shape[0] != Ws.shape[0]:
        raise _checks.ShapeError(f"factor must have shape ({Ws.shape[0]}, m); got {F.shape}.")
    C = np.linalg.solve(G, Ws.T @ F)
    total = 0.0
    for start in range(0, F.shape[0], ROW_BLOCK):  # (I - P) F block by block
        E = F[start:start + ROW_BLOCK] - Ws[start:start + ROW_BLOCK] @ C
        total += float(np.einsum("ij,ij->", E, E))
    return total


class _Framed(PairFeedback):
    """What :class:`SpanFeedback` and :class:`FrameFeedback` share: a frame W (with its power-of-two scaled
    form and Gram matrix), an optional reduced basis R, and an explicit form (:meth:`expand`, defined by
    each) that every inherited :class:`featlib.PairFeedback` operation reads."""

    def _init_frame(self, frame, basis):
        self._W, self._Ws, self._G = _checked_frame(frame)
        self._R = _checked_reduced_basis(basis, self._W.shape[1])
        self._expanded = None
        self._pairwise = None

    @property
    def p(self) -> int:
        return self._W.shape[0]

    @property
    def frame(self) -> np.ndarray:
        """``W`` (p x k, read-only)."""
        return self._W

    @property
    def reduced_basis(self):
        """``R`` (k x b, read-only), or None for the identity."""
        return self._R

    @property
    def scaled_frame(self) -> np.ndarray:
        """``W_s = W / 2^e`` (read-only): the frame itself when its largest absolute entry lies in
        :data:`FRAME_SAFE` (e = 0), else divided by the power of two that puts that entry in [1/2, 1);
        exact, and what every internal product uses."""
        return self._Ws

    def frame_gram(self) -> np.ndarray:
        """``G = W_s^T W_s`` (k x k, read-only) for the frame scaled by a power of two, ``W_s = W / 2^e``
        (:attr:`scaled_frame`)."""
        return self._G

    def lift(self, S) -> np.ndarray:
        """A factor F (p x m) with ``F F^T`` a positive multiple of ``W G_W^-1 S G_W^-1 W^T``, the PSD
        matrix whose reduction ``W^T Phi W`` is S (``S`` k x k PSD, ``G_W = W^T W``); computed on the
        scaled frame (:meth:`frame_gram`), so only the scale differs."""
        return _lift(self._Ws, self._G, S)

    def span_mass(self, factor) -> float:
        """``trace((I - P) F F^T)`` with P the orthogonal projector onto span(W): the sum of
        ``v^T Phi v`` over the unit vectors v of an orthonormal basis of the complement (``Phi = F F^T``),
        hence a bound on each, computed without the complement."""
        return _span_mass(self._Ws, self._G, factor)

    def _explicit_basis(self) -> np.ndarray:
        """``[W R, U]`` (p x (b + p - k)), U the last p - k columns of a complete QR of W: an orthonormal basis
        of the frame's complement (what :meth:`expand` writes the pairs over; the caller checks the size)."""
        k = self._W.shape[1]
        Q, _ = np.linalg.qr(self._W, mode="complete")
        WR = self._W if self._R is None else self._W @ self._R
        return np.column_stack([WR, Q[:, k:]])

    # what PairFeedback's methods read: the explicit form, so that every inherited operation is right
    _Y = property(lambda self: self.expand()._Y)
    _Z = property(lambda self: self.expand()._Z)
    _basis = property(lambda self: self.expand()._basis)

    def _stored_rows(self):
        return self.expand()._stored_rows()

    @property
    def basis(self):
        """The basis of the explicit form (:meth:`expand`)."""
        return self.expand().basis

    def _normalized(self):
        return self.expand()._normalized()

    def to_basis(self) -> PairFeedback:
        """:meth:`expand`."""
        return self.expand()

    def _indices(self, key) -> np.ndarray:
        """The pair indices (non-negative, in order) that a slice, list/array of ints or boolean mask selects."""
        if isinstance(key, slice):
            return np.arange(self.n)[key]
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (self.n,):
                raise _checks.IndexOutOfRangeError(f"boolean mask must have shape ({self.n},); got {idx.shape}.")
            return np.flatnonzero(idx)
        if idx.size == 0:
            return idx.astype(int).reshape(0)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise _checks.IndexOutOfRangeError("index pairs with an int, a slice, a list/array of ints or a boolean mask.")
        if idx.max() >= self.n or idx.min() < -self.n:
            raise _checks.IndexOutOfRangeError(f"pair index out of range for {self.n} pairs.")
        return idx % self.n

    def _pairwise_normalised(self):
        """The same pairs with each stored pair's two coefficient rows divided by one power of two near
        their largest entry (exact; no meta), when some pair's largest entry is outside ``2^±256``: a
        pair's relative residual does not change when both its vectors are scaled together, and the
        products stay far from overflow (rows of 1e+160) and underflow (1e-160).  Otherwise ``self``."""
        if self._pairwise is None:
            if _entries_within(self.y_coef, self.z_coef, 2.0 ** -255, 2.0 ** 255):
                self._pairwise = self  # every entry in range, so every pair's largest one: no copy needed
                return self
            Y, Z = sp.csr_matrix(self.y_coef, copy=True), sp.csr_matrix(self.z_coef, copy=True)
            e = _pair_exponents(Y, Z)
            if not e.size or np.abs(e).max() <= 256:
                self._pairwise = self
            else:
                Ys, Zs = _scaled_rows(Y, Z, e)
                self._pairwise = type(self)(self._W, Ys, Zs, basis=self._R)
        return self._pairwise


class SpanFeedback(_Framed):
    """Stored pairs in a frame ``W`` plus the pairs ``(0, v)`` for an orthonormal basis v of
    ``span(W)^⊥`` (see the module docstring).

    Parameters
    ----------
    frame : array_like, shape (p, k)
        Finite, with linearly independent columns (checked numerically: a condition number below
        1e6, from the eigenvalues of ``W^T W``), 1 <= k <= p.
    y, z : array_like or scipy.sparse, shape (n0, b)
        Coefficient rows of the stored pairs over ``frame @ basis``.
    basis : array_like, shape (k, b), optional
        The reduced basis R; the identity (b = k) when omitted.
    meta : dict, optional
    """

    def __init__(self, frame, y, z, *, basis=None, meta: dict | None = None):
        self._init_frame(frame, basis)
        Y, Z = _checked_rows(y, z)
        k = self._W.shape[1]
        b = k if self._R is None else self._R.shape[1]
        if Y.shape[1] != b:
            raise _checks.ShapeError(f"the coefficient rows must have {b} columns (one per reduced basis vector); "
                                     f"got shape {Y.shape}.")
        _checks_meta(meta)
        self._Yk, self._Zk = Y, Z
        self.meta = dict(meta or {})

    # ------------------------------------------------------------------ the structure
    @property
    def storage(self) -> str:
        """``"span"``."""
        return "span"

    @property
    def n(self) -> int:
        """Number of pairs: the stored ones plus the p - k span pairs."""
        return self._Yk.shape[0] + self.n_span

    @property
    def n_stored(self) -> int:
        """Number of stored pairs (indices 0 .. n_stored - 1)."""
        return self._Yk.shape[0]

    @property
    def n_span(self) -> int:
        """Number of span pairs ``(0, v)``: p - k (indices n_stored .. n - 1)."""
        return self._W.shape[0] - self._W.shape[1]

    def reduced(self) -> PairFeedback:
        """The stored pairs read in R^k, ``(R a_j, R c_j)``: the problem for ``S = W^T Phi W`` (see the
        module docstring for the exact equivalence).  Pair j of the result is pair j here."""
        Y, Z = self._Yk, self._Zk
        meta = {"reduced_from": "span", **{k: v for k, v in self.meta.items() if k in ("teacher", "rank")}}
        if self._R is None:
            return PairFeedback(Y, Z, meta=meta)
        return PairFeedback(Y, Z, basis=self._R, meta=meta)

    def __repr__(self) -> str:
        who = f", teacher={self.meta['teacher']!r}" if "teacher" in self.meta else ""
        return (f"SpanFeedback(n={self.n}, p={self.p}, storage='span', k={self._W.shape[1]}, "
                f"stored={self.n_stored}, span_pairs={self.n_span}{who})")

    # ------------------------------------------------------------------ the explicit form
    def expand(self) -> PairFeedback:
        """The same pairs in ``"basis"`` storage, the span pairs written out as ``(0, v_i)`` over an
        orthonormal basis of the complement (the last p - k columns of a complete QR of W).  Refused
        (:class:`featlib.ResourceError`) above :data:`EXPAND_MAX_BYTES`."""
        if self._expanded is None:
            p, k = self._W.shape
            need = 8 * p * p
            if need > EXPAND_MAX_BYTES:
                raise _checks.ResourceError(
                    f"writing out the {p - k} span pairs of this SpanFeedback needs a {p} x {p} basis "
                    f"({need / 2**30:.1f} GiB); solve(fb, ...) and verify(fb, ...) work on fb.reduced() without "
                    f"it. Use those, or fb[:fb.n_stored] for the stored pairs alone.")
            basis = self._explicit_basis()
            m, b = self.n_stored, basis.shape[1] - (p - k)
            Yk, Zk = sp.csr_matrix(self._Yk), sp.csr_matrix(self._Zk)
            top = sp.hstack([Yk, sp.csr_matrix((m, p - k))])
            Y = sp.vstack([top, sp.csr_matrix((p - k, b + p - k))]).tocsr()
            Z = sp.vstack([sp.hstack([Zk, sp.csr_matrix((m, p - k))]),
                           sp.hstack([sp.csr_matrix((p - k, b)), sp.eye(p - k, format="csr")])]).tocsr()
            if not _is_sparse(self._Yk):
                Y, Z = Y.toarray(), Z.toarray()
            self._expanded = PairFeedback(Y, Z, basis=basis, meta=self.meta)
        return self._expanded

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, key):
        """As for :class:`PairFeedback`.  A selection of stored pairs only is basis-stored feedback over
        ``W R`` (no complement needed); one that keeps every span pair, in order, at its end is again a
        :class:`SpanFeedback`; any other selection writes the span pairs out (:meth:`expand`)."""
        if isinstance(key, numbers.Integral) and not isinstance(key, bool):
            return super().__getitem__(key)
        idx = self._indices(key)
        m = self.n_stored
        stored = idx[idx < m]
        rest = idx[idx >= m]
        if rest.size == 0:
            WR = self._W if self._R is None else self._W @ self._R
            return PairFeedback(self._Yk[stored], self._Zk[stored], basis=WR, meta=self.meta)
        if (rest.size == self.n_span and np.array_equal(rest, np.arange(m, self.n))
                and np.array_equal(idx[-rest.size:], rest)):
            return SpanFeedback(self._W, self._Yk[stored], self._Zk[stored], basis=self._R, meta=self.meta)
        return self.expand()[idx]

    @property
    def y_coef(self):
        """The stored pairs' coefficient rows over ``W R`` (the span pairs have none)."""
        return _read_only(self._Yk)

    @property
    def z_coef(self):
        """The stored pairs' coefficient rows over ``W R`` (the span pairs have none)."""
        return _read_only(self._Zk)

    # ------------------------------------------------------------------ residuals without the complement
    def relative_residuals(self, phi, *, factor=None, norm: float | None = None) -> np.ndarray:
        """As :meth:`PairFeedback.relative_residuals`.  With ``factor`` the stored pairs are evaluated
        through ``W R`` and each span pair gets the upper bound :meth:`span_mass` (no complement is
        formed); without it the explicit form is used."""
        if factor is None:
            return self.expand().relative_residuals(phi, norm=norm)
        F = np.asarray(factor, dtype=float)
        if F.ndim != 2 or F.shape[0] != self.p:
            raise _checks.ShapeError(f"factor must have shape ({self.p}, k); got {F.shape}.")
        # ||F F^T||_2 from the small Gram matrix (numpy.linalg.norm(F, 2) is an SVD of F: two p x k copies)
        if norm is not None:
            top = float(norm)
        else:
            top = float(np.linalg.eigvalsh(F.T @ F)[-1]) if F.size else 0.0
        # in R^k: y^T F F^T y = ||(W^T F)^T R a||^2 and ||y||^2 = ||C^T R a||^2 with W^T W = C C^T (with
        # the scaled frame both carry the same factor 4^-e, which cancels in the ratio)
        red = self._pairwise_normalised().reduced()  # a pair's ratio is that of its rows over any common scale
        qy, qz = red._factor_quads(self._Ws.T @ F)  # both sides through the same scaled frame
        ny, nz = red._factor_quads(np.linalg.cholesky(self.frame_gram()))
        scale = top * (ny + nz)
        with np.errstate(divide="ignore", invalid="ignore"):
            stored = np.where(scale > 0, np.abs(qy - qz) / np.where(scale > 0, scale, 1.0), 0.0)
        bound = min(self.span_mass(F) / top, 1.0) if top > 0 else 0.0
        return np.concatenate([stored, np.full(self.n_span, bound)])


def _normalised_terms(Y, Z, lam):
    """``(Y', Z', lam')`` with ``lam'_j Y'_j^T Y'_j = 2^-g lam_j Y_j^T Y_j`` (and the same for Z) for one
    integer g: row j of Y and Z divided by ``2^e_j`` (its largest entry in [0.5, 1)), ``lam_j`` multiplied
    by ``4^e_j`` and by ``2^-g`` in exponent arithmetic (never formed as a float before the shift, so it
    neither overflows nor underflows); None when a non-zero multiplier would fall below ``2^-1000``.
    Every step multiplies by a power of two: exact."""
    n = Y.shape[0]
    e = _pair_exponents(Y, Z)
    mant, ex = np.frexp(lam)
    live = mant != 0
    if not np.any(live):
        return Y, Z, np.zeros(n)
    t = ex.astype(np.int64) + 2 * e.astype(np.int64)
    g = int(t[live].max())
    shift = np.where(live, t - g, 0)
    if np.any(shift < -1000):
        return None
    Ys, Zs = _scaled_rows(Y, Z, e)
    return Ys, Zs, np.ldexp(mant, shift)


def _entries_within(Y, Z, low, high):
    """Whether every non-zero |entry| of Y and Z (dense or sparse) lies in [low, high]."""
    for C in (Y, Z):
        a = np.abs(C.data if sp.issparse(C) else np.asarray(C))
        a = a[a != 0]
        if a.size and (a.max() > high or a.min() < low):
            return False
    return True


def _pair_exponents(Y, Z):
    """Per pair j the integer e_j with the largest |entry| of rows j of Y and Z in [2^(e_j - 1), 2^e_j)
    (0 for an empty pair); Y and Z are CSR (duplicates summed in place)."""
    top = np.zeros(Y.shape[0])
    for C in (Y, Z):
        C.sum_duplicates()
        nz = np.flatnonzero(np.diff(C.indptr))
        if nz.size:
            top[nz] = np.maximum(top[nz], np.maximum.reduceat(np.abs(C.data), C.indptr[nz]))
    return np.frexp(top)[1]


def _scaled_rows(Y, Z, e):
    """Copies of the CSR matrices Y and Z with row j divided by ``2^e_j`` (exact)."""
    out = []
    for C in (Y, Z):
        C = C.astype(float, copy=True)
        C.data = np.ldexp(C.data, np.repeat(-e, np.diff(C.indptr)))
        out.append(C)
    return out[0], out[1]


class FrameFeedback(_Framed):
    """Pairs written in a frame ``W`` and an orthonormal basis ``U`` of its complement (storage
    ``"frame"``): the compact teacher's pairs for a factored target, kept in O(p k + nnz) memory.

    Pair j is ``y_j = W R a_j + U u_j``, ``z_j = W R c_j + U w_j``: the stored coefficient rows are
    ``[a_j, u_j]`` and ``[c_j, w_j]`` (b + p - k columns: b over ``W R``, then p - k over ``U``).  ``U``
    is the orthonormal complement that :meth:`expand` writes out (the last p - k columns of a complete
    QR of W); ``solve`` and :func:`featlib.verify` never form it and use only that its columns are an
    orthonormal basis of ``span(W)^⊥``, so their conclusions hold for every such basis.  A teacher's
    pairs are equalities for its target whatever U is, because U's part is in the null space of the
    target (of its rank-r truncation when a rank is imposed).

    **The exact reduction** (what solvers and verify use), with ``hint`` = multipliers ``lam_j`` of one
    facial-reduction step (``meta["face_hint"]``, one entry ``(indices, values)``): let
    ``H = sum_j lam_j (c_yj c_yj^T - c_zj c_zj^T)`` in coefficient space, with blocks ``E`` (b x b,
    frame part), ``X`` (b x (p - k), cross) and ``F`` (complement part).  For a PSD Phi satisfying the
    pairs, ``Psi = B^T Phi B`` (``B = [W R, U]``) is PSD with ``<Psi, H> = 0``.  If ``E = 0``, ``X = 0`` and
    ``F`` is positive definite then ``<U^T Phi U, F> = 0`` gives ``U^T Phi U = 0``, i.e. ``Phi U = 0``:
    ``range(Phi) ⊆ span(W)``, and the pairs become the stored frame parts read in R^k for
    ``S = W^T Phi W`` (:meth:`reduced`), exactly as for :class:`SpanFeedback`.  ``F`` is proved definite
    here by its one-sided terms: when every hinted pair with ``lam_j > 0`` has ``w_j = 0`` and every one
    with ``lam_j < 0`` has ``u_j = 0``, F is a sum of PSD rank-one terms, and those whose complement
    part has one non-zero give ``F ⪰ diag(d)`` (:meth:`hint_blocks`).  With ``E, X`` not zero (rounding
    in the agent's rescaling) the step is inexact: with ``t = trace(U^T Phi U)`` (the part outside the
    frame) and ``s = trace((W R)^T Phi (W R))``, ``min(d) t <= <U^T Phi U, F> = -<Psi_frame, E> - 2 <C, X>
    <= ||E||_F s + 2 ||X||_F sqrt(s t)`` (C the cross block of Psi, ``||C||_F^2 <= s t`` for PSD Psi), so
    ``t <= tau s`` with ``sqrt(tau) = (||X||_F + sqrt(||X||_F^2 + min(d) ||E||_F)) / min(d)``.

    Parameters
    ----------
    frame : array_like, shape (p, k)
        As for :class:`SpanFeedback`.
    y, z : array_like or scipy.sparse, shape (n, b + p - k)
        Coefficient rows over ``[W R, U]``.
    basis : array_like, shape (k, b), optional
        The reduced basis R; the identity (b = k) when omitted.
    meta : dict, optional
        ``meta["face_hint"]``: the facial-reduction multipliers (checked before any use).
    """

    def __init__(self, frame, y, z, *, basis=None, meta: dict | None = None):
        self._init_frame(frame, basis)
        Y, Z = _checked_rows(y, z)
        p, k = self._W.shape
        b = k if self._R is None else self._R.shape[1]
        if Y.shape[1] != b + p - k:
            raise _checks.ShapeError(
                f"the coefficient rows must have b + p - k = {b} + {p - k} columns (over W R, then over the "
                f"complement's basis U); got shape {Y.shape}.")
        _checks_meta(meta)
        self._Yc, self._Zc, self._b = Y, Z, b
        self.meta = dict(meta or {})

    @property
    def storage(self) -> str:
        """``"frame"``."""
        return "frame"

    @property
    def n(self) -> int:
        return self._Yc.shape[0]

    @property
    def n_frame(self) -> int:
        """b: the number of coefficient columns over ``W R`` (the rest are over U)."""
        return self._b

    @property
    def y_coef(self):
        """The coefficient rows ``[a_j, u_j]`` over ``[W R, U]``."""
        return _read_only(self._Yc)

    @property
    def z_coef(self):
        """The coefficient rows ``[c_j, w_j]`` over ``[W R, U]``."""
        return _read_only(self._Zc)

    def reduced(self) -> PairFeedback:
        """The frame parts read in R^k, ``(R a_j, R c_j)``: the problem for ``S = W^T Phi W`` once the face
        step has proved ``range(Phi) ⊆ span(W)`` (class docstring).  Pair j of the result is pair j here."""
        b = self._b
        Y, Z = self._Yc[:, :b], self._Zc[:, :b]
        meta = {"reduced_from": "frame", **{k: v for k, v in self.meta.items() if k in ("teacher", "rank")}}
        if self._R is None:
            return PairFeedback(Y, Z, meta=meta)
        return PairFeedback(Y, Z, basis=self._R, meta=meta)

    def hint_blocks(self, indices, values, *, normalise: bool = False):
        """The blocks of ``H = sum_j lam_j (c_yj c_yj^T - c_zj c_zj^T)`` (class docstring) for the pairs
        ``indices`` with multipliers ``values``, computed in floating point from the stored numbers:
        ``(E, X, d)`` with E dense (b x b), X sparse (b x (p - k)) and d the diagonal of the one-sided,
        single-non-zero terms of F (so ``F ⪰ diag(d)``), or ``(E, X, None)`` when some hinted pair has a
        complement part on the side of the wrong sign (no bound on F from its terms).

        ``normalise=True`` computes the blocks of ``2^-g H`` instead, for one power of two ``2^g``: each
        pair's rows are divided by a power of two near their largest entry and its multiplier multiplied
        by the square of it (exact: the term ``lam_j c c^T`` is unchanged), then every multiplier by the
        common ``2^-g`` that brings the largest to [0.5, 1).  Conditions that are invariant under a
        positive scale (E = 0, X = 0, F definite, the bound tau) then read the same at rows of 1e-160 or
        1e+160 as at rows of one, where the raw products underflow (hiding a non-zero E) or overflow.
        Returns None when the rescaled multipliers would span more than ``2^1000`` (some would underflow:
        not evaluated)."""
        idx = np.asarray(indices)
        lam = np.asarray(values, dtype=float)
        b = self._b
        Y, Z = sp.csr_matrix(self._Yc[idx]), sp.csr_matrix(self._Zc[idx])
        if normalise:
            scaled = _normalised_terms(Y, Z, lam)
            if scaled is None:
                return None
            Y, Z, lam = scaled
        L = sp.diags(lam)
        Ya, Yu, Za, Zu = Y[:, :b], Y[:, b:], Z[:, :b], Z[:, b:]
        E = np.asarray((Ya.T @ L @ Ya - Za.T @ L @ Za).toarray())
        X = sp.csr_matrix(Ya.T @ L @ Yu - Za.T @ L @ Zu)
        X.eliminate_zeros()
        Yu.eliminate_zeros()
        Zu.eliminate_zeros()
        u_rows, w_rows = np.diff(Yu.indptr), np.diff(Zu.indptr)
        if np.any((lam > 0) & (w_rows > 0)) or np.any((lam < 0) & (u_rows > 0)):
            return E, X, None
        d = np.zeros(self.p - self._W.shape[1])
        for C, sign, counts in ((Yu, 1.0, u_rows), (Zu, -1.0, w_rows)):
            single = np.flatnonzero((counts == 1) & (sign * lam > 0))
            if single.size:
                pos = C.indptr[single]
                np.add.at(d, C.indices[pos], np.abs(lam[single]) * C.data[pos] ** 2)
        return E, X, d

    def __repr__(self) -> str:
        who = f", teacher={self.meta['teacher']!r}" if "teacher" in self.meta else ""
        return f"FrameFeedback(n={self.n}, p={self.p}, storage='frame', k={self._W.shape[1]}{who})"

    # ------------------------------------------------------------------ the explicit form
    def expand(self) -> PairFeedback:
        """The same pairs in ``"basis"`` storage over ``[W R, U]``, U the last p - k columns of a complete QR
        of W.  Refused (:class:`featlib.ResourceError`) above :data:`EXPAND_MAX_BYTES`."""
        if self._expanded is None:
            p, k = self._W.shape
            need = 8 * p * p
            if need > EXPAND_MAX_BYTES:
                raise _checks.ResourceError(
                    f"writing out the pairs of this FrameFeedback needs a {p} x {p} basis ({need / 2**30:.1f} GiB); "
                    f"solve(fb, ...) and verify(fb, ...) work without it.")
            self._expanded = PairFeedback(self._Yc, self._Zc, basis=self._explicit_basis(), meta=self.meta)
        return self._expanded

    def __getitem__(self, key):
        """An int gives the pair as two dense vectors (from :meth:`expand`); any other selection is a
        FrameFeedback of those pairs, without ``meta["face_hint"]`` (its indices referred to all pairs)."""
        if isinstance(key, numbers.Integral) and not isinstance(key, bool):
            return self.expand()[key]
        idx = self._indices(key)
        meta = {k: v for k, v in self.meta.items() if k != "face_hint"}
        return FrameFeedback(self._W, self._Yc[idx], self._Zc[idx], basis=self._R, meta=meta)

    # ------------------------------------------------------------------ residuals without the complement
    def _scaled_quads(self, F):
        """(||F^T W R a_j||^2, ||F^T W R c_j||^2, ||u_j||^2, ||w_j||^2) all divided by one power of two,
        ``4^max(e, 0)`` with ``W = 2^e W_s`` (F None: the squared norms of ``W R a_j``): the frame parts are
        computed on the scaled frame, and whichever side is rescaled only gets smaller (underflow, never
        overflow), so the ratios are the true ones."""
        red = self.reduced()
        G = np.linalg.cholesky(self.frame_gram()) if F is None else self._Ws.T @ F  # W_s^T W_s = L L^T
        qy, qz = red._factor_quads(G)
        e = int(np.frexp(_checks.max_abs(self._W))[1]) if self._Ws is not self._W else 0
        b = self._b
        uy, uz = (np.ldexp(row_sq_norms(sp.csr_matrix(C[:, b:])), -2 * max(e, 0)) for C in (self._Yc, self._Zc))
        return np.ldexp(qy, 2 * min(e, 0)), np.ldexp(qz, 2 * min(e, 0)), uy, uz, max(e, 0)

    def sq_norms(self):
        """(||y_j||^2, ||z_j||^2) = ``||W R a_j||^2 + ||u_j||^2`` (U orthonormal and orthogonal to W)."""
        ay, az, uy, uz, e = self._scaled_quads(None)
        return np.ldexp(ay + uy, 2 * e), np.ldexp(az + uz, 2 * e)

    def relative_residuals(self, phi, *, factor=None, norm: float | None = None) -> np.ndarray:
        """As :meth:`PairFeedback.relative_residuals`.  With ``factor`` (columns in span(W) up to rounding,
        as ``solve`` returns them) each pair's forms are evaluated through ``W R`` and the complement's
        contribution is bounded with ``delta^2 = span_mass(F)`` (``||F^T U|| <= delta``):
        ``|y^T F F^T y - ||F^T W R a||^2| <= 2 ||F^T W R a|| delta ||u|| + delta^2 ||u||^2``, added to the
        residual (no complement is formed); without it the explicit form is used."""
        if factor is None:
            return self.expand().relative_residuals(phi, norm=norm)
        F = np.asarray(factor, dtype=float)
        if F.ndim != 2 or F.shape[0] != self.p:
            raise _checks.ShapeError(f"factor must have shape ({self.p}, k); got {F.shape}.")
        top = float(norm) if norm is not None else (float(np.linalg.eigvalsh(F.T @ F)[-1]) if F.size else 0.0)
        fb = self._pairwise_normalised()  # each pair's ratio is that of its rows over any common scale
        qy, qz, uy, uz, _ = fb._scaled_quads(F)  # all divided by one power of two: the ratio is unchanged
        ay, az = fb._scaled_quads(None)[:2]
        delta = float(np.sqrt(max(self.span_mass(F), 0.0)))
        slack = (2 * np.sqrt(qy * uy) * delta + delta ** 2 * uy) + (2 * np.sqrt(qz * uz) * delta + delta ** 2 * uz)
        scale = top * (ay + uy + az + uz)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(scale > 0, (np.abs(qy - qz) + slack) / np.where(scale > 0, scale, 1.0), 0.0)
        return np.minimum(r, 1.0)

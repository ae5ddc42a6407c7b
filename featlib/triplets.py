"""Sign-only triplet feedback: what raters, LLM judges and similarity scores actually give.

:class:`TripletFeedback` holds activations ``x`` (anchors), ``y``, ``z`` of shape (n, p) and answers
in {-1, 0, +1} meaning ``sign(d(x, y) - d(x, z))`` with ``d(a, b) = (a - b)^T Phi* (a - b)``, exactly
as :meth:`featlib.Agent.compare` returns them (so +1 means *z* is the closer one).  Unlike an
equality pair it carries no rescaling: one bit (or a tie) per triplet.

:func:`sample_triplets` draws them from an agent (dense Gaussian activations, as in Theorem 3, or
s-sparse ones, as in Theorem 4), possibly noisy (:mod:`featlib.noise`).  Conversions to and from the
formats of metric-learn (``(n, 3, p)`` arrays: anchor, closer, farther) and cblearn (an object
matrix and index triplets ``(i, j, k)``: "i is closer to j than to k") let the same data go to their
learners.

What sign answers can and cannot do (proved here, one line each): the set of PSD matrices that
agree with finitely many strict answers is open, so it is never a single ray, and no finite set of
sign-only triplets *identifies* ``Phi*``; every answer is also unchanged by any positive rescaling,
so at best the learner recovers ``Phi*`` approximately, up to scale.  How well, against n, is
measured in the chapter "Noisy and ordinal feedback".
"""

from __future__ import annotations

import numpy as np

from . import _checks
from .feedback import Agent

__all__ = ["TripletFeedback", "sample_triplets"]


def balanced_differences(tf):
    """``(x - y, x - z)`` with each triplet's two differences divided by one power of two (their
    largest entry's): every answer ``sign(d(x,y) - d(x,z))`` is unchanged, and no square overflows or
    underflows, whatever the scale of the activations."""
    u, w = tf.differences()
    m = np.maximum(np.max(np.abs(u), axis=1, initial=0.0), np.max(np.abs(w), axis=1, initial=0.0))
    m = np.where(m > 0, np.ldexp(1.0, np.frexp(np.where(m > 0, m, 1.0))[1]), 1.0)
    return u / m[:, None], w / m[:, None]


class TripletFeedback:
    """Sign-only answers to triplets ``(x, y, z)``: ``answers = sign(d(x, y) - d(x, z))``.

    Parameters
    ----------
    x, y, z : array_like, shape (n, p)
        Anchors and the two compared activations (finite, real).
    answers : array_like, shape (n,)
        Integers in {-1, 0, +1}: +1 when ``d(x, y) > d(x, z)`` (z is closer), -1 when y is closer,
        0 for a tie.
    meta : dict, optional
        Free-form provenance (the sampler records what it did).
    """

    def __init__(self, x, y, z, answers, *, meta: dict | None = None):
        arrays = []
        for name, a in (("x", x), ("y", y), ("z", z)):
            a = _checks.finite_array(a, name)
            if a.ndim == 1:
                a = a[None, :]
            if a.ndim != 2 or a.shape[1] == 0:
                raise _checks.ShapeError(f"{name} must have shape (n, p) with p >= 1; got {a.shape}.")
            arrays.append(a)
        if not arrays[0].shape == arrays[1].shape == arrays[2].shape:
            raise _checks.ShapeError(f"x, y and z must have the same shape (n, p); got "
                                     f"{arrays[0].shape}, {arrays[1].shape} and {arrays[2].shape}.")
        ans = np.asarray(answers)
        if ans.ndim == 0:
            ans = ans[None]
        if ans.dtype == object or ans.dtype.kind not in "iuf" or ans.shape != (arrays[0].shape[0],):
            raise _checks.ShapeError(f"answers must be {arrays[0].shape[0]} numbers in {{-1, 0, +1}}; got "
                                     f"{ans.dtype} of shape {ans.shape}.")
        if not np.all(np.isin(ans, (-1, 0, 1))):
            bad = ans[~np.isin(ans, (-1, 0, 1))][:3]
            raise _checks.FeedbackError(f"answers must be -1, 0 or +1 (sign(d(x,y) - d(x,z))); got {bad.tolist()}.")
        if meta is not None and not isinstance(meta, dict):
            raise _checks.ArgumentTypeError(f"meta must be a dict (or None); got {type(meta).__name__}.")
        self._x, self._y, self._z = arrays
        self._answers = ans.astype(np.int8)
        for a in (self._x, self._y, self._z, self._answers):
            a.setflags(write=False)
        self.meta = dict(meta or {})

    # -- read-only views ----------------------------------------------------------------------
    x = property(lambda self: self._x, doc="Anchors, shape (n, p) (read-only).")
    y = property(lambda self: self._y, doc="First compared activations, shape (n, p) (read-only).")
    z = property(lambda self: self._z, doc="Second compared activations, shape (n, p) (read-only).")
    answers = property(lambda self: self._answers, doc="Answers in {-1, 0, +1}, shape (n,) (read-only).")

    @property
    def n(self) -> int:
        return self._x.shape[0]

    @property
    def p(self) -> int:
        return self._x.shape[1]

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"TripletFeedback(n={self.n}, p={self.p}, ties={int(np.sum(self._answers == 0))})"

    def differences(self):
        """``u = x - y`` and ``w = x - z`` (the answer is ``sign(u^T Phi u - w^T Phi w)``)."""
        return self._x - self._y, self._x - self._z

    def __getitem__(self, key) -> "TripletFeedback":
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not -self.n <= key < self.n:
                raise _checks.IndexOutOfRangeError(f"triplet index {key} out of range for {self.n} triplets.")
            key = [int(key)]
        elif not isinstance(key, slice):
            idx = np.asarray(key)
            if idx.dtype == bool:
                if idx.shape != (self.n,):
                    raise _checks.IndexOutOfRangeError(f"boolean mask must have shape ({self.n},); got {idx.shape}.")
            elif idx.dtype.kind not in "iu" or idx.ndim != 1:
                raise _checks.ArgumentTypeError("index triplets with an int, a slice, an integer array or a boolean mask.")
            elif idx.size and (idx.min() < -self.n or idx.max() >= self.n):
                raise _checks.IndexOutOfRangeError(f"triplet index out of range for {self.n} triplets.")
            key = idx
        return TripletFeedback(self._x[key], self._y[key], self._z[key], self._answers[key], meta=self.meta)

    @staticmethod
    def concat(parts) -> "TripletFeedback":
        parts = list(parts)
        if not parts:
            raise _checks.ArgumentError("concat needs at least one TripletFeedback.")
        for k, f in enumerate(parts):
            if not isinstance(f, TripletFeedback):
                raise _checks.ArgumentTypeError(f"concat expects TripletFeedback objects; item {k} is {type(f).__name__}.")
            if f.p != parts[0].p:
                raise _checks.ShapeError(f"cannot concatenate triplets of dimension {parts[0].p} and {f.p}.")
        return TripletFeedback(*(np.concatenate([getattr(f, a) for f in parts]) for a in ("x", "y", "z", "answers")))

    def agreement(self, phi) -> float:
        """Fraction of the answers that ``phi`` reproduces (ties count when phi's gap is zero to
        rounding)."""
        phi = _checks.square_matrix(phi, "phi")
        if phi.shape[0] != self.p:
            raise _checks.ShapeError(f"phi must be {self.p} x {self.p}; got {phi.shape}.")
        u, w = balanced_differences(self)
        top = float(np.max(np.abs(phi)))
        if top > 0:  # a power of two: exact, and no square overflows or underflows at 1e+-160
            phi = phi / np.ldexp(1.0, int(np.frexp(top)[1]))
        du, dw = np.einsum("ij,jk,ik->i", u, phi, u), np.einsum("ij,jk,ik->i", w, phi, w)
        pred = np.where(np.abs(du - dw) <= 1e-12 * (du + dw), 0, np.sign(du - dw))
        return float(np.mean(pred == self._answers)) if self.n else 1.0

    # -- other libraries' formats -------------------------------------------------------------
    def to_metric_learn(self) -> np.ndarray:
        """metric-learn's triplets, shape (m, 3, p): (anchor, closer, farther); ties are dropped."""
        keep = self._answers != 0
        closer = np.where((self._answers[keep] < 0)[:, None], self._y[keep], self._z[keep])
        farther = np.where((self._answers[keep] < 0)[:, None], self._z[keep], self._y[keep])
        return np.stack([self._x[keep], closer, farther], axis=1)

    @classmethod
    def from_metric_learn(cls, triplets) -> "TripletFeedback":
        """From metric-learn's (m, 3, p) array (anchor, closer, farther): answers are all -1."""
        t = _checks.finite_array(triplets, "triplets")
        if t.ndim != 3 or t.shape[1] != 3:
            raise _checks.ShapeError(f"metric-learn triplets have shape (m, 3, p); got {t.shape}.")
        return cls(t[:, 0], t[:, 1], t[:, 2], -np.ones(t.shape[0], dtype=int), meta={"source": "metric-learn"})

    def to_cblearn(self):
        """cblearn's format: ``(X, triplets)`` with the distinct activations as rows of X and index
        triplets (i, j, k) meaning "object i is closer to object j than to k" (its "list-order"
        query-response format); ties are dropped."""
        keep = self._answers != 0
        a = self._answers[keep]
        x, y, z = self._x[keep], self._y[keep], self._z[keep]
        X, inverse = np.unique(np.concatenate([x, y, z]), axis=0, return_inverse=True)
        inverse = inverse.ravel()
        m = x.shape[0]
        ix, iy, iz = inverse[:m], inverse[m:2 * m], inverse[2 * m:]
        closer = np.where(a < 0, iy, iz)
        farther = np.where(a < 0, iz, iy)
        return X, np.stack([ix, closer, farther], axis=1)

    @classmethod
    def from_cblearn(cls, X, triplets) -> "TripletFeedback":
        """From cblearn's list-order triplets (i, j, k): "i is closer to j than to k"."""
        X = _checks.finite_array(X, "X")
        t = np.asarray(triplets)
        if X.ndim != 2 or t.ndim != 2 or t.shape[1] != 3 or t.dtype.kind not in "iu":
            raise _checks.ShapeError(f"expected objects X (m, p) and integer triplets (n, 3); got {X.shape} and "
                                     f"{t.dtype} {t.shape}.")
        if t.size and (t.min() < 0 or t.max() >= X.shape[0]):
            raise _checks.IndexOutOfRangeError(f"triplet indices must lie in [0, {X.shape[0]}).")
        return cls(X[t[:, 0]], X[t[:, 1]], X[t[:, 2]], -np.ones(t.shape[0], dtype=int), meta={"source": "cblearn"})


def sample_triplets(agent, n: int, *, sparsity: int | None = None, seed=None) -> TripletFeedback:
    """``n`` random triplets answered by ``agent`` (with its noise model, if any).

    ``sparsity=None``: x, y, z are independent standard Gaussian activations (Theorem 3's
    distribution); ``sparsity=s``: each has exactly ``s`` non-zero coordinates, Gaussian, at random
    positions (Theorem 4's setting with a fixed number of non-zeros).
    """
    if not isinstance(agent, Agent):
        agent = Agent(agent)
    n = _checks.check_positive_int(n, "n", minimum=0)
    p = agent.p
    _checks.check_allocation(4 * 8 * n * p, f"{n:,} triplets in dimension {p}")
    rng = _checks.as_generator(seed)
    if sparsity is not None:
        s = _checks.check_positive_int(sparsity, "sparsity")
        if s > p:
            raise _checks.ArgumentError(f"sparsity s = {s} cannot exceed p = {p}.")
    draws = []
    for _ in range(3):
        a = rng.standard_normal((n, p))
        if sparsity is not None:
            keep = np.argsort(rng.random((n, p)), axis=1)[:, :sparsity]
            mask = np.zeros((n, p), dtype=bool)
            np.put_along_axis(mask, keep, True, axis=1)
            a = np.where(mask, a, 0.0)
        draws.append(a)
    x, y, z = draws
    answers = agent.compare(x, y, z, rng=rng) if n else np.zeros(0, dtype=int)
    return TripletFeedback(x, y, z, answers, meta={"teacher": "triplets", "sparsity": sparsity,
                                                   "noise": repr(agent.noise)})

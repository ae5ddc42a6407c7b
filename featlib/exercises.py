"""Checkers for the book's exercises: run a student's function against the reference on small
problems and say *what* differs (shape, symmetry, PSD, count, equality, identification).

Each ``check_*`` prints a short confirmation and returns True when the function is right, and
raises :class:`ExerciseCheckError` (an ``AssertionError``) with a specific message otherwise, so a
failing check stops a notebook cell and an autograder alike.
"""

from __future__ import annotations

import numpy as np

from . import bounds
from .datasets import random_feature_matrix
from .experiments import linear_solution_dim
from .feedback import PairFeedback
from .linalg import psd_project, svec_dim, svec_outer
from .solvers import solve
from .teachers import teach
from .feedback import Agent

__all__ = [
    "ExerciseCheckError",
    "check_equalize",
    "check_svec",
    "check_linear_solution_dim",
    "check_eigen_pairs",
    "check_sparse_basis",
    "check_sampled_pairs",
    "check_log_ps",
    "check_psd_projection",
    "check_triplet_answers",
    "check_phase_prediction",
    "check_residual_bound",
    "run_check",
]


class ExerciseCheckError(AssertionError):
    """The student's answer differs from the reference; the message says how."""


def _fail(name, msg):
    raise ExerciseCheckError(f"{name}: {msg}")


def _ok(name, msg):
    print(f"\u2714 {name}: {msg}")
    return True


def _none(name, value, what):
    if value is None:
        _fail(name, f"your function returned None; replace the `...` with your code and return {what}.")


def _two(name, out, what):
    """A returned pair: a tuple or list of two, or an array whose first axis has length 2."""
    _none(name, out, what)
    if isinstance(out, (tuple, list)) and len(out) == 2:
        return out
    if isinstance(out, np.ndarray) and out.ndim >= 2 and out.shape[0] == 2:
        return out[0], out[1]
    _fail(name, f"should return {what}; got {type(out).__name__}"
          + (f" of shape {np.shape(out)}" if isinstance(out, np.ndarray) else "") + ".")


def _array(name, value, shape, what):
    _none(name, value, what)
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        _fail(name, f"{what} should be a numeric array, got {type(value).__name__}.")
    if arr.shape != shape:
        _fail(name, f"{what} has shape {arr.shape}; expected {shape}.")
    if not np.all(np.isfinite(arr)):
        _fail(name, f"{what} contains NaN or infinite values.")
    return arr


def _pair_output(name, out, n, p):
    out = _two(name, out, "a tuple (Y, Z) of two arrays")
    Y = _array(name, out[0], (n, p) if n is not None else np.shape(out[0]), "Y")
    Z = _array(name, out[1], Y.shape, "Z")
    if Y.ndim != 2 or Y.shape[1] != p:
        _fail(name, f"Y should have shape (n, {p}); got {Y.shape}.")
    return Y, Z


def _check_equalities(name, phi, Y, Z, tol=1e-8):
    fb = PairFeedback(Y, Z)
    r = fb.relative_residuals(phi)
    if r.size and r.max() > tol:
        k = int(np.argmax(r))
        qy, qz = float(Y[k] @ phi @ Y[k]), float(Z[k] @ phi @ Z[k])
        _fail(name, f"pair {k} is not an equality: y^T Phi y = {qy:.6g} but z^T Phi z = {qz:.6g}.")
    return fb


# ------------------------------------------------------------------ chapter 1: Lemma 2


def check_equalize(fn, *, trials: int = 6, seed: int = 0):
    """``fn(phi, x, y, z) -> (y2, z2)``: Lemma 2's pair for one triplet (vectors of shape (p,))."""
    name = "equalize"
    rng = np.random.default_rng(seed)
    for t in range(trials):
        p = 2 + t % 3
        phi = random_feature_matrix(p, p, seed=rng)
        x, y, z = rng.standard_normal((3, p))
        out = _two(name, fn(phi, x, y, z), "a tuple (y2, z2) of two vectors")
        y2 = _array(name, out[0], (p,), "y2")
        z2 = _array(name, out[1], (p,), "z2")
        qy, qz = y2 @ phi @ y2, z2 @ phi @ z2
        if abs(qy - qz) > 1e-8 * (qy + qz):
            _fail(name, f"not an equality on trial {t}: y2^T Phi y2 = {qy:.6g}, z2^T Phi z2 = {qz:.6g}.")
        # any rescaling of the two sides that makes them equal is a valid pair (the paper rescales the
        # shorter side; scaling the longer one down is the same equation up to a positive factor)
        for got, side, label in ((y2, x - y, "y2"), (z2, x - z, "z2")):
            if not np.any(got):
                _fail(name, f"{label} on trial {t} is zero; it must be a non-zero multiple of {'x - y' if label == 'y2' else 'x - z'}.")
            resid = got - (got @ side) / (side @ side) * side
            if np.linalg.norm(resid) > 1e-8 * np.linalg.norm(got):
                _fail(name, f"{label} on trial {t} is {np.round(got, 4)}, which is not a multiple of "
                      f"{'x - y' if label == 'y2' else 'x - z'} = {np.round(side, 4)} (Lemma 2 only rescales the two "
                      f"differences).")
    return _ok(name, f"correct on {trials} random triplets")


def check_svec(fn, *, seed: int = 0):
    """``fn(S) -> v``: an isometric vectorisation of symmetric matrices (<svec A, svec B> = tr(AB))."""
    name = "svec"
    rng = np.random.default_rng(seed)
    for p in (1, 2, 4):
        A = rng.standard_normal((p, p)); A = A + A.T
        B = rng.standard_normal((p, p)); B = B + B.T
        a = _array(name, fn(A), (svec_dim(p),), f"svec of a {p}x{p} matrix")
        b = _array(name, fn(B), (svec_dim(p),), f"svec of a {p}x{p} matrix")
        if not np.isclose(a @ b, np.trace(A @ B)):
            diag_only = np.isclose(np.sum(np.diag(A) * np.diag(B)), a @ b) and p > 1
            _fail(name, f"not an isometry for p = {p}: <svec A, svec B> = {a @ b:.6g} but trace(AB) = "
                  f"{np.trace(A @ B):.6g}" + (" (the off-diagonal entries do not contribute)" if diag_only else
                  " (how often does each off-diagonal entry appear in trace(AB)?)") + ".")
        if not np.allclose(fn(2 * A - B), 2 * a - b):
            _fail(name, "not linear: svec(2A - B) != 2 svec(A) - svec(B).")
    return _ok(name, "an isometry of Sym(p) for p = 1, 2, 4")


# ------------------------------------------------------------------ chapter 2: Theorem 1


def check_linear_solution_dim(fn):
    """``fn(feedback) -> int``: dimension of the symmetric solutions of the pair equalities, no PSD."""
    name = "linear_solution_dim"
    cases = [(6, 3, "eigen"), (5, 5, "sparse"), (4, 1, "eigen"), (10, 8, "eigen")]
    for p, r, teacher in cases:
        fb = teach(random_feature_matrix(p, r, seed=p + r), teacher)
        want = linear_solution_dim(fb)
        got = fn(fb)
        if isinstance(got, (float, np.floating)) and float(got).is_integer():
            got = int(got)  # 18.0 is 18
        if not isinstance(got, (int, np.integer)) or isinstance(got, bool):
            _fail(name, f"should return a whole number; got {got!r} ({type(got).__name__}).")
        if int(got) != want:
            _fail(name, f"for {teacher} feedback with p = {p}, r = {r} you return {got}; expected {want} "
                  f"= p(p+1)/2 - rank of the constraint matrix.")
    return _ok(name, "matches p(p+1)/2 - rank on 4 feedback sets (18 for p = 10, r = 8)")


def check_eigen_pairs(fn):
    """``fn(phi) -> (Y, Z)``: Theorem 1's pairs (kernel pairs against a reference, null pairs)."""
    name = "eigen_pairs"
    for p, r in ((5, 2), (6, 6), (7, 3), (4, 1)):
        phi = random_feature_matrix(p, r, seed=10 * p + r)
        Y, Z = _pair_output(name, fn(phi), None, p)
        want = bounds.constructive_low_rank(p, r)
        if Y.shape[0] != want:
            _fail(name, f"wrong count for p = {p}, r = {r}: {Y.shape[0]} pairs; Theorem 1's construction "
                  f"gives r(r+1)/2 + (p - r) = {want}.")
        fb = _check_equalities(name, phi, Y, Z)
        sol = solve(fb, "exact", warn=False)
        if not sol.identified:
            _fail(name, f"the pairs for p = {p}, r = {r} do not identify Phi* (version space of dimension "
                  f"{sol.version_space_dim}); are the null-space pairs (0, v) there?")
    return _ok(name, "right counts, exact equalities, and they identify Phi* for 4 targets")


# ------------------------------------------------------------------ chapter 3: Theorem 2


def check_sparse_basis(fn):
    """``fn(p) -> B``: the p(p+1)/2 activations of Eq. 4 as rows (at most 2-sparse, spanning Sym(p))."""
    name = "sparse_basis"
    for p in (1, 3, 6):
        P = svec_dim(p)
        B = np.asarray(fn(p), dtype=float)
        if B.ndim != 2 or B.shape[1] != p:
            _fail(name, f"for p = {p} return an array of shape (p(p+1)/2, p) = ({P}, {p}); got {B.shape}.")
        if B.shape[0] != P:
            _fail(name, f"wrong count for p = {p}: {B.shape[0]} activations; Eq. 4 has p(p+1)/2 = {P}.")
        nnz = np.count_nonzero(B, axis=1)
        if nnz.max() > 2:
            _fail(name, f"row {int(np.argmax(nnz))} has {nnz.max()} non-zeros; the activations must be 2-sparse.")
        rank = np.linalg.matrix_rank(svec_outer(B))
        if rank != P:
            _fail(name, f"the matrices b b^T span only {rank} of the {P} dimensions of Sym({p}).")
    return _ok(name, "2-sparse, p(p+1)/2 of them, and b b^T spans Sym(p) for p = 1, 3, 6")


# ------------------------------------------------------------------ chapter 4: Theorem 3


def check_sampled_pairs(fn, *, seed: int = 0):
    """``fn(phi, X, ref) -> (Y, Z)``: one pair per row x of X, rescaled against the reference ``ref``."""
    name = "sampled_pairs"
    rng = np.random.default_rng(seed)
    for p, r in ((3, 3), (5, 2)):
        phi = random_feature_matrix(p, r, seed=rng)
        X = rng.standard_normal((svec_dim(p) - 1, p))
        ref = rng.standard_normal(p)
        Y, Z = _pair_output(name, fn(phi, X, ref), X.shape[0], p)
        fb = _check_equalities(name, phi, Y, Z)
        if not solve(fb, "exact", warn=False).identified:
            _fail(name, f"p(p+1)/2 - 1 = {X.shape[0]} Gaussian pairs should identify Phi* almost surely; "
                  f"yours do not (does every pair use its own sample and the shared reference?).")
    return _ok(name, "valid equalities that identify Phi* from p(p+1)/2 - 1 samples")


# ------------------------------------------------------------------ chapter 5: Theorem 4


def check_log_ps(fn):
    """``fn(p, s, mu) -> float``: log of the paper's p_s (Eq. 28)."""
    name = "log_ps"
    for p, s, mu in ((10, 4, 0.8), (10, 4, 0.6), (6, 3, 0.5), (8, 2, 0.9)):
        want = bounds.sparse_sampled_log_ps(p, s, mu)
        got = float(fn(p, s, mu))
        if not np.isfinite(got):
            _fail(name, f"returned {got} for (p, s, mu) = {(p, s, mu)}; compute in log space (lgamma) to avoid "
                  f"overflow of P!.")
        if not np.isclose(got, want, rtol=1e-9, atol=1e-9):
            _fail(name, f"for (p, s, mu) = {(p, s, mu)} you return {got:.6g}; expected {want:.6g}.")
    return _ok(name, "matches Eq. 28 (and so the paper's 117 and 54)")


# ------------------------------------------------------------------ chapter 6: solvers


def check_psd_projection(fn, *, seed: int = 0):
    """``fn(S) -> P``: the nearest PSD matrix to a symmetric S in Frobenius norm."""
    name = "psd_projection"
    rng = np.random.default_rng(seed)
    for p in (2, 5):
        S = rng.standard_normal((p, p)); S = S + S.T
        P = _array(name, fn(S), (p, p), "the projection")
        if not np.allclose(P, P.T, atol=1e-10):
            _fail(name, "the result is not symmetric.")
        w = np.linalg.eigvalsh(P)
        if w[0] < -1e-10:
            _fail(name, f"the result is not PSD: smallest eigenvalue {w[0]:.3g}.")
        best = np.linalg.norm(psd_project(S) - S)
        if np.linalg.norm(P - S) > best * (1 + 1e-8) + 1e-12:
            _fail(name, f"PSD but not the nearest: distance {np.linalg.norm(P - S):.6g} > {best:.6g} "
                  f"(clip the negative eigenvalues at zero).")
    return _ok(name, "symmetric, PSD and nearest in Frobenius norm")


def check_triplet_answers(fn, *, seed: int = 0):
    """``fn(phi, X, Y, Z) -> answers``: the sign answers ``sign(d(x, y) - d(x, z))`` of n triplets
    (rows of X, Y, Z, shape (n, p)), as integers in {-1, 0, +1}."""
    name = "triplet_answers"
    rng = np.random.default_rng(seed)
    for p in (2, 3, 5):
        phi = random_feature_matrix(p, 2, seed=rng)
        X, Y, Z = rng.standard_normal((3, 40, p))
        Z[:5] = Y[:5]  # five ties
        got = _array(name, fn(phi, X, Y, Z), (40,), "answers")
        want = Agent(phi).compare(X, Y, Z)
        if not np.all(np.isin(got, (-1, 0, 1))):
            _fail(name, f"answers must be -1, 0 or +1; got values {np.unique(got)[:5]}.")
        if np.array_equal(got, -want):
            _fail(name, "every answer has the opposite sign: the convention is sign(d(x, y) - d(x, z)), so +1 means "
                        "z is the closer one.")
        wrong = np.flatnonzero(got != want)
        if wrong.size:
            k = int(wrong[0])
            _fail(name, f"{wrong.size} of 40 answers differ at p = {p}; triplet {k}: expected {int(want[k])}, got "
                        f"{got[k]:g}" + (" (a tie: y and z are the same point)" if k < 5 else "") + ".")
    return _ok(name, "correct on 120 triplets, ties included")


def check_phase_prediction(fn):
    """``fn(p, r) -> float``: the conic prediction of the phase transition, delta - 1 with delta the
    statistical dimension of the PSD cone's tangent cone at a rank-r point
    (:func:`featlib.bounds.convex_phase_transition`)."""
    name = "check_phase_prediction"
    for p in range(1, 13):
        for r in range(1, p + 1):
            want = bounds.convex_phase_transition(p, r)["n_star"]
            got = fn(p, r)
            _none(name, got, "a number (the predicted 50 % point)")
            try:
                got = float(got)
            except (TypeError, ValueError):
                _fail(name, f"p = {p}, r = {r}: expected a number; got {type(got).__name__}.")
            if abs(got - want) <= 1e-9 * max(1.0, abs(want)):
                continue
            m = p - r
            hints = {
                float(bounds.low_rank_dof(p, r)): "that is the counting bound dof, below which no learner "
                                                  "identifies; the convex threshold also pays for the PSD cone "
                                                  "of the kernel",
                want + 1: "the ray of Phi* is already in the tangent cone's subspace: subtract 1 for the scale",
                r * (r + 1) / 2 + r * m + m * (m + 1) / 2 - 1: "the kernel block is a PSD cone of size p - r: its "
                                                               "statistical dimension is m(m+1)/4, half its "
                                                               "dimension (self-duality), not m(m+1)/2",
            }
            hint = next((h for v, h in hints.items() if abs(got - v) <= 1e-9 * max(1.0, abs(v))), "")
            _fail(name, f"p = {p}, r = {r}: expected {want:g}; got {got:g}" + (f" ({hint})." if hint else "."))
    return _ok(name, "delta - 1 for every 1 <= r <= p <= 12.")


def check_residual_bound(fn, *, seed: int = 0):
    """``fn(t_lo, t_hi) -> float``: the largest relative residual ``|t*^2 - t^2| / (t*^2 + t^2)`` of the
    pair at the midpoint t of a bracket ``t_lo <= t* <= t_hi`` (:func:`featlib.active.bisect_pair`)."""
    name = "check_residual_bound"
    rng = np.random.default_rng(seed)
    cases = [(1.0, 2.0), (1.0, 1.0), (0.5, 0.75), (3.0, 3.0 + 1e-6)]
    cases += [tuple(sorted(np.exp(rng.uniform(-5, 5, 2)))) for _ in range(20)]
    for lo, hi in cases:
        t = (lo + hi) / 2
        want = max(abs(s * s - t * t) / (s * s + t * t) for s in (lo, hi))
        got = fn(float(lo), float(hi))
        _none(name, got, "a number (the largest relative residual)")
        try:
            got = float(got)
        except (TypeError, ValueError):
            _fail(name, f"bracket ({lo:g}, {hi:g}): expected a number; got {type(got).__name__}.")
        if not abs(got - want) <= 1e-9 * max(want, 1e-300) + 1e-300:
            if abs(got - abs(hi - t) / (hi + t)) <= 1e-9 * want:
                _fail(name, f"bracket ({lo:g}, {hi:g}): you compared t and t* themselves; the pair's residual "
                            f"involves the squares, |t*^2 - t^2| / (t*^2 + t^2).")
            if got < want:
                _fail(name, f"bracket ({lo:g}, {hi:g}): {got:.6g} is below the worst case {want:.6g}: some t* in the "
                            f"bracket has a larger residual (look at both ends).")
            _fail(name, f"bracket ({lo:g}, {hi:g}): expected {want:.6g}; got {got:.6g}.")
    return _ok(name, f"the worst-case residual for {len(cases)} brackets.")


def run_check(checker: str, fn, **options) -> None:
    """Run the checker ``checker`` (a name such as ``"check_equalize"``) on ``fn`` without printing:
    None when the answer is right, :class:`ExerciseCheckError` with the reason otherwise.  The
    student editions' autograder tests (``book/assignments.py``) are calls of this."""
    import contextlib
    import io

    if checker not in __all__ or not checker.startswith("check_"):
        raise ValueError(f"unknown checker {checker!r}; the checkers are "
                         f"{', '.join(n for n in __all__ if n.startswith('check_'))}.")
    if not callable(fn):
        raise ExerciseCheckError(f"{checker}: expected a function, got {type(fn).__name__} ({fn!r}).")
    with contextlib.redirect_stdout(io.StringIO()):
        globals()[checker](fn, **options)

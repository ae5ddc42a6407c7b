"""What backs a solver's answer, and an independent check of it.

A :class:`Certificate` says *why* a feedback set does or does not identify its feature matrix:

* **identified**: a facial-reduction sequence (:class:`FaceStep`: multipliers ``alpha`` over the
  pairs such that ``S = sum_k alpha_k (y_k y_k^T - z_k z_k^T)``, restricted to the current face,
  is PSD of a given rank; every PSD solution then lives on ``ker S``), and on the final face the
  reduced linear system has rank ``unknowns - 1``: the solutions form one line, and its PSD
  generator is the answer.
* **not identified**: two PSD matrices ``F W1 F^T`` and ``F W2 F^T`` (W1, W2 positive definite on
  the face F) that satisfy every pair and are not multiples of each other.

:func:`verify` re-checks a certificate from the pairs alone, without calling any solver.  For small
problems it works in **exact rational arithmetic** (Python's :class:`fractions.Fraction`): every
float is a rational number, the multipliers and witnesses are rounded to nearby rationals and, if
needed, projected exactly onto the constraints they must satisfy (rounding and projection as in
Peyrl and Parrilo's rational sum-of-squares certificates); PSD-ness is decided by an exact
LDL^T and ranks by exact elimination.  An exact success is a proof for the pairs as stored.  When
the stored pairs are not exactly consistent (floating-point data from an irrational construction)
or the problem is larger than :data:`EXACT_MAX_UNKNOWNS`, the same checks run in floating point
with the tolerances reported in :attr:`Verification.checks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from . import _checks

__all__ = ["FaceStep", "Certificate", "Verification", "verify", "CertificateError", "EXACT_MAX_UNKNOWNS",
           "FLOAT_MAX_P", "FLOAT_MAX_UNKNOWNS"]

#: exact verification up to this many unknowns p(p+1)/2 (p = 12: 78)
EXACT_MAX_UNKNOWNS = 78
#: floating-point verification: dense p x p eigendecompositions up to this p, and a dense SVD of the
#: constraint rows on the final face up to this many unknowns f(f+1)/2
FLOAT_MAX_P = 2048
FLOAT_MAX_UNKNOWNS = 5000


class CertificateError(_checks.FeatlibError, ValueError):
    """A certificate that cannot be checked as given (wrong shapes, too large, wrong feedback)."""


@dataclass(frozen=True)
class FaceStep:
    """One facial-reduction step: ``S = sum_k values[k] * (y y^T - z z^T)[indices[k]]``, restricted
    to the current face, is PSD of rank ``rank``; the next face is its kernel.

    ``kind``: where the multipliers came from ("pairs": single semidefinite pairs; "combination":
    the auxiliary SDP; "hint": handed over with the feedback and checked).
    """

    indices: np.ndarray
    values: np.ndarray
    rank: int
    kind: str = "pairs"

    def __repr__(self) -> str:
        return f"FaceStep(kind={self.kind!r}, pairs={len(self.indices)}, rank={self.rank})"


@dataclass
class Certificate:
    """Why a feedback set does, or does not, identify its feature matrix (see the module docstring).

    Attributes
    ----------
    verdict : {"identified", "not identified"}
    steps : tuple of FaceStep
        The facial-reduction sequence, in order (empty when no reduction was needed).
    face_dim : int
        Dimension f of the final face.
    reduced_rank : int
        Rank of the pair equalities restricted to the final face; ``unknowns - 1`` for an
        identified answer.
    unknowns : int
        ``f (f + 1) / 2``.
    face : ndarray (p, f) or None
        An orthonormal basis of the final face (as the solver computed it; :func:`verify`
        recomputes the face from the steps and does not trust this).
    witnesses : tuple of two (f, f) arrays, or None
        For "not identified": W1, W2 positive definite with ``face @ W @ face.T`` satisfying every
        pair, linearly independent.
    method : str
        How the solver found ``reduced_rank`` ("svd", "back substitution").
    """

    verdict: str
    steps: tuple = ()
    face_dim: int = 0
    reduced_rank: int = 0
    unknowns: int = 0
    face: np.ndarray | None = None
    witnesses: tuple | None = None
    method: str = "svd"

    def __repr__(self) -> str:
        kinds = ", ".join(f"{s.kind}:{s.rank}" for s in self.steps) or "none"
        return (f"Certificate(verdict={self.verdict!r}, steps=[{kinds}], face_dim={self.face_dim}, "
                f"reduced_rank={self.reduced_rank}/{self.unknowns}, method={self.method!r})")


@dataclass
class Verification:
    """The outcome of :func:`verify`: ``bool(v)`` is ``v.valid``."""

    valid: bool
    verdict: str
    exact: bool
    checks: list = field(default_factory=list)
    reason: str = ""

    def __bool__(self) -> bool:
        return self.valid

    def __repr__(self) -> str:
        how = "exact rational arithmetic" if self.exact else "floating point"
        state = "valid" if self.valid else f"INVALID ({self.reason})"
        return f"Verification({self.verdict!r}: {state}, {how}, {len(self.checks)} checks)"


# ============================================================================================
# exact rational linear algebra (small sizes only)


def _q(a):
    """A numpy object array of Fractions (exact: every float is a dyadic rational)."""
    a = np.asarray(a)
    out = np.empty(a.shape, dtype=object)
    flat = out.reshape(-1)
    for i, x in enumerate(a.reshape(-1)):
        flat[i] = Fraction(int(x)) if isinstance(x, (int, np.integer)) else Fraction(float(x))
    return out


def _rationalize(a, max_den=10**6):
    a = np.asarray(a, dtype=float)
    out = np.empty(a.shape, dtype=object)
    flat = out.reshape(-1)
    for i, x in enumerate(a.reshape(-1)):
        flat[i] = Fraction(float(x)).limit_denominator(max_den)
    return out


def _rref(M):
    """Reduced row echelon form of a Fraction matrix: (R, pivot columns)."""
    R = [list(row) for row in M]
    n = len(R)
    m = len(R[0]) if n else 0
    pivots = []
    row = 0
    for col in range(m):
        piv = next((i for i in range(row, n) if R[i][col] != 0), None)
        if piv is None:
            continue
        R[row], R[piv] = R[piv], R[row]
        inv = 1 / R[row][col]
        R[row] = [x * inv for x in R[row]]
        for i in range(n):
            if i != row and R[i][col] != 0:
                f = R[i][col]
                Ri, Rr = R[i], R[row]
                R[i] = [a - f * b for a, b in zip(Ri, Rr)]
        pivots.append(col)
        row += 1
        if row == n:
            break
    return R, pivots


def _rank(M) -> int:
    M = np.asarray(M, dtype=object)
    if M.size == 0:
        return 0
    return len(_rref(M.tolist())[1])


def _null_space(M, ncols=None):
    """Exact basis (columns, object array) of the null space of a Fraction matrix."""
    M = np.asarray(M, dtype=object)
    m = M.shape[1] if M.ndim == 2 and M.shape[0] else (ncols if ncols is not None else M.shape[-1])
    if M.size == 0:
        eye = np.empty((m, m), dtype=object)
        for i in range(m):
            for j in range(m):
                eye[i, j] = Fraction(int(i == j))
        return eye
    R, piv = _rref(M.tolist())
    free = [c for c in range(m) if c not in piv]
    out = np.empty((m, len(free)), dtype=object)
    out[...] = Fraction(0)
    for k, f in enumerate(free):
        out[f, k] = Fraction(1)
        for r, c in enumerate(piv):
            out[c, k] = -R[r][f]
    return out


def _psd_rank(S):
    """(is PSD, rank) of a symmetric Fraction matrix by exact symmetric elimination (LDL^T)."""
    A = [list(row) for row in np.asarray(S, dtype=object)]
    n = len(A)
    rank = 0
    alive = list(range(n))
    while alive:
        # a positive pivot on the diagonal; a zero diagonal entry needs a zero row (else indefinite)
        diag = [(A[i][i], i) for i in alive]
        if any(d < 0 for d, _ in diag):
            return False, rank
        pos = [i for d, i in diag if d > 0]
        for d, i in diag:
            if d == 0 and any(A[i][j] != 0 for j in alive):
                return False, rank
        if not pos:
            return True, rank
        k = pos[0]
        piv = A[k][k]
        alive.remove(k)
        rowk = A[k]
        for i in alive:
            f = rowk[i] / piv
            if f != 0:
                Ai = A[i]
                for j in alive:
                    Ai[j] -= f * rowk[j]
        rank += 1
    return True, rank


def _svec_rows_exact(Ys, Zs):
    """Rows of <W, y y^T - z z^T> over the upper-triangle entries of W (Fractions)."""
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


def _smat_exact(w, f):
    iu, ju = np.triu_indices(f)
    W = np.empty((f, f), dtype=object)
    W[...] = Fraction(0)
    for k, (i, j) in enumerate(zip(iu, ju)):
        W[i, j] = w[k]
        W[j, i] = w[k]
    return W


def _solve_exact(A, b):
    """One exact solution x of A x = b (Fractions), or None if inconsistent."""
    A = np.asarray(A, dtype=object)
    aug = np.concatenate([A, np.asarray(b, dtype=object).reshape(-1, 1)], axis=1)
    R, piv = _rref(aug.tolist())
    m = A.shape[1]
    if m in piv:
        return None
    x = np.empty(m, dtype=object)
    x[...] = Fraction(0)
    for r, c in enumerate(piv):
        x[c] = R[r][m]
    return x


def _project_exact(x, N):
    """The point of span(N) (exact columns) nearest to x (exact), by the normal equations."""
    G = N.T.dot(N)
    c = _solve_exact(G, N.T.dot(x))
    return N.dot(c)


# ============================================================================================
# verification


def _pairs(feedback):
    from .feedback import PairFeedback

    if not isinstance(feedback, PairFeedback):
        raise _checks.ArgumentTypeError(f"verify expects a PairFeedback; got {type(feedback).__name__}.")
    return feedback


def _as_certificate(certificate):
    cert = getattr(certificate, "certificate", certificate)
    if not isinstance(cert, Certificate):
        raise CertificateError(
            f"verify expects a Certificate or a Solution that carries one; got {type(certificate).__name__}"
            + (" whose certificate is None (the solver could not decide, or this method gives none)"
               if hasattr(certificate, "certificate") else "") + "."
        )
    if cert.verdict not in ("identified", "not identified"):
        raise CertificateError(f"unknown verdict {cert.verdict!r}; expected 'identified' or 'not identified'.")
    return cert


def verify(feedback, certificate, *, exact: bool | None = None, tol: float = 1e-8) -> Verification:
    """Re-check a certificate against the pairs, independently of the solver that produced it.

    Parameters
    ----------
    feedback : PairFeedback
    certificate : Certificate or Solution
    exact : bool or None
        True: exact rational arithmetic only (the verification fails if the certificate cannot be
        made exact). False: floating point only. None (default): exact when the problem has at
        most :data:`EXACT_MAX_UNKNOWNS` unknowns, falling back to floating point (and saying so in
        ``checks``) when the stored pairs are not exactly consistent.
    tol : float
        Floating-point tolerance: PSD means smallest eigenvalue >= -tol x largest; a rank counts
        singular values above ``tol`` x largest (and needs a gap of 1e3 to the next); a residual is
        relative to ``||Phi|| (||y||^2 + ||z||^2)``.

    Returns
    -------
    Verification
        ``valid``, ``verdict``, ``exact`` (whether the check was exact), ``checks`` (what was
        checked, with margins) and ``reason`` (why not, when invalid).
    """
    fb = _pairs(feedback)
    cert = _as_certificate(certificate)
    p = fb.p
    tol = _checks.check_rtol(tol, "tol")
    if exact is not None:
        exact = _checks.check_bool(exact, "exact")
    for s in cert.steps:
        if len(s.indices) and (np.max(s.indices) >= len(fb) or np.min(s.indices) < 0):
            raise CertificateError(
                f"a facial-reduction step refers to pair {int(np.max(s.indices))}, but the feedback has "
                f"{len(fb)} pairs: this certificate belongs to other feedback.")
    P = p * (p + 1) // 2
    U = cert.face_dim * (cert.face_dim + 1) // 2
    if p > FLOAT_MAX_P or U > FLOAT_MAX_UNKNOWNS:
        raise CertificateError(
            f"verify re-checks by dense linear algebra up to p = {FLOAT_MAX_P} and {FLOAT_MAX_UNKNOWNS} unknowns "
            f"on the final face; this feedback has p = {p} and a face of dimension {cert.face_dim} ({U} "
            f"unknowns). Verify a subproblem, or rely on the solver's own checks (Solution.info).")
    # the same pairs divided by powers of two (exact, also in rational arithmetic) so that no square
    # overflows or underflows; a combination of the pair matrices scales by the squares
    fb, factors = fb._normalized()
    import dataclasses

    cert = dataclasses.replace(cert, steps=tuple(
        dataclasses.replace(s, values=np.asarray(s.values, dtype=float) * factors[np.asarray(s.indices, dtype=np.int64)] ** 2)
        for s in cert.steps))
    Y, Z = fb.dense_y(), fb.dense_z()
    notes = []
    if exact is not False and P <= EXACT_MAX_UNKNOWNS:
        out = _verify_exact(Y, Z, cert)
        if out.valid or exact is True:
            return out
        notes.append(f"exact check not possible ({out.reason}); checked in floating point instead")
    elif exact is True:
        raise CertificateError(
            f"exact verification is limited to {EXACT_MAX_UNKNOWNS} unknowns p(p+1)/2; this feedback has {P}.")
    out = _verify_float(Y, Z, cert, tol)
    out.checks = notes + out.checks
    return out


def _fail(verdict, exact, checks, reason):
    return Verification(False, verdict, exact, checks, reason)


# --------------------------------------------------------------------------------------------
# floating point


def _verify_float(Y, Z, cert, tol):
    p = Y.shape[1]
    checks = []
    F = np.eye(p)
    scale = np.einsum("ij,ij->i", Y, Y) + np.einsum("ij,ij->i", Z, Z)
    for t, step in enumerate(cert.steps):
        Yr, Zr = Y[step.indices] @ F, Z[step.indices] @ F
        S = (Yr * step.values[:, None]).T @ Yr - (Zr * step.values[:, None]).T @ Zr
        S = (S + S.T) / 2
        w, V = np.linalg.eigh(S)
        top = float(w[-1])
        if not top > 0:
            return _fail(cert.verdict, False, checks, f"step {t + 1}: the combination is not non-zero PSD")
        if w[0] < -tol * top:
            return _fail(cert.verdict, False, checks,
                         f"step {t + 1}: the combination has eigenvalue {w[0]:.3g} < -{tol:g} x {top:.3g} (not PSD)")
        k = step.rank
        f = len(w)
        if not 0 < k <= f:
            return _fail(cert.verdict, False, checks, f"step {t + 1}: claimed rank {k} is not in 1..{f}")
        kept, removed = w[: f - k], w[f - k:]
        bound = float(np.abs(kept).max()) if kept.size else 0.0
        if removed.min() <= tol * top or (kept.size and removed.min() < 1e3 * max(bound, tol * top)):
            return _fail(cert.verdict, False, checks,
                         f"step {t + 1}: rank {k} is not clear (eigenvalues {removed.min():.3g} and {bound:.3g})")
        checks.append(f"step {t + 1} ({step.kind}, {len(step.indices)} pairs): combination PSD "
                      f"(smallest eigenvalue {w[0] / top:.1e} of the largest), rank {k} with gap "
                      f"{(removed.min() / bound if bound > 0 else np.inf):.1e}; face {f} -> {f - k}")
        F = F @ V[:, : f - k]
    f = F.shape[1]
    U = f * (f + 1) // 2
    if f == 0:
        return _fail(cert.verdict, False, checks, "the steps remove every direction: only Phi = 0 is left")
    from .linalg import smat, svec_outer

    Yr, Zr = Y @ F, Z @ F
    M = svec_outer(Yr) - svec_outer(Zr)
    norms = np.linalg.norm(M, axis=1)
    keep = norms > 1e-12 * scale
    M = M[keep] / norms[keep, None]
    s = np.linalg.svd(M, compute_uv=False) if M.size else np.zeros(0)
    s = np.concatenate([s, np.zeros(max(0, U - s.size))])[:U]
    if cert.verdict == "identified":
        if U == 1:
            checks.append("final face of dimension 1: one unknown, no equation needed")
            return Verification(True, cert.verdict, False, checks)
        if s[U - 2] <= tol * s[0] or s[U - 1] > s[U - 2] / 1e3:
            return _fail(cert.verdict, False, checks,
                         f"the reduced system does not have rank {U - 1} clearly (singular values "
                         f"{s[U - 2]:.3g} and {s[U - 1]:.3g} of {s[0]:.3g})")
        _, _, Vt = np.linalg.svd(M, full_matrices=True)
        W = smat(Vt[-1], f)
        ev = np.linalg.eigvalsh(W)
        if ev[0] < -tol * abs(ev).max() and ev[-1] > tol * abs(ev).max():
            return _fail(cert.verdict, False, checks, "the one-dimensional solution space has an indefinite generator")
        checks.append(f"reduced system on the face: rank {U - 1} of {U} unknowns (smallest kept singular value "
                      f"{s[U - 2] / s[0]:.1e}, next {s[U - 1] / s[0]:.1e}); its generator is semidefinite")
        return Verification(True, cert.verdict, False, checks)
    # not identified: two witnesses on the face given by the certificate
    if cert.witnesses is None or cert.face is None:
        return _fail(cert.verdict, False, checks, "a 'not identified' certificate needs a face and two witnesses")
    Fc = np.asarray(cert.face, dtype=float)
    mats = [Fc @ np.asarray(W, dtype=float) @ Fc.T for W in cert.witnesses]
    from .feedback import PairFeedback

    fb = PairFeedback(Y, Z)
    for i, X in enumerate(mats):
        ev = np.linalg.eigvalsh((X + X.T) / 2)
        if ev[0] < -tol * ev[-1]:
            return _fail(cert.verdict, False, checks, f"witness {i + 1} is not PSD")
        res = float(np.max(fb.relative_residuals(X), initial=0.0))
        if res > tol:
            return _fail(cert.verdict, False, checks, f"witness {i + 1} violates a pair (relative residual {res:.2e})")
        checks.append(f"witness {i + 1}: PSD, largest relative residual {res:.1e}")
    a, b = (m.ravel() / np.linalg.norm(m) for m in mats)
    sep = float(np.linalg.norm(a - (a @ b) * b))
    if sep <= 1e3 * tol:
        return _fail(cert.verdict, False, checks, "the two witnesses are (numerically) multiples of each other")
    checks.append(f"the witnesses are not multiples of each other (distance of directions {sep:.2e})")
    return Verification(True, cert.verdict, False, checks)


# --------------------------------------------------------------------------------------------
# exact


def _verify_exact(Y, Z, cert):
    """Exact rational re-check; returns a Verification with exact=True (valid or not)."""
    p = Y.shape[1]
    checks = []
    Yq, Zq = _q(Y), _q(Z)
    G = _identity(p)  # exact basis of the current face (columns)
    for t, step in enumerate(cert.steps):
        Yg, Zg = Yq[step.indices].dot(G), Zq[step.indices].dot(G)
        alpha = _rationalize(np.asarray(step.values) / np.max(np.abs(step.values)))
        S = _comb(Yg, Zg, alpha)
        ok, rk = _psd_rank(S)
        if not (ok and rk == step.rank):
            # snap: the kernel the numbers point at, rationalised, and alpha projected onto the
            # multipliers whose combination vanishes on it
            C = _numeric_kernel(Yg, Zg, np.asarray(step.values, dtype=float), step.rank)
            if C is None:
                return _fail(cert.verdict, True, checks, f"step {t + 1}: no exact PSD combination of rank {step.rank}")
            alpha = _snap(Yg, Zg, alpha, C)
            if alpha is None:
                return _fail(cert.verdict, True, checks, f"step {t + 1}: the multipliers cannot be made exact")
            S = _comb(Yg, Zg, alpha)
            ok, rk = _psd_rank(S)
            if not (ok and rk == step.rank):
                return _fail(cert.verdict, True, checks,
                             f"step {t + 1}: the exact combination is {'not PSD' if not ok else f'of rank {rk}'}, "
                             f"not PSD of rank {step.rank}")
        K = _null_space(S)
        checks.append(f"step {t + 1} ({step.kind}, {len(step.indices)} pairs): exact combination PSD of rank "
                      f"{rk}; face {G.shape[1]} -> {K.shape[1]}")
        G = G.dot(K)
    f = G.shape[1]
    if f == 0:
        return _fail(cert.verdict, True, checks, "the steps remove every direction: only Phi = 0 is left")
    U = f * (f + 1) // 2
    Yg, Zg = Yq.dot(G), Zq.dot(G)
    M = _svec_rows_exact(Yg, Zg)
    if cert.verdict == "identified":
        N = _null_space(M, ncols=U)
        if N.shape[1] != 1:
            return _fail(cert.verdict, True, checks,
                         f"the reduced system has {N.shape[1]} independent solutions, not 1 (rank {U - N.shape[1]} of {U})")
        W = _smat_exact(N[:, 0], f)
        ok_pos, _ = _psd_rank(W)
        ok_neg, _ = _psd_rank(-W)
        if not (ok_pos or ok_neg):
            return _fail(cert.verdict, True, checks,
                         "the one-dimensional solution space has an indefinite generator: no non-zero PSD solution "
                         "(the pairs are inconsistent)")
        checks.append(f"reduced system on the face: exact rank {U - 1} of {U} unknowns; its generator is "
                      f"{'positive' if ok_pos else 'negative'} semidefinite")
        return Verification(True, cert.verdict, True, checks)
    if cert.witnesses is None or cert.face is None:
        return _fail(cert.verdict, True, checks, "a 'not identified' certificate needs a face and two witnesses")
    N = _null_space(M, ncols=U)
    if N.shape[1] < 2:
        return _fail(cert.verdict, True, checks, f"only {N.shape[1]} exact solution(s) on the face")
    Gf = np.array(G, dtype=float)
    pinv = np.linalg.pinv(Gf)
    Fc = np.asarray(cert.face, dtype=float)
    exact_W = []
    from .linalg import svec

    for i, Wc in enumerate(cert.witnesses):
        X = Fc @ np.asarray(Wc, dtype=float) @ Fc.T
        Wg = pinv @ X @ pinv.T
        w_num = svec(Wg) / np.where(np.triu_indices(f)[0] == np.triu_indices(f)[1], 1.0, np.sqrt(2.0))
        w = _project_exact(_rationalize(w_num, 10**8), N)
        if w is None:
            return _fail(cert.verdict, True, checks, f"witness {i + 1} cannot be made exact")
        W = _smat_exact(w, f)
        ok, rk = _psd_rank(W)
        if not (ok and rk == f):
            return _fail(cert.verdict, True, checks, f"witness {i + 1}: its exact version is not positive definite on the face")
        exact_W.append(w)
        checks.append(f"witness {i + 1}: exact, positive definite on a face of dimension {f}, satisfies every pair")
    if _rank(np.array([exact_W[0], exact_W[1]], dtype=object)) != 2:
        return _fail(cert.verdict, True, checks, "the exact witnesses are multiples of each other")
    checks.append("the two exact witnesses are linearly independent")
    return Verification(True, cert.verdict, True, checks)


def _identity(p):
    out = np.empty((p, p), dtype=object)
    out[...] = Fraction(0)
    for i in range(p):
        out[i, i] = Fraction(1)
    return out


def _comb(Yg, Zg, alpha):
    S = (Yg * alpha[:, None]).T.dot(Yg) - (Zg * alpha[:, None]).T.dot(Zg)
    return S


def _numeric_kernel(Yg, Zg, alpha, rank):
    """Rational basis (columns, exact) of the kernel of the float combination, by RREF of the numeric
    kernel; None when its rank is unclear."""
    Yf, Zf = np.array(Yg, dtype=float), np.array(Zg, dtype=float)
    S = (Yf * alpha[:, None]).T @ Yf - (Zf * alpha[:, None]).T @ Zf
    S = (S + S.T) / 2
    w, V = np.linalg.eigh(S)
    f = len(w)
    K = V[:, : f - rank]  # eigenvectors of the smallest eigenvalues
    if K.shape[1] == 0:
        return np.empty((f, 0), dtype=object)
    # reduced row echelon form of K^T: pivot columns by QR with pivoting
    import scipy.linalg as sla

    _, _, piv = sla.qr(K.T, pivoting=True)
    piv = np.sort(piv[: K.shape[1]])
    E = np.linalg.solve(K.T[:, piv], K.T)  # identity on the pivot columns
    return _rationalize(E.T, 10**6)


def _snap(Yg, Zg, alpha, C):
    """The multipliers nearest to alpha whose exact combination vanishes on range(C), or None."""
    n = len(alpha)
    # the linear map alpha -> vec(S(alpha) C), column by column (one column per pair)
    cols = []
    for k in range(n):
        y, z = Yg[k], Zg[k]
        Sk = np.outer(y, y.dot(C)) - np.outer(z, z.dot(C))
        cols.append(Sk.reshape(-1))
    A = np.array(cols, dtype=object).T
    N = _null_space(A, ncols=n)
    if N.shape[1] == 0:
        return None
    return _project_exact(alpha, N)

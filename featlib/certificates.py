"""What backs a solver's answer, and an independent check of it.

A :class:`Certificate` says *why* a feedback set does or does not identify its feature matrix:

* **identified**: a facial-reduction sequence (:class:`FaceStep`: multipliers ``alpha`` over the
  pairs such that ``S = sum_k alpha_k (y_k y_k^T - z_k z_k^T)``, restricted to the current face,
  is PSD of a given rank; every PSD solution then lives on ``ker S``), and on the final face the
  reduced linear system has rank ``unknowns - 1``: the solutions form one line, and its PSD
  generator is the answer.
* **not identified**: two PSD matrices ``F W1 F^T`` and ``F W2 F^T`` (W1, W2 positive definite on
  the face F) that satisfy every pair and are not multiples of each other.
* **inconsistent**: a facial-reduction sequence whose last combination is positive definite on its
  face, so that the face becomes {0}: no non-zero PSD matrix satisfies the pairs (Farkas' lemma for
  the PSD cone).  The exact solver attaches one to ``InconsistentFeedbackError.certificate``.

:func:`verify` re-checks a certificate from the pairs alone, without calling any solver.  For small
problems it works in **exact rational arithmetic** (python-flint's ``fmpq``, :mod:`featlib._exact`): every
float is a rational number, the multipliers and witnesses are rounded to nearby rationals and, if
needed, projected exactly onto the constraints they must satisfy (rounding and projection as in
Peyrl and Parrilo's rational sum-of-squares certificates); PSD-ness is decided by an exact
LDL^T and ranks by exact elimination.  An exact success is a proof for the pairs as stored.  When
the stored pairs are not exactly consistent (floating-point data from an irrational construction)
or the problem is larger than :data:`EXACT_MAX_UNKNOWNS`, the same checks run in floating point
with the tolerances reported in :attr:`Verification.checks`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from . import _checks
from . import _exact as _X
from . import _rigorous as _R
from .feedback import PairFeedback
from .spanfeedback import FrameFeedback, SpanFeedback
from .linalg import right_singular, smat, svec, svec_outer

__all__ = ["FaceStep", "Certificate", "Verification", "verify", "CertificateError", "EXACT_MAX_UNKNOWNS",
           "rescale_multipliers",
           "FLOAT_MAX_P", "FLOAT_MAX_UNKNOWNS", "EXACT_MAX_UNKNOWNS_INTEGER"]

#: exact verification up to this many unknowns p(p+1)/2 (p = 12: 78), any stored numbers
EXACT_MAX_UNKNOWNS = 78
#: exact verification up to this many unknowns (p = 20: 210) when every stored number is an integer (the
#: exact teachers' output): rational arithmetic on small integers stays fast there (0.1 to 5 s a
#: certificate at p = 20, measured), while on floats' 53-bit numerators it does not
EXACT_MAX_UNKNOWNS_INTEGER = 210
#: floating-point verification: dense p x p eigendecompositions up to this p, and a dense SVD of the
#: constraint rows on the final face up to this many unknowns f(f+1)/2
FLOAT_MAX_P = 2048
FLOAT_MAX_UNKNOWNS = 5000
#: the coupled final-face bound (:func:`_final_bound_coupled`) forms a Gram matrix of rows x unknowns^2
#: work; above this it is not tried (the sampled benchmark at p = 80 needs 5.7e10)
COUPLED_MAX_WORK = 2e11


#: what a certificate can claim
VERDICTS = ("identified", "not identified", "inconsistent")


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
    verdict : {"identified", "not identified", "inconsistent"}
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
    """The outcome of :func:`verify`.

    ``status`` is one of

    * ``"valid"``: the certificate proves its verdict.  ``exact=True``: proved in rational
      arithmetic for the pairs as stored.  ``exact=False``: proved in floating point with the error
      bounds stated in :func:`verify` (``margin`` and ``residual`` then say what was proved);
    * ``"invalid"``: the certificate does not prove its verdict (a check failed or the claim is
      false; ``reason`` says which);
    * ``"inconclusive"``: the check could neither prove nor refute it (floating point could not
      certify the margins; ``reason`` says why).

    ``bool(v)`` is ``v.valid``, so ``if verify(...)`` only passes a proved claim.
    """

    status: str
    verdict: str
    exact: bool
    checks: list = field(default_factory=list)
    reason: str = ""
    #: floating-point "identified": every non-zero PSD matrix satisfying the pairs exactly lies
    #: within this relative trace-norm distance of a positive multiple of the generator (proved)
    margin: float | None = None
    #: floating-point "identified": a proved bound on the generator's largest residual
    #: ``|<y y^T - z z^T, G>| / ((||y||^2 + ||z||^2) ||G||_*)``
    residual: float | None = None
    #: near solutions (:func:`featlib.verify_near_solutions`): a proved lower bound on the relative
    #: trace-norm distance between the two matrices
    distance: float | None = None

    def __post_init__(self):
        if not isinstance(self.status, str) or self.status not in ("valid", "invalid", "inconclusive"):
            raise _checks.ArgumentError(f"status must be 'valid', 'invalid' or 'inconclusive'; got {self.status!r}.")

    @property
    def valid(self) -> bool:
        return self.status == "valid"

    @property
    def inconclusive(self) -> bool:
        return self.status == "inconclusive"

    def __bool__(self) -> bool:
        return self.valid

    def __repr__(self) -> str:
        how = "exact rational arithmetic" if self.exact else "floating point"
        state = self.status if self.valid else f"{self.status.upper()} ({self.reason})"
        extra = f", margin {self.margin:.1e}" if self.valid and self.margin is not None else ""
        return f"Verification({self.verdict!r}: {state}, {how}{extra}, {len(self.checks)} checks)"


# ============================================================================================
# exact rational linear algebra (small sizes only): featlib._exact, on python-flint

_q = _X.q
_rationalize = _X.rationalize
_rank = _X.rank
_null_space = _X.null_space
_psd_rank = _X.psd_rank
_solve_exact = _X.solve
_identity = _X.identity
_full_column_rank_mod_prime = _X.full_column_rank_mod_prime
_mm = _X.matmul


_svec_rows_exact = _X.svec_rows
_smat_exact = _X.smat
_project_exact = _X.project


# ============================================================================================
# verification


def _pairs(feedback):
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
    if cert.verdict not in VERDICTS:
        raise CertificateError(f"unknown verdict {cert.verdict!r}; expected one of {', '.join(map(repr, VERDICTS))}.")
    return cert


def _finite_float_array(a, what):
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise CertificateError(f"{what} must be an array of finite real numbers; got {type(a).__name__} ({exc}).") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise CertificateError(f"{what} must hold finite real numbers; got dtype {arr.dtype}.")
    arr = arr.astype(float)
    if not np.all(np.isfinite(arr)):
        raise CertificateError(f"{what} holds NaN or infinite values; a certificate's numbers must be finite.")
    return arr


def _checked(cert, p, n):
    """The certificate with every field checked against the data (types, shapes, finiteness,
    indices); sizes are never taken from the certificate's own claims."""
    if not isinstance(cert.steps, (tuple, list)):
        raise CertificateError(f"certificate.steps must be a tuple of FaceStep; got {type(cert.steps).__name__}.")
    steps = []
    for t, s in enumerate(cert.steps):
        if not isinstance(s, FaceStep):
            raise CertificateError(f"step {t + 1} is a {type(s).__name__}, not a FaceStep.")
        idx = np.asarray(s.indices)
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise CertificateError(f"step {t + 1}: pair indices must be integers; got dtype {idx.dtype}.")
        vals = _finite_float_array(s.values, f"step {t + 1}: the multipliers")
        if idx.ndim != 1 or vals.ndim != 1 or len(idx) != len(vals):
            raise CertificateError(
                f"step {t + 1}: indices and multipliers must be 1-D and of equal length; got shapes "
                f"{idx.shape} and {vals.shape}.")
        if len(idx) and (int(np.max(idx)) >= n or int(np.min(idx)) < 0):
            raise CertificateError(
                f"a facial-reduction step refers to pair {int(np.max(idx)) if np.max(idx) >= n else int(np.min(idx))}, "
                f"but the feedback has {n} pairs: this certificate belongs to other feedback.")
        if isinstance(s.rank, (bool, np.bool_)) or not isinstance(s.rank, (int, np.integer)):
            raise CertificateError(f"step {t + 1}: rank must be an integer; got {s.rank!r}.")
        steps.append(FaceStep(idx.astype(np.int64), vals, int(s.rank), str(s.kind)))
    face, witnesses = cert.face, cert.witnesses
    if cert.verdict == "not identified" and face is not None and witnesses is not None:
        face = _finite_float_array(face, "the certificate's face")
        if face.ndim != 2 or face.shape[0] != p or face.shape[1] < 1:
            raise CertificateError(f"the certificate's face must have shape ({p}, f) with f >= 1; got {face.shape}.")
        f = face.shape[1]
        if not isinstance(witnesses, (tuple, list)) or len(witnesses) != 2:
            raise CertificateError("a 'not identified' certificate needs exactly two witnesses.")
        witnesses = tuple(_finite_float_array(W, f"witness {i + 1}") for i, W in enumerate(witnesses))
        for i, W in enumerate(witnesses):
            if W.shape != (f, f):
                raise CertificateError(f"witness {i + 1} must have shape ({f}, {f}) to match the face; got {W.shape}.")
    return dataclasses.replace(cert, steps=tuple(steps), face=face, witnesses=witnesses)


def rescale_multipliers(values, exponents) -> np.ndarray:
    """``values * 4**exponents`` (the multipliers of pair matrices whose pairs are scaled by
    ``2**exponents``), times one common power of two that keeps the largest at order one: a positive
    rescaling of a step's multipliers does not change what the step proves, and working with the
    exponents avoids the overflow and underflow of ``4**exponents`` itself.  Entries that would
    underflow relative to the largest become 0 (the combination checked is then the one returned)."""
    try:
        values = np.asarray(values, dtype=float)
        exponents = np.asarray(exponents)
    except (TypeError, ValueError) as exc:
        raise _checks.ArgumentError(f"rescale_multipliers expects an array of numbers and one of integer exponents ({exc}).") from None
    if exponents.size and not np.issubdtype(exponents.dtype, np.integer):
        raise _checks.ArgumentError(f"the exponents must be integers; got dtype {exponents.dtype}.")
    if values.shape != exponents.shape or values.ndim != 1 or not np.all(np.isfinite(values)):
        raise _checks.ArgumentError(f"rescale_multipliers expects finite values and exponents of one shape (n,); got "
                                    f"{values.shape} and {exponents.shape}.")
    exponents = exponents.astype(np.int64)
    if np.any(np.abs(exponents) > 4000):
        raise _checks.ArgumentError("the exponents are beyond any float's range.")
    if not values.size:
        return values.copy()
    mant, ex = np.frexp(values)
    ex = ex.astype(np.int64) + 2 * exponents
    live = mant != 0
    shift = int(np.max(ex[live])) if live.any() else 0
    return np.ldexp(mant, np.clip(ex - shift, -2000, 10))


def _rescaled_steps(cert, exponents):
    """The certificate for the pairs divided by ``2**exponents``."""
    return dataclasses.replace(cert, steps=tuple(
        dataclasses.replace(s, values=rescale_multipliers(s.values, exponents[s.indices])) for s in cert.steps))


def verify(feedback, certificate, *, exact: bool | None = None, tol: float = 1e-8,
           margin: float = 1e-6) -> Verification:
    """Re-check a certificate against the pairs, independently of the solver that produced it.

    The answer is one of *valid* (proved), *invalid* (the certificate fails, or the claim is
    false) and *inconclusive* (neither could be shown); only *valid* is truthy.

    **Exact** (rational arithmetic, :data:`EXACT_MAX_UNKNOWNS` unknowns, i.e. p <= 12, and
    :data:`EXACT_MAX_UNKNOWNS_INTEGER`, p <= 20, when every stored number is an integer): every
    stored float is a rational number; the multipliers and witnesses are rounded to nearby
    rationals and, when needed, projected exactly onto the constraints they must satisfy.  A valid
    answer is a proof for the pairs as stored.  A structural failure (a step's exact combination is
    not PSD of its rank, the steps remove every direction, the pairs leave two or more exact
    directions) is final: *invalid*.  When the stored numbers are not exactly consistent (pairs
    computed in floating point from irrational data), the exact check cannot apply and the
    floating-point check below decides, and says so in ``checks``.

    *When the exact check applies.*  Exactly when the stored pairs are exactly consistent with the
    claim: every teacher's output with ``teach(..., exact=True)`` (integer pairs from an integer
    target, :mod:`featlib.teachers`), integer or rational data (hand-made pairs, the exercises), a
    full-rank target (the generator is then positive definite and survives rounding), steps made of
    one-sided pairs such as Theorem 1's ``(0, v)``.  Measured on exact teacher output (30 integer
    targets for each p in {4, 7, 10, 12} and five ranks, 2,850 sets): valid in exact arithmetic for
    every eigen, compact, sparse and Gaussian set and 569 of 570 sparse-sampled sets (one checked only
    in floating point).  Floating-point output of *any* teacher on a
    rank-deficient target is, as stored, generically not exactly consistent: rounding the square roots
    ``sqrt(c)`` and the eigenvectors leaves only Phi = 0 (or a different face) as an exact solution, so
    the exact statement about those numbers is not the one a user asks, and no rationalisation of
    them can make it so (the exact teachers change the pairs, not the check).  For them verify proves
    the floating-point statement below.  Measured on every float teacher at p = 4, 7, 10, 12 (five
    ranks each): eigen and sparse sets are valid there at the default margin; compact sets, whose
    certificate is a numerically computed combination, come out *inconclusive* at the default margin
    (proved distance 2e-5 at p = 4 up to 4e-3 at p = 12, the square-root barrier described below) and
    valid with ``margin=1e-2``.  The rational arithmetic is FLINT's (python-flint): an exact attempt
    on float data that fails costs well under a second at p = 10 (8 s on Python fractions).

    **Floating point** (larger p, or data that are not exactly consistent) proves, for
    "identified", this statement: *every non-zero PSD matrix that satisfies every pair exactly is
    within relative trace-norm distance ``margin`` of a positive multiple of the generator G, and G
    is PSD up to ``margin`` and satisfies every pair with relative residual at most ``tol``*.  The
    proof: each facial-reduction step's combination ``S`` is certified to satisfy
    ``F^T S F >= g R R^T - eps I`` on the current face F (a shifted Cholesky factorisation with a
    rounding-error bound, :func:`featlib._rigorous.pd_lower_bound`: no eigenvalue routine is
    trusted), which bounds the trace mass any solution can put on the removed directions R by
    ``(eps + leakage from earlier steps) / g``.  The combination itself is computed exactly, in
    integers, and rounded once, so ``eps`` is a few units of rounding of S rather than ``gamma(2n)``
    times the sum of its n terms (at p = 40, 2,062 sampled pairs: 2e-14 instead of 3e-11).  On the
    final face the constraint matrix is certified to have smallest singular value ``s > 0`` on the
    complement of the generator; the leftover mass and ``s`` give the distance bound, in one of two
    ways, whichever is smaller: with the face's unknowns alone (the block coupling the face to the
    removed directions then counts as a perturbation of size ``sqrt(mass)``, since a PSD matrix
    allows that much), or with that block as further unknowns of the final system, when the pairs
    determine it (plentiful sampled pairs do): the bound is then linear in the mass.  Every bound
    includes the rounding of the computation (Higham's gamma_n bounds, doubled).  The bound is
    honest, so it degrades with each combination step; where the pairs do not determine the coupling
    block (the compact teacher's minimal sets) a numerically computed step costs a square root of
    the rounding, and certificates with several such steps are often *inconclusive* in floating
    point.  Measured on the sampled benchmark feedback (rank p/2, 3p(p+1)/2 pairs, one combination
    step): proved distances 2e-11, 1e-9, 6e-8, 4e-7 at p = 10, 20, 40, 80 (4e-2 and 0.5 at p = 20
    and 40 before the two changes above).
    For "not identified" it proves that two linearly independent PSD matrices satisfy every pair
    exactly (a proof of the exact statement, so it is tried first, before the slower rational check): the witnesses are corrected onto the exact solution space (certified full row rank of
    the pairs on the face) and stay positive definite; when the pairs on the face are linearly
    dependent this cannot be shown in floating point and the answer is *inconclusive*.  The exact
    check of "not identified" first uses the face the steps leave; failing that, it takes the
    certificate's own face B as given (exactly, when its entries are short rationals:
    :data:`GIVEN_FACE_MAX_BITS`), since two linearly independent positive definite W with
    ``B W B^T`` satisfying every pair exactly are two PSD solutions whatever the steps say (the
    exact solver's faces spanned by short integer vectors are checked this way).

    Parameters
    ----------
    feedback : PairFeedback
    certificate : Certificate or Solution
    exact : bool or None
        True: exact rational arithmetic only. False: floating point only. None (default): exact
        when p(p+1)/2 <= :data:`EXACT_MAX_UNKNOWNS`, floating point when the exact check cannot
        apply (never after a structural exact failure).
    tol : float
        Floating point, "identified": the largest relative residual accepted for the generator.
    margin : float
        Floating point, "identified": the largest proved relative distance accepted.

    Returns
    -------
    Verification
        ``status``, ``valid``, ``verdict``, ``exact``, ``checks`` (what was checked, with
        margins), ``reason`` (why not valid), ``margin`` and ``residual`` (floating-point
        "identified").
    """
    if isinstance(feedback, SpanFeedback):
        return _verify_span(feedback, certificate, exact=exact, tol=tol, margin=margin)
    if isinstance(feedback, FrameFeedback):
        return _verify_frame(feedback, certificate, exact=exact, tol=tol, margin=margin)
    fb = _pairs(feedback)
    cert = _as_certificate(certificate)
    p = fb.p
    tol = _checks.check_rtol(tol, "tol")
    margin = _checks.check_rtol(margin, "margin")
    if exact is not None:
        exact = _checks.check_bool(exact, "exact")
    cert = _checked(cert, p, len(fb))
    P = p * (p + 1) // 2
    if p > FLOAT_MAX_P:
        raise CertificateError(
            f"verify re-checks by dense linear algebra up to p = {FLOAT_MAX_P}; this feedback has p = {p}. "
            "Verify a subproblem, or rely on the solver's own checks (Solution.info).")
    integer = P <= EXACT_MAX_UNKNOWNS_INTEGER and (fb.has_integer_entries() or fb.has_integer_pairs_up_to_scale())
    exact_limit = EXACT_MAX_UNKNOWNS_INTEGER if integer else EXACT_MAX_UNKNOWNS
    if exact is True and P > exact_limit:
        raise CertificateError(
            f"exact verification is limited to {EXACT_MAX_UNKNOWNS} unknowns p(p+1)/2 ({EXACT_MAX_UNKNOWNS_INTEGER} "
            f"when every stored number is an integer); this feedback has {P}.")
    # the same pairs divided by powers of two (exact, also in rational arithmetic) so that no square
    # overflows or underflows; a combination of the pair matrices scales by the squares
    fb, factors = fb._normalized()
    exps = (np.frexp(factors)[1] - 1).astype(np.int64)
    cert = _rescaled_steps(cert, exps)
    Y, Z = fb.dense_y(), fb.dense_z()
    notes = []
    if exact is None and cert.verdict == "not identified":
        # the floating-point proof of "not identified" is a proof of the exact statement (two exact
        # PSD solutions, by certified bounds) and takes milliseconds; rational elimination on the
        # stored floats' huge denominators takes a large fraction of a second at p = 6 and seconds
        # from p = 7 on, so it is the fallback here
        out = _verify_float(Y, Z, cert, tol, margin)
        if out.valid:
            return out
        notes.append(f"floating point inconclusive ({out.reason}); checked exactly instead")
    if exact is not False and P <= exact_limit:
        out = _verify_exact(Y, Z, cert, SNAP_MAX_WORK_INTEGER if integer else SNAP_MAX_WORK)
        out.checks = notes + out.checks
        if out.status != "inconclusive" or exact is True:
            return out
        notes = []
        notes.append(f"exact check not possible ({out.reason}); checked in floating point instead")
    out = _verify_float(Y, Z, cert, tol, margin)
    out.checks = notes + out.checks
    return out


def _verify_span(feedback, certificate, *, exact, tol, margin):
    """verify for :class:`featlib.SpanFeedback`: the certificate is one for ``feedback.reduced()`` (what
    ``solve`` returns on span feedback); the equivalence of the two problems is exact (module
    docstring of :mod:`featlib.spanfeedback`).  "identified" and "inconsistent" transfer as they are
    (the map Phi -> W^T Phi W is injective on the matrices the span pairs allow); "not identified"
    needs the two reduced witnesses to come from matrices Phi, which holds when W has full column rank:
    proved here by a certified lower bound on the smallest eigenvalue of W^T W, else inconclusive."""
    k = feedback.frame.shape[1]
    note = (f"span feedback: the {feedback.n_span} pairs (0, v), v in span(W)^perp, force range(Phi) in span(W) "
            f"(exact, for PSD Phi); the {feedback.n_stored} stored pairs were checked in R^{k} for S = W^T Phi W, "
            f"an exactly equivalent problem (the stored numbers themselves)")
    return _verify_reduced(feedback, certificate, note, exact=exact, tol=tol, margin=margin)


#: the face step of frame feedback is checked by exact float arithmetic on integers below this bound
FRAME_EXACT_BOUND = 2.0 ** 53


def _frame_face_proof(feedback):
    """``(note, None)`` when the face step of a :class:`featlib.FrameFeedback` is proved exactly (its class
    docstring: E = 0, X = 0, F ⪰ diag(d) with d > 0), else ``(None, reason)``.  Exact means: the hinted
    pairs' stored coefficients and the multipliers are integers small enough that every sum of products
    is exact in float64 (each term and every partial sum below 2^53), so the blocks are computed
    without rounding."""
    p, k = feedback.frame.shape
    if p == k:
        return "frame feedback with k = p: no complement, no face step", None
    hint = feedback.meta.get("face_hint")
    try:
        (idx, vals), = [(np.asarray(i).ravel(), np.asarray(v, dtype=float).ravel()) for i, v in hint]
    except (TypeError, ValueError):
        return None, "it has no usable face hint (meta['face_hint'] must hold one (indices, values) step)"
    n = len(feedback)
    if (idx.shape != vals.shape or not np.issubdtype(idx.dtype, np.integer) or (idx.size and (idx.min() < 0 or idx.max() >= n))
            or not np.all(np.isfinite(vals))):
        return None, "its face hint does not fit the pairs (integer indices in range, finite values, one per index)"
    rows = [sp.csr_matrix(C[idx]) for C in (feedback.y_coef, feedback.z_coef)]
    data = np.concatenate([r.data for r in rows] + [vals])
    if not np.all(data == np.round(data)):
        return None, ("the hint's combination involves non-integer numbers (e.g. the agent's rescaling sqrt(c)), so "
                      "its blocks cannot be evaluated exactly here; the solver's floating-point bound is in "
                      "Solution.info['frame_face_tol']")
    top = float(np.max(np.abs(data), initial=0.0))
    # each block entry has at most 2 terms a pair; top is tested first so that top ** 3 cannot overflow
    if not (top < FRAME_EXACT_BOUND and 2.0 * idx.size * top ** 3 < FRAME_EXACT_BOUND):
        return None, "the hint's integers are too large for an exact float64 evaluation"
    E, X, d = feedback.hint_blocks(idx, vals)
    if np.any(E != 0) or X.nnz:
        return None, "the hint's combination is not block diagonal with a zero frame block (checked exactly)"
    if d is None or not d.size or not np.all(d > 0):
        return None, "the hint's complement block could not be proved positive definite from its one-sided terms"
    return (f"face step proved exactly: the hint's combination of {idx.size} pairs is 0 (+) F on [W R, U] with "
            f"F >= {float(d.min()):g} I (integer arithmetic), so range(Phi) lies in span(W)"), None


def _verify_frame(feedback, certificate, *, exact, tol, margin):
    """verify for :class:`featlib.FrameFeedback`: the face step from ``meta["face_hint"]``, proved only in
    exact arithmetic (:func:`_frame_face_proof`; otherwise inconclusive), then the frame parts checked as
    for span feedback (:func:`_verify_reduced`)."""
    note, reason = _frame_face_proof(feedback)
    if note is None:
        cert = _as_certificate(certificate)
        return _unsure(cert.verdict, False, [], f"the face step of this frame feedback is not proved: {reason}")
    k = feedback.frame.shape[1]
    note += (f"; the {len(feedback)} pairs' frame parts were checked in R^{k} for S = W^T Phi W (the stored "
             f"numbers themselves)")
    return _verify_reduced(feedback, certificate, note, exact=exact, tol=tol, margin=margin)


def _verify_reduced(feedback, certificate, note, *, exact, tol, margin):
    """The certificate checked on ``feedback.reduced()`` once range(Phi) ⊆ span(W) is proved; the verdicts
    transfer (see :func:`_verify_span`)."""
    out = verify(feedback.reduced(), certificate, exact=exact, tol=tol, margin=margin)
    out.checks = [note] + list(out.checks)
    if out.valid and out.verdict == "not identified":
        W = feedback.scaled_frame  # the frame over a power of two (exact): products far from overflow
        G = W.T @ W
        err = _R.matmul_error(_R.fro(W), _R.fro(W), W.shape[0], G.size)
        lb = _R.pd_lower_bound(G, err)
        if not lb > 0:
            return _unsure(out.verdict, out.exact, out.checks,
                           "the frame W could not be proved to have full column rank, so the reduced witnesses "
                           "may not come from matrices Phi")
        out.checks.append(f"frame W has full column rank: lambda_min(W^T W) >= {lb:.3g} (proved, after scaling W "
                          f"by a power of two)")
    return out


def _result(status, verdict, exact, checks, reason="", **kw):
    return Verification(status, verdict, exact, checks, reason, **kw)


def _fail(verdict, exact, checks, reason):
    return Verification("invalid", verdict, exact, checks, reason)


def _unsure(verdict, exact, checks, reason):
    return Verification("inconclusive", verdict, exact, checks, reason)


# --------------------------------------------------------------------------------------------
# floating point, with proved error bounds (see verify's docstring and featlib._rigorous)


def _semidefinite_pairs(Y, Z, step):
    """The vectors v with ``alpha_k (y y^T - z z^T) = |alpha_k| v v^T`` when every pair of the step
    is one-sided with a multiplier of the right sign (checked exactly), else None."""
    vs = []
    for k, a in zip(step.indices, step.values):
        if a == 0:
            continue
        y, z = Y[k], Z[k]
        if a > 0 and not np.any(z):
            vs.append(y)
        elif a < 0 and not np.any(y):
            vs.append(z)
        else:
            return None
    return np.array(vs).reshape(-1, Y.shape[1])


def _orthogonality(Q):
    """A proved bound on ``||Q^T Q - I||_2``."""
    k = Q.shape[1]
    if k == 0:
        return 0.0
    if Q.shape[0] == k and np.array_equal(Q, np.eye(k)):
        return 0.0  # exactly the identity (the first step on the whole space): no rounding to bound
    E = Q.T @ Q - np.eye(k)
    return _R.SAFETY * (_R.fro(E) * (1 + _R.U) + _R.matmul_error(_R.fro(Q), _R.fro(Q), Q.shape[0], k * k) + _R.U * k)


def _off_face(delta, mass):
    """For Q = [F, R] with ||Q^T Q - I||_2 <= delta and trace mass <= ``mass`` on the columns R, and
    any PSD Phi of unit trace written Phi = Q X Q^T: bounds on tr X and on the trace of X's R block
    (see verify's docstring)."""
    trX = 1 / (1 - delta)
    E = delta / (1 - delta)  # ||(Q^T Q)^-1 - I||
    return trX, (np.sqrt(mass) + E * np.sqrt(1 + delta)) ** 2


def _row_errors(V, F, g):
    """Proved bounds on ||fl(v F) - v F|| for each row v of V (|fl(v F) - v F| <= g |v| |F|)."""
    return g * np.linalg.norm(np.abs(V) @ np.abs(F), axis=1) + _R.TINY * V.shape[1]


def _face_rows(Y, Z, F, nu):
    """Rows ``svec(F^T (y y^T - z z^T) F) / nu`` (float) and a proved bound on the Frobenius
    distance to the exact rows (for the float matrix F as given)."""
    p, f = F.shape
    Yf, Zf = Y @ F, Z @ F
    M = (svec_outer(Yf) - svec_outer(Zf)) / nu[:, None]
    g = _R.gamma(p + 4)
    ey, ez = _row_errors(Y, F, g), _row_errors(Z, F, g)
    ny, nz = np.linalg.norm(Yf, axis=1), np.linalg.norm(Zf, axis=1)
    row = (2 * ey * ny + ey ** 2 + 4 * _R.U * ny ** 2 + 2 * ez * nz + ez ** 2 + 4 * _R.U * nz ** 2) / nu
    row = row + 2 * _R.U * np.linalg.norm(M, axis=1) + _R.TINY * f * f
    return M, _R.SAFETY * float(np.linalg.norm(row))


def _final_bound_coupled(Y, Z, F, R, nu, w0, r0, trX, xr, delta, chunk=2048):
    """A proved bound on the relative trace-norm distance from any unit-trace PSD solution to a
    multiple of the generator ``F smat(w0) F^T``, with the off-diagonal block as unknowns.

    Write a solution ``Phi = Q X Q^T`` with ``Q = [F, R]`` (``||Q^T Q - I||_2 <= delta``), X PSD,
    ``tr X <= trX`` and ``tr X_RR <= xr`` (the removed directions' mass, proved by the steps).  Each
    pair reads, exactly, ``n_i . u = -c_i`` with unknowns ``u = (svec X_FF, vec X_FR)``, row
    ``n_i = (svec(y_F y_F^T - z_F z_F^T), 2 vec(y_F y_R^T - z_F z_R^T)) / nu_i`` (``y_F = F^T y``,
    ``y_R = R^T y``) and ``c_i = (y_R^T X_RR y_R - z_R^T X_RR z_R) / nu_i``, so
    ``|c_i| <= rho_i xr`` with ``rho_i = max(|y_R|^2, |z_R|^2) / nu_i`` (X_RR is PSD).  Let
    ``u0 = (w0, 0)`` and ``u = beta u0 + v`` with v orthogonal to u0; a certified
    ``G + 2 s2 u0 u0^T - s2 I >= 0`` (G the float Gram matrix of the rows) gives
    ``|N v| >= (sqrt(s2) - eN) |v|`` for the exact rows N (eN their distance from the float ones), and
    ``N v = -c - beta N u0`` with ``|N u0| <= r0`` and ``|beta| <= tr X / |w0|``, so
    ``|v| <= (xr |rho| + |beta| r0) / (sqrt(s2) - eN)``.  Then X minus ``beta diag(smat w0, 0)`` has trace
    norm at most ``sqrt(f) |v_FF| + 2 sqrt(min(f, k)) |v_FR| + xr <= sqrt(f + 4 min(f, k)) |v| + xr``,
    and Phi's is at most (1 + delta) times that.  Linear in the mass (the other bound is in its
    square root).  Returns inf when the system cannot be certified (or is too large).
    """
    n, p = Y.shape
    f, k = F.shape[1], R.shape[1]
    Uu = f * (f + 1) // 2
    Ua = Uu + f * k
    if Ua > FLOAT_MAX_UNKNOWNS or n == 0 or n * Ua * Ua > COUPLED_MAX_WORK:
        return np.inf
    g = _R.gamma(p + 4)
    G = np.zeros((Ua, Ua))
    nN2 = 0.0
    err2 = 0.0
    rho2 = 0.0
    for lo in range(0, n, chunk):
        Yc, Zc, nc = Y[lo:lo + chunk], Z[lo:lo + chunk], nu[lo:lo + chunk]
        Yf, Zf, Yr, Zr = Yc @ F, Zc @ F, Yc @ R, Zc @ R
        FF = svec_outer(Yf) - svec_outer(Zf)  # the same rows as _face_rows (whose generator w0 is)
        FR = 2 * (Yf[:, :, None] * Yr[:, None, :] - Zf[:, :, None] * Zr[:, None, :]).reshape(len(Yc), f * k)
        N = np.hstack([FF, FR]) / nc[:, None]
        G += N.T @ N
        nN2 += float(np.einsum("ij,ij->", N, N))
        eyf, ezf = _row_errors(Yc, F, g), _row_errors(Zc, F, g)
        eyr, ezr = _row_errors(Yc, R, g), _row_errors(Zc, R, g)
        nyf, nzf = np.linalg.norm(Yf, axis=1), np.linalg.norm(Zf, axis=1)
        nyr, nzr = np.linalg.norm(Yr, axis=1), np.linalg.norm(Zr, axis=1)
        # |fl(a b^T) - a_exact b_exact^T|_F <= ea |b| + (|a| + ea) eb + u |a| |b| for each outer product; the
        # FF block as in _face_rows, the FR block twice that; then the subtraction and the division by nu
        row = (2 * eyf * nyf + eyf ** 2 + 4 * _R.U * nyf ** 2 + 2 * ezf * nzf + ezf ** 2 + 4 * _R.U * nzf ** 2
               + 2 * (eyf * nyr + (nyf + eyf) * eyr + 2 * _R.U * nyf * nyr + ezf * nzr + (nzf + ezf) * ezr
                      + 2 * _R.U * nzf * nzr)) / nc
        row = row + 2 * _R.U * np.linalg.norm(N, axis=1) + _R.TINY * Ua
        err2 += float(row @ row)
        rho = (np.maximum(nyr + eyr, nzr + ezr) * (1 + _R.gamma(k + 2))) ** 2 / nc * (1 + 8 * _R.U)
        rho2 += float(rho @ rho)
    eN = _R.SAFETY * np.sqrt(err2)
    rho_norm = np.sqrt(rho2) * (1 + _R.gamma(n + 2))
    Nf = np.sqrt(nN2) * (1 + _R.gamma(n * Ua + 2))
    u0 = np.concatenate([w0, np.zeros(f * k)])
    if not np.all(np.isfinite(G)):
        return np.inf
    ev = np.linalg.eigvalsh(G)
    if not ev[1] > 0:
        return np.inf
    for frac in (0.9, 0.5):
        s2 = float(ev[1]) * frac
        T = G + 2 * s2 * np.outer(u0, u0) - s2 * np.eye(Ua)
        err_T = _R.matmul_error(Nf, Nf, n, Ua * Ua) + _R.SAFETY * _R.gamma(4) * (_R.fro(G) + 3 * s2 * np.sqrt(Ua))
        if _R.pd_lower_bound(T, err_T) >= 0:
            break
    else:
        return np.inf
    s_perp = np.sqrt(s2) * (1 - 1e-12) - eN
    if not s_perp > 0:
        return np.inf
    beta = trX / (float(np.linalg.norm(w0)) * (1 - _R.gamma(Uu + 2)))  # |beta| <= |u| / |u0| <= tr X / |w0|
    v = (xr * rho_norm + beta * r0) / s_perp
    # the last term: smat(w0) in floating point (off-diagonals divided by a rounded sqrt 2) against the exact one
    return float((1 + delta) * (np.sqrt(f + 4 * min(f, k)) * v + xr + beta * 4 * _R.U * np.sqrt(f))) * (1 + 1e-12)


def _step_combination(Ys, Zs, a, F, delta):
    """``S = F^T (sum_k a_k (y_k y_k^T - z_k z_k^T)) F`` (float) and a proved bound on
    ``||S - S_exact||_2`` (S_exact: the same expression in exact arithmetic, for the float F given;
    ``||F||_2 <= sqrt(1 + delta)``).

    The inner combination is computed exactly, in integers (every float is dyadic), and rounded
    once (:func:`featlib._exact.pair_combination`, :func:`featlib._rigorous.round_dyadic`): its
    error is then a few units of rounding of the *result*, not ``gamma(2n)`` times the sum of the
    absolute terms -- the difference between a proved bound of 1e-11 and of 1e-17 for 2,000 sampled
    pairs that cancel to a small matrix (p = 40), which decides whether the distance bound below
    comes out useful.  When the exact combination is not available (magnitudes spanning thousands
    of bits) the float combination with Higham's bound is used instead."""
    p, f = F.shape
    C = _X.pair_combination(Ys, Zs, a)
    if C is not None:
        Cf, err_C = _R.round_dyadic(*C)
        if Cf is not None:
            if f == p and np.array_equal(F, np.eye(p)):
                return Cf, err_C
            CF = Cf @ F
            S = F.T @ CF
            nF = np.sqrt(1 + delta)
            err = (err_C * (1 + delta) + nF * _R.matmul_error(_R.fro(Cf), _R.fro(F), p, p * f)
                   + _R.matmul_error(_R.fro(F), _R.fro(CF), p, f * f))
            return S, _R.SAFETY * err
    Yf, Zf = Ys @ F, Zs @ F
    S = (Yf * a[:, None]).T @ Yf - (Zf * a[:, None]).T @ Zf
    ey, ez = _row_errors(Ys, F, _R.gamma(p)), _row_errors(Zs, F, _R.gamma(p))
    nys, nzs = np.linalg.norm(Yf, axis=1), np.linalg.norm(Zf, axis=1)
    absa = np.abs(a)
    err_S = _R.SAFETY * (float(absa @ (2 * ey * nys + ey ** 2 + 2 * ez * nzs + ez ** 2))
                         + _R.gamma(2 * len(a) + 2) * float(absa @ (nys ** 2 + nzs ** 2)) + _R.TINY * f * f * len(a))
    return S, err_S


def _verify_float(Y, Z, cert, tol, margin):
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # an inf bound proves nothing
        if cert.verdict == "not identified":
            return _verify_float_not_identified(Y, Z, cert)
        return _verify_float_identified(Y, Z, cert, tol, margin)


def _verify_float_identified(Y, Z, cert, tol, margin):
    n, p = Y.shape
    checks = []
    g_all = _R.gamma(p + n + 8)
    ny2 = np.einsum("ij,ij->i", Y, Y)
    nz2 = np.einsum("ij,ij->i", Z, Z)
    steps = list(cert.steps)
    removed = []  # float blocks R_j (p x k_j)
    masses = []  # proved bounds on <R_j R_j^T, Phi> for every exact PSD solution with tr Phi = 1
    F = np.eye(p)
    # (a) a leading run of one-sided pairs with multipliers of the right sign: alpha_k A_k = c v v^T
    # exactly, so every PSD solution has Phi v = 0 for each v: the removed span is exact
    lead = []
    while steps:
        vs = _semidefinite_pairs(Y, Z, steps[0])
        if vs is None:
            break
        lead.append(vs)
        steps.pop(0)
    if lead:
        V = np.vstack(lead)
        k = sum(s.rank for s in cert.steps[: len(lead)])
        if not 0 < k <= min(len(V), p):
            return _fail(cert.verdict, False, checks, f"the one-sided pairs of the first step(s) span at most "
                         f"{min(len(V), p)} directions; the certificate claims {k}")
        Qf, Rq, piv = sla.qr(V.T, pivoting=True)
        d = np.abs(np.diag(Rq))
        if d.size < k or not d[k - 1] > 1e-8 * d[0]:
            return _unsure(cert.verdict, False, checks, f"the one-sided pairs do not clearly span {k} directions "
                           "in floating point")
        C = np.zeros((len(V), k))
        C[piv[:k]] = sla.solve_triangular(Rq[:k, :k], np.eye(k))
        R0 = V.T @ C  # = V^T C up to rounding: each column within e of the exact span of the v's
        e = _R.matmul_error(_R.fro(V), _R.fro(C), len(V), p * k)
        removed.append(R0)
        masses.append(e ** 2)
        F = Qf[:, k:]
        checks.append(f"steps 1-{len(lead)}: one-sided pairs with multipliers of the right sign remove {k} "
                      f"directions exactly (every solution vanishes on them); face {p} -> {p - k}")
    t0 = len(lead)
    for t, step in enumerate(steps, start=t0 + 1):
        f = F.shape[1]
        k = step.rank
        if not 0 < k <= f:
            return _fail(cert.verdict, False, checks, f"step {t}: claimed rank {k} is not in 1..{f}")
        Q = np.hstack([F] + removed)
        delta = _orthogonality(Q)
        if not delta < 0.25:
            return _unsure(cert.verdict, False, checks, f"step {t}: the face basis is not orthonormal enough ({delta:.1e})")
        a = step.values
        if not np.any(a):
            return _fail(cert.verdict, False, checks, f"step {t}: every multiplier is zero")
        absa = np.abs(a)
        S, err_S = _step_combination(Y[step.indices], Z[step.indices], a, F, delta)
        w, Vs = np.linalg.eigh((S + S.T) / 2)
        top = float(np.max(np.abs(w)))
        lam_rem = w[f - k:]
        if not lam_rem.min() > 0:
            if w[0] < -1e-3 * top - 10 * err_S:
                return _fail(cert.verdict, False, checks, f"step {t}: the combination has eigenvalue {w[0]:.3g} "
                             f"(largest {top:.3g}): it is not PSD")
            return _unsure(cert.verdict, False, checks, f"step {t}: the combination has no clear rank {k} (its "
                           f"{k} largest eigenvalues are not all positive)")
        g = float(lam_rem.min()) / 2
        eps = 2 * max(0.0, -float(w[0])) + 4 * err_S + 1e-15 * top
        Rl = Vs[:, f - k:]
        # the smallest shift eps that the rounding of the check itself lets us prove (the mass bound
        # below is proportional to it): with an exactly computed combination err_S is a few units of
        # rounding of S, below the Cholesky test's own error, so eps grows by tens until it passes
        lb = -np.inf
        for _ in range(12):
            T = S - g * (Rl @ Rl.T) + eps * np.eye(f)
            err_T = err_S + g * _R.matmul_error(_R.fro(Rl), _R.fro(Rl), k, f * f) + _R.SAFETY * _R.gamma(4) * (
                _R.fro(S) + g * k + eps * np.sqrt(f))
            lb = _R.pd_lower_bound(T, err_T)
            if lb >= 0 or not eps * 10 < g:
                break
            eps *= 10
        if not lb >= 0:
            return _unsure(cert.verdict, False, checks, f"step {t}: could not prove in floating point that the "
                           f"combination is PSD of rank {k} up to {eps:.1e}")
        # mass bounds (trace Phi = 1): see verify's docstring
        trX, xr = _off_face(delta, sum(masses))
        S_norm = (1 + g_all) * float(absa @ (ny2[step.indices] + nz2[step.indices]))
        leak = (1 + delta) * S_norm * (2 * np.sqrt(trX * xr) + xr)
        q = (leak + eps * trX) / g
        Rt = F @ Rl
        D = Q.T @ Rt
        D[:f] -= Rl
        d_t = _R.SAFETY * (_R.fro(D) + _R.matmul_error(_R.fro(Q), _R.fro(Rt), p, p * k))
        m_t = (np.sqrt(q) + np.sqrt(trX) * d_t) ** 2
        masses.append(float(m_t) * (1 + 1e-12))
        removed.append(Rt)
        checks.append(f"step {t} ({step.kind}, {len(step.indices)} pairs): F^T S F >= g R R^T - eps I proved "
                      f"(g = {g:.2e}, eps = {eps:.1e}); mass on the removed directions <= {m_t:.1e}; face {f} -> {f - k}")
        F = F @ Vs[:, : f - k]
    f = F.shape[1]
    if cert.verdict == "inconsistent":
        if f != 0:
            return _fail(cert.verdict, False, checks, f"the steps leave a face of dimension {f}: no contradiction shown")
        Q = np.hstack(removed) if removed else np.zeros((p, 0))
        delta = _orthogonality(Q)
        total = sum(masses)
        # Q is square and nearly orthogonal: <Q Q^T, Phi> >= (1 - delta) tr Phi, while the steps bound
        # it by the sum of the masses (tr Phi = 1); a sum below 1 - delta leaves only Phi = 0
        if Q.shape[1] == p and delta < 0.25 and total < (1 - delta) * (1 - 1e-12):
            checks.append(f"the removed directions span R^{p} and carry at most {total:.1e} of the trace of any "
                          f"PSD solution (< 1 - {delta:.1e}): only Phi = 0 satisfies the pairs")
            return _result("valid", cert.verdict, False, checks)
        return _unsure(cert.verdict, False, checks, f"could not prove that the removed directions carry all of "
                       f"the trace (mass bound {total:.1e}, orthogonality {delta:.1e})")
    if f == 0:
        return _fail(cert.verdict, False, checks, "the steps remove every direction: only Phi = 0 is left")
    Uu = f * (f + 1) // 2
    if Uu > FLOAT_MAX_UNKNOWNS:
        return _unsure(cert.verdict, False, checks,
                       f"the final face has dimension {f} ({Uu} unknowns), above the dense limit {FLOAT_MAX_UNKNOWNS}")
    Q = np.hstack([F] + removed)
    delta = _orthogonality(Q)
    if not delta < 0.25:
        return _unsure(cert.verdict, False, checks, f"the final basis is not orthonormal enough ({delta:.1e})")
    nu = ny2 + nz2
    live = nu > 0
    Mr, eM = _face_rows(Y[live], Z[live], F, nu[live])
    nrows = Mr.shape[0]
    trX, xr = _off_face(delta, sum(masses))
    xi = (1 + delta) * (2 * np.sqrt(trX * xr) + xr)  # trace norm of Phi minus its face part
    G = Mr.T @ Mr
    ev, EV = np.linalg.eigh(G)
    w0 = EV[:, 0]
    W0 = smat(w0, f)
    if np.trace(W0) < 0:
        w0, W0 = -w0, -W0
    Mf = _R.fro(Mr)
    if Uu == 1:
        s_perp = np.inf
    else:
        s2 = float(ev[1]) / 2
        if not s2 > 0:
            return _unsure(cert.verdict, False, checks, "the pairs on the final face do not clearly leave one direction")
        # u^T G u >= s2 |u|^2 for every u orthogonal to w0 follows from G + 2 s2 w0 w0^T - s2 I >= 0
        T = G + 2 * s2 * np.outer(w0, w0) - s2 * np.eye(Uu)
        err_T = _R.matmul_error(Mf, Mf, nrows, Uu * Uu) + _R.SAFETY * _R.gamma(4) * (_R.fro(G) + 3 * s2 * np.sqrt(Uu))
        if _R.pd_lower_bound(T, err_T) >= 0:
            s_low = np.sqrt(s2) * (1 - 1e-12)
        else:
            # the Gram matrix squares the condition number (819 Gaussian pairs at p = 40: its smallest
            # eigenvalue 2.4e-12 against a rounding bound of 7.5e-11), and its eigenvector is then accurate
            # only to about 1e-4: take the generator from an SVD of the rows instead (accurate to rounding
            # over the smallest singular value), and bound the rows' smallest singular value on its complement
            # directly: |M u| = |[M; w0^T] u| for u orthogonal to w0
            try:
                w0 = right_singular(Mr)[1][-1]
            except np.linalg.LinAlgError:
                return _unsure(cert.verdict, False, checks, "the SVD of the final system failed")
            W0 = smat(w0, f)
            if np.trace(W0) < 0:
                w0, W0 = -w0, -W0
            s_low = _R.sigma_min_lower_bound(np.vstack([Mr, w0[None, :]]))
            if not s_low > 0:
                return _unsure(cert.verdict, False, checks, "could not prove in floating point that the pairs on the "
                               "final face leave only one direction")
        s_perp = s_low - eM
        if not s_perp > 0:
            return _unsure(cert.verdict, False, checks, "the rounding error of the final system is larger than its "
                           "smallest singular value")
    r0 = _R.SAFETY * (float(np.linalg.norm(Mr @ w0)) + _R.matmul_error(Mf, 1.0, Uu, nrows)) + eM * (1 + 1e-12)
    b = 0.0 if Uu == 1 else (np.sqrt(nrows) * (1 + _R.gamma(p + 4)) * xi + trX * r0) / s_perp
    theta = float(xi + (1 + delta) * np.sqrt(f) * b) * (1 + 1e-12)
    rho = float(r0 / (1 - delta)) * (1 + 1e-12)
    route = ""
    if not theta <= margin and removed:
        # the bound above pays sqrt(mass) for the off-diagonal block between the face and the removed
        # directions; with that block as unknowns of the final system it pays the mass itself
        theta_lin = _final_bound_coupled(Y[live], Z[live], F, np.hstack(removed), nu[live], w0, r0, trX, xr, delta)
        if theta_lin < theta:
            theta, route = theta_lin, " (the face-to-removed block solved for with the face)"
    psd = _R.pd_lower_bound(W0 + margin * np.eye(f), _R.SAFETY * _R.U * f) >= 0
    checks.append(f"final face of dimension {f} ({Uu} unknowns, {nrows} pairs): proved that every non-zero PSD "
                  f"solution lies within relative distance {theta:.1e} (trace norm) of a multiple of the generator G{route}; "
                  f"G satisfies every pair to {rho:.1e} and is {'PSD up to ' + format(margin, '.0e') if psd else 'not shown PSD'}")
    if not psd:
        wmin, wmax = np.linalg.eigvalsh(W0)[[0, -1]]
        if wmin < -10 * (theta + margin) and wmax > 10 * (theta + margin) and theta < 0.1:
            return _fail(cert.verdict, False, checks, "the only direction the pairs leave is indefinite: no non-zero "
                         "PSD matrix satisfies them")
        return _unsure(cert.verdict, False, checks, "could not show the generator is PSD")
    if rho > 1e3 * tol and rho > 1e-3:
        return _fail(cert.verdict, False, checks, f"the generator violates a pair: relative residual up to {rho:.2e}")
    if not rho <= tol:  # also NaN
        return _unsure(cert.verdict, False, checks, f"the generator's residual {rho:.1e} is not proved below tol {tol:g}")
    if not theta <= margin:
        return _unsure(cert.verdict, False, checks, f"the proved distance bound {theta:.1e} is above margin {margin:g} "
                       "(pass a larger margin to accept the weaker statement, or check exactly at small p)")
    return _result("valid", cert.verdict, False, checks, margin=theta, residual=rho)


def _verify_float_not_identified(Y, Z, cert):
    checks = []
    if cert.witnesses is None or cert.face is None:
        return _fail(cert.verdict, False, checks, "a 'not identified' certificate needs a face and two witnesses")
    F = cert.face
    p, f = F.shape
    Uu = f * (f + 1) // 2
    if Uu > FLOAT_MAX_UNKNOWNS:
        return _unsure(cert.verdict, False, checks, f"the face has {Uu} unknowns, above the dense limit {FLOAT_MAX_UNKNOWNS}")
    nu = np.einsum("ij,ij->i", Y, Y) + np.einsum("ij,ij->i", Z, Z)
    live = np.any(Y != Z, axis=1) & np.any(Y != -Z, axis=1)  # y = +-z exactly: the pair matrix is 0
    Mr, eM = _face_rows(Y[live], Z[live], F, nu[live])
    nrows = Mr.shape[0]
    # F has full column rank (so F W F^T = 0 only for W = 0)
    if not _R.pd_lower_bound(F.T @ F, _R.matmul_error(_R.fro(F), _R.fro(F), p, f * f)) > 0:
        return _unsure(cert.verdict, False, checks, "could not prove that the face basis has full column rank")
    if nrows > Uu - 2:
        return _unsure(cert.verdict, False, checks,
                       f"{nrows} non-trivial pairs on a face with {Uu} unknowns: floating point can prove two exact "
                       "solutions only when the pairs are fewer than the unknowns minus one and independent "
                       "(the exact check, p <= 12, or p <= 20 for integer pairs, has no such limit)")
    if nrows:
        Mf = _R.fro(Mr)
        G = Mr @ Mr.T
        lam = float(np.linalg.eigvalsh(G)[0])
        s2 = lam / 2
        if not (s2 > 0 and _R.pd_lower_bound(G - s2 * np.eye(nrows), _R.matmul_error(Mf, Mf, Uu, nrows * nrows)
                                              + _R.SAFETY * _R.gamma(4) * (_R.fro(G) + s2 * np.sqrt(nrows))) >= 0):
            return _unsure(cert.verdict, False, checks, "could not prove the pairs on the face are linearly independent")
        s = np.sqrt(s2) * (1 - 1e-12) - eM
        if not s > 0:
            return _unsure(cert.verdict, False, checks, "the pairs on the face are too close to dependent")
    ws, rel = [], []
    for i, W in enumerate(cert.witnesses):
        W = (W + W.T) / 2
        w = svec(W)
        nw = float(np.linalg.norm(w))
        if not nw > 0:
            return _fail(cert.verdict, False, checks, f"witness {i + 1} is zero")
        if nrows:
            r = _R.SAFETY * (float(np.linalg.norm(Mr @ w)) + _R.matmul_error(_R.fro(Mr), nw, Uu, nrows)) + eM * nw
            corr = r / s  # the exact solution w - M^+(M w) is this close to w
        else:
            corr = 0.0
        lb = _R.pd_lower_bound(W, corr * (1 + 1e-12) + _R.SAFETY * _R.U * nw)
        if not lb > 0:
            return _unsure(cert.verdict, False, checks, f"witness {i + 1}: could not prove that its correction onto "
                           f"the exact solutions (distance <= {corr:.1e}) stays positive definite")
        ws.append(w)
        rel.append(corr / nw)
        checks.append(f"witness {i + 1}: within {corr:.1e} of an exact solution that is positive definite on the face "
                      f"(smallest eigenvalue >= {lb:.1e})")
    a, b = ws[0] / np.linalg.norm(ws[0]), ws[1] / np.linalg.norm(ws[1])
    sin_ab = float(np.linalg.norm(a - (a @ b) * b)) - 1e-12
    need = sum(np.arcsin(min(1.0, x)) for x in rel)
    if not (sin_ab > 0 and np.arcsin(min(1.0, sin_ab)) > need):
        return _unsure(cert.verdict, False, checks, "could not prove the two exact solutions are not multiples of each other")
    checks.append(f"the two exact solutions are not multiples of each other (angle >= {np.arcsin(min(1.0, sin_ab)) - need:.1e} rad)")
    return _result("valid", cert.verdict, False, checks)


# --------------------------------------------------------------------------------------------
# exact




def _verify_exact(Y, Z, cert, snap_limit=None):
    """Exact rational re-check; a Verification with exact=True.  *invalid* only for structural failures
    (the steps remove every direction; the pairs leave two or more exact directions); *inconclusive*
    when the numbers cannot be made exact (then verify decides in floating point)."""
    p = Y.shape[1]
    checks = []
    Yq, Zq = _q(Y), _q(Z)
    G = _identity(p)  # exact basis of the current face (columns)
    for t, step in enumerate(cert.steps):
        # rough kernels too, bounded (the exact solver's snapped steps, whose multipliers are stored rounded
        # to floats, can have kernels that only the rough LLL finds again: 2-sparse pairs, p = 20, rank 5)
        alpha, K, reason = _exact_step(Yq, Zq, G, step, t, snap_limit, rough=True, rough_limit=ROUGH_VERIFY_MAX_WORK)
        if alpha is None:
            if K == "fail":
                return _fail(cert.verdict, True, checks, reason)
            return _unsure(cert.verdict, True, checks, reason)
        checks.append(f"step {t + 1} ({step.kind}, {len(step.indices)} pairs): exact combination PSD of rank "
                      f"{step.rank}; face {G.shape[1]} -> {K.shape[1]}")
        G = _mm(G, K)
    f = G.shape[1]
    if cert.verdict == "inconsistent":
        if f == 0:
            checks.append("the steps remove every direction: only Phi = 0 satisfies the pairs")
            return _result("valid", cert.verdict, True, checks)
        return _fail(cert.verdict, True, checks, f"the steps leave a face of dimension {f}: no contradiction shown")
    if f == 0:
        return _fail(cert.verdict, True, checks, "the steps remove every direction: only Phi = 0 is left")
    U = f * (f + 1) // 2
    Yg, Zg = _mm(Yq, G), _mm(Zq, G)
    M = _svec_rows_exact(Yg, Zg)
    if cert.verdict == "identified":
        if _full_column_rank_mod_prime(M, U):
            # rank over the rationals >= rank modulo a prime: no exact non-zero solution, decided in
            # milliseconds instead of a rational elimination whose denominators grow for seconds
            return _unsure(cert.verdict, True, checks, "the stored pairs admit no exact non-zero solution on the face "
                           "(they are not exactly consistent)")
        N = _null_space(M, ncols=U)
        if N.shape[1] == 0:
            return _unsure(cert.verdict, True, checks, "the stored pairs admit no exact non-zero solution on the face "
                           "(they are not exactly consistent)")
        if N.shape[1] != 1:
            return _fail(cert.verdict, True, checks,
                         f"the reduced system has {N.shape[1]} independent solutions, not 1 (rank {U - N.shape[1]} of {U})")
        W = _smat_exact(N[:, 0], f)
        ok_pos, _ = _psd_rank(W)
        ok_neg, _ = _psd_rank(-W)
        if not (ok_pos or ok_neg):
            return _unsure(cert.verdict, True, checks,
                         "the one-dimensional solution space has an indefinite generator: no non-zero PSD solution "
                         "(the pairs are inconsistent)")
        checks.append(f"reduced system on the face: exact rank {U - 1} of {U} unknowns; its generator is "
                      f"{'positive' if ok_pos else 'negative'} semidefinite")
        return _result("valid", cert.verdict, True, checks)
    if cert.witnesses is None or cert.face is None:
        return _fail(cert.verdict, True, checks, "a 'not identified' certificate needs a face and two witnesses")
    Gf = np.array(G, dtype=float)
    pinv = np.linalg.pinv(Gf)
    Fc = np.asarray(cert.face, dtype=float)
    Wg = [pinv @ (Fc @ np.asarray(Wc, dtype=float) @ Fc.T) @ pinv.T for Wc in cert.witnesses]
    found, reason = _exact_witnesses(M, f, Wg)
    if found is not None:
        checks += [f"witness {i + 1}: exact, positive definite on a face of dimension {f}, satisfies every pair"
                   for i in range(2)] + ["the two exact witnesses are linearly independent"]
        return _result("valid", cert.verdict, True, checks)
    # the certificate's own face, taken as given (exactly: every float is a rational): any exact full-rank
    # B with two linearly independent positive definite W such that B W B^T satisfies every pair exactly
    # proves "not identified" (B W B^T is PSD), whatever the steps or the faces they leave.  Faces found by
    # rounding (short integer vectors, featlib.solvers.decide.rational_face_witnesses) are cheap to use
    B = _q(Fc)
    k = B.shape[1]
    if (k >= p or _X.height_bits(B) > GIVEN_FACE_MAX_BITS or (k, k) != np.shape(cert.witnesses[0])
            or _rank(B) != k):
        return _unsure(cert.verdict, True, checks, reason)
    found, reason2 = _exact_witnesses(_svec_rows_exact(_mm(Yq, B), _mm(Zq, B)), k,
                                      [np.asarray(Wc, dtype=float) for Wc in cert.witnesses])
    if found is None:
        return _unsure(cert.verdict, True, checks, f"{reason}; on the certificate's own face: {reason2}")
    checks += [f"the certificate's face, taken exactly: {k} independent rational columns (entries of at most "
               f"{_X.height_bits(B)} bits)"]
    checks += [f"witness {i + 1}: exact, positive definite on that face, satisfies every pair (so B W B^T is a PSD "
               "solution)" for i in range(2)] + ["the two exact witnesses are linearly independent"]
    return _result("valid", cert.verdict, True, checks)


#: verify takes a "not identified" certificate's face as given (exactly) only when it is smaller than the
#: whole space and its entries are short rationals (bit height of numerators and denominators): the
#: solver's integer faces found by LLL have entries below 2**10; a float orthonormal basis would make the
#: rational elimination slow.  Measured at p = 20 with 150 exact Gaussian pairs, a forged face of 20
#: random integer columns: 12 s at 11 bits, 21 s at 32 bits, 34 s at 64 bits for the whole verify
GIVEN_FACE_MAX_BITS = 32


def _exact_witnesses(M, f, Ws):
    """Two exact, linearly independent positive definite solutions W (f x f) of the exact rows ``M``
    (pairs on a face), from the float witnesses ``Ws`` (rationalised, projected onto the solutions).
    Returns ``(solutions, None)`` or ``(None, reason)``."""
    U = f * (f + 1) // 2
    N = _null_space(M, ncols=U)
    if N.shape[1] < 2:
        return None, f"only {N.shape[1]} exact solution(s) on the face"
    diag = np.triu_indices(f)[0] == np.triu_indices(f)[1]
    exact_W = []
    for i, Wn in enumerate(Ws):
        w_num = svec(np.asarray(Wn, dtype=float)) / np.where(diag, 1.0, np.sqrt(2.0))
        w = _project_exact(_rationalize(w_num, 10**8), N)
        if w is None:
            return None, f"witness {i + 1} cannot be made exact"
        ok, rk = _psd_rank(_smat_exact(w, f))
        if not (ok and rk == f):
            return None, f"witness {i + 1}: its exact version is not positive definite on the face"
        exact_W.append(w)
    if _rank(np.array([exact_W[0], exact_W[1]], dtype=object)) != 2:
        return None, "the exact witnesses are multiples of each other"
    return exact_W, None


def _exact_step(Yq, Zq, G, step, t, snap_limit, rough=False, rough_limit=None):
    """One facial-reduction step in rational arithmetic on the exact face ``G`` (columns): the
    multipliers made exact (as stored, else snapped onto the kernel the numbers point at: its RREF
    rationalised, or short integer vectors found by LLL) so that their combination is PSD of the
    step's rank.  ``rough``: also look for short integer vectors only roughly near the kernel (LLL
    accepting vectors within 3e-2 ... 3e-7 of it, :data:`ROUGH_WEIGHTS`), for an interior-point step
    whose kernel is known only to about 1e-3; what is found is checked exactly all the same (those
    eliminations bounded by ``rough_limit`` when given).  Returns
    ``(alpha, K, None)`` with K an exact basis of the combination's kernel (in G's coordinates), or
    ``(None, "fail" or "unsure", reason)``."""
    Yg, Zg = _mm(Yq[step.indices], G), _mm(Zq[step.indices], G)
    if not np.any(step.values):
        return None, "fail", f"step {t + 1}: every multiplier is zero"
    Yf, Zf = _X.to_float(Yg), _X.to_float(Zg)
    alpha = _rational_multipliers(Yf, Zf, step.values)
    S = _comb(Yg, Zg, alpha)
    ok, rk = _psd_rank(S)
    if not (ok and rk == step.rank):
        reason = None
        seen = []
        for how in _snap_hows(rough):
            C = _numeric_kernel(Yg, Zg, np.asarray(step.values, dtype=float), step.rank, how=how)
            if C is None:
                reason = reason or f"step {t + 1}: no exact PSD combination of rank {step.rank}"
                continue
            if _known_kernel(C, seen):
                continue  # a kernel already tried (another way found the same)
            seen.append(C)
            limit = SNAP_MAX_WORK if snap_limit is None else snap_limit
            if isinstance(how, tuple) and rough_limit is not None:
                limit = min(limit, rough_limit)
            N = _multiplier_space(Yg, Zg, C) if snap_work(Yg, Zg, C) <= limit else None
            if N is None or N.shape[1] == 0:
                # (an elimination too large is not run: rational elimination on a system this size and
                # height can run for minutes; the floating-point check decides)
                reason = f"step {t + 1}: the multipliers cannot be made exact"
                continue
            ok = False
            for cand, nearest in _snap_starts(alpha, step.values):
                if nearest == "exact":
                    # the exact projection costs seconds at p = 20 (its numbers grow to thousands of bits):
                    # not run when a nearby exact point of the space is clearly not PSD (an eigenvalue
                    # below -1e-6 of the scale, against a projection error of about 1e-16 times N's
                    # condition; a skip could only leave the step unproved, never accept one)
                    try:
                        near = _near_point(_X.to_float(cand).reshape(-1), N)
                    except (OverflowError, ValueError):
                        near = None
                    if near is not None and _clearly_not_psd(Yf, Zf, near):
                        ok, rk = False, 0
                        continue
                snapped = _project_exact(cand, N) if nearest == "exact" else _near_point(cand, N)
                if snapped is None or _clearly_not_psd(Yf, Zf, snapped):
                    ok, rk = False, 0
                    continue
                S2 = _comb(Yg, Zg, snapped)
                ok, rk = _psd_rank(S2)
                if ok and rk == step.rank:
                    break
            if ok and rk == step.rank:
                alpha, S = snapped, S2
                break
            reason = (f"step {t + 1}: the exact combination is {'not PSD' if not ok else f'of rank {rk}'}, "
                      f"not PSD of rank {step.rank}")
        else:
            return None, "unsure", reason
    return alpha, _null_space(S), None


def _snap_starts(alpha, values):
    """Where a snap starts, in order, each ``(multipliers, how)``: the rationalised multipliers (simple
    rationals: structured feedback), projected onto the exact space exactly (``"exact"``, the nearest
    point); then the stored floats themselves, mapped to a point of the space by floating-point least
    squares on its exact basis (``"float"``: exact all the same, since the basis is exact and every float a
    rational, and its numbers stay short where the exact projection's grow to thousands of bits).  The
    second keeps an interior-point combination whose smallest non-zero eigenvalue is below the
    rationalisation's error (denominators up to 1e6) but far above rounding: 2-sparse integer pairs,
    p = 20, rank 5, 114 pairs, eigenvalues 1.3e-5 ... 0.38 of the SDP's combination above its kernel;
    the first start's projection was not PSD and the solve was undecided."""
    return (alpha, "exact"), (np.asarray(values, dtype=float), "float")


def _near_point(x, N):
    """A point of span(N) (N exact, columns) near the float vector x: ``N c`` with ``c`` from float least
    squares on N's columns scaled to unit norm, each float of c taken as the rational it is.  Exactly in
    the span whatever the rounding; None when N does not fit in floats."""
    try:
        Nf = _X.to_float(N)
    except (OverflowError, ValueError):
        return None
    norms = np.linalg.norm(Nf, axis=0)
    if not (np.all(np.isfinite(Nf)) and np.all(norms > 0) and np.all(np.isfinite(norms))):
        return None
    c = np.linalg.lstsq(Nf / norms, np.asarray(x, dtype=float), rcond=None)[0] / norms
    if not np.all(np.isfinite(c)):
        return None
    return _mm(N, _q(c).reshape(-1, 1)).reshape(-1)


def _clearly_not_psd(Yf, Zf, alpha) -> bool:
    """True when the combination of the exact pairs (``Yf``, ``Zf``: their float values) with the exact
    multipliers ``alpha`` has, computed in floating point, an eigenvalue below -1e-6 of
    ``sum_i |alpha_i| (|y_i|^2 + |z_i|^2)``: then it is not PSD (the rounding of the pairs, the
    multipliers, the products and the eigenvalue solver move an eigenvalue by well under 1e-12 of that
    sum at these sizes), and the exact check, seconds at p = 20, is skipped.  Only ever skips; what is
    accepted is checked exactly."""
    try:
        a = _X.to_float(alpha).reshape(-1)
    except (OverflowError, ValueError):
        return False
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(Yf)) and np.all(np.isfinite(Zf))):
        return False
    w = np.einsum("ij,ij->i", Yf, Yf) + np.einsum("ij,ij->i", Zf, Zf)
    scale = float(np.abs(a) @ w)
    if not (np.isfinite(scale) and scale > 0):
        return False
    S = (Yf * a[:, None]).T @ Yf - (Zf * a[:, None]).T @ Zf
    lam = float(np.linalg.eigvalsh((S + S.T) / 2)[0])
    return np.isfinite(lam) and lam < -1e-6 * scale


def _snap_hows(rough):
    """The ways a step's float kernel is made exact, in order (:func:`_numeric_kernel`'s ``how``): its
    RREF rationalised, short integer vectors by LLL, and with ``rough`` LLL accepting vectors only
    roughly near it (:data:`ROUGH_WEIGHTS`)."""
    return ["rref", "lattice"] + ([("lattice", w) for w in ROUGH_WEIGHTS] if rough else [])


def _known_kernel(C, seen) -> bool:
    """Whether the exact basis ``C`` spans the same space as one in ``seen``."""
    return any(K.shape == C.shape and _rank(np.hstack([K, C])) == C.shape[1] for K in seen)


#: LLL weights for a rough kernel (:func:`_exact_step` with ``rough=True``): vectors within 30 / weight
ROUGH_WEIGHTS = (1e3, 1e4, 1e5, 1e6, 1e8)
#: verify's own rough snapping runs only eliminations up to this size (:func:`snap_work`), so that a
#: certificate cannot buy five more of the largest eliminations
ROUGH_VERIFY_MAX_WORK = 300_000


def exact_face(Y, Z, steps, *, start=None, snap_limit=None, rough=False):
    """The face that facial-reduction ``steps`` leave, in rational arithmetic, for pairs stored as
    floats ``Y``, ``Z`` (every float is a rational; this is for integer pairs, where the elimination
    stays cheap): each step's multipliers made exact as :func:`verify` makes them (snapped onto the
    kernel their float combination points at; verify also tries rough kernels, here only with
    ``rough=True``), so that its exact combination is PSD of the step's rank.  Returns ``(G, alphas)``: an exact basis of the face (a (p, f) object array of rationals) and
    each step's exact multipliers; or None when some step cannot be made exact.  ``start``: an exact
    face basis (as returned) to begin from instead of the whole space; ``rough``: also snap onto short
    integer vectors only roughly near a step's kernel (see :func:`_exact_step`).  Used by the exact
    solver to replace an interior-point step, whose face is known only to about the square root of
    the SDP's accuracy, by the exact face it points at."""
    Yq, Zq = _q(np.asarray(Y, dtype=float)), _q(np.asarray(Z, dtype=float))
    G = _identity(Yq.shape[1]) if start is None else start
    alphas = []
    limit = SNAP_MAX_WORK_INTEGER if snap_limit is None else snap_limit
    for t, step in enumerate(steps):
        alpha, K, _ = _exact_step(Yq, Zq, G, step, t, limit, rough=rough)
        if alpha is None:
            return None
        alphas.append(alpha)
        G = _mm(G, K)
    return G, alphas


def _rational_multipliers(Yk, Zk, values):
    """Nearby rational multipliers (exact ones are snapped later if these fail).  ``Yk``, ``Zk``: the
    step's pairs on the current face (floats).  Each multiplier is rationalised relative to its pair's
    size there: ``values_k * s_k`` (s_k the power of two nearest to |y_k|^2 + |z_k|^2, an exact scaling)
    over the largest such product, to denominators of 1e6, then divided by s_k again (a pair that
    vanishes on the face gets 0).  Rationalising the raw values over their largest one zeroed every
    multiplier that mattered when the largest belonged to a pair already removed by an earlier step
    (p = 20, rank 1: multipliers 1e-18 against 0.5), and the exact combination came out of rank 0."""
    values = np.asarray(values, dtype=float)
    size = np.einsum("ij,ij->i", Yk, Yk) + np.einsum("ij,ij->i", Zk, Zk)
    exps = np.where(size > 0, np.round(np.log2(np.where(size > 0, size, 1.0))), 0).astype(np.int64)
    beta = np.where(size > 0, np.ldexp(values, exps), 0.0)
    if not np.any(beta):
        beta = values
    beta = _rationalize(beta / np.max(np.abs(beta)))
    return np.array([b / _X.q(2.0 ** int(e))[()] for b, e in zip(beta, exps)], dtype=object)


def _comb(Yg, Zg, alpha):
    S = _mm((Yg * alpha[:, None]).T, Yg) - _mm((Zg * alpha[:, None]).T, Zg)
    return S


def _numeric_kernel(Yg, Zg, alpha, rank, how="rref"):
    """Rational basis (columns, exact) of the kernel of the float combination: ``how="rref"``, its reduced
    row echelon form rationalised (denominators up to 1e6); ``how="lattice"``, short integer vectors
    found by LLL (:func:`featlib._exact.integer_vectors_near`), which recovers kernels whose RREF has
    larger denominators (the range of an integer target at p = 20, rank 15: denominators 8.7e6) as long
    as they are spanned by short integer vectors; ``how=("lattice", weight)``, the same accepting vectors
    within ``30 / weight`` of the kernel (a rough kernel).  None when no basis is found."""
    Yf, Zf = np.array(Yg, dtype=float), np.array(Zg, dtype=float)
    S = (Yf * alpha[:, None]).T @ Yf - (Zf * alpha[:, None]).T @ Zf
    S = (S + S.T) / 2
    w, V = np.linalg.eigh(S)
    f = len(w)
    K = V[:, : f - rank]  # eigenvectors of the smallest eigenvalues
    if K.shape[1] == 0:
        return np.empty((f, 0), dtype=object)
    if how == "lattice":
        return _X.integer_vectors_near(K)
    if isinstance(how, tuple):
        return _X.integer_vectors_near(K, weight=how[1], tol=30.0 / how[1])
    # reduced row echelon form of K^T: pivot columns by QR with pivoting
    _, _, piv = sla.qr(K.T, pivoting=True)
    piv = np.sort(piv[: K.shape[1]])
    E = np.linalg.solve(K.T[:, piv], K.T)  # identity on the pivot columns
    return _rationalize(E.T, 10**6)


#: largest (pairs x face dimension x kernel dimension) x (bit height of the largest entry) for which a
#: step's multipliers are snapped to exact ones by rational elimination.  The cost grows with both: a
#: p = 12 step over 198 sampled float pairs (14,256 entries of 56 bits: 798,336) took over 10 minutes on
#: Python Fractions and 18.6 s on FLINT; integer pairs at p = 12 (5,400 entries of 16 bits) take 0.4 s.
SNAP_MAX_WORK = 300_000
#: the same bound when every stored number is an integer (exact teacher output): elimination on small
#: integers does not blow up the way it does on floats' 53-bit numerators (p = 20, rank 6: 16,800 entries
#: of 22 bits, 369,600, and 2.4 s for the whole verify, measured)
SNAP_MAX_WORK_INTEGER = 5_000_000


def snap_work(Yg, Zg, C) -> int:
    """The size measure that :data:`SNAP_MAX_WORK` bounds: entries of the snapping system times the
    largest bit height (numerator and denominator) among the step's exact numbers."""
    entries = Yg.shape[0] * Yg.shape[1] * C.shape[1]
    if entries == 0:
        return 0
    height = max(_X.height_bits(x) for x in (Yg, Zg, C))
    return entries * height


def _multiplier_space(Yg, Zg, C):
    """An exact basis (columns) of the multipliers whose combination of the pairs ``Yg``, ``Zg`` vanishes
    on range(C)."""
    n = Yg.shape[0]
    # the linear map alpha -> vec(S(alpha) C), column by column (one column per pair)
    YC, ZC = _mm(Yg, C), _mm(Zg, C)
    A = (Yg[:, :, None] * YC[:, None, :] - Zg[:, :, None] * ZC[:, None, :]).reshape(n, -1).T
    return _null_space(A, ncols=n)


def snap_spaces(Y, Z, G, step, *, snap_limit, rough=False):
    """The exact kernels a combination ``step`` points at on the exact face ``G`` (columns, as
    :func:`exact_face` returns it), each with every multiplier vector whose exact combination vanishes
    there: a list of ``(Yg, Zg, C, N)`` (the step's pairs on the face, exact; a basis of the kernel; a
    basis of those multipliers, columns), one per kernel found (the ways :func:`_exact_step` tries,
    eliminations bounded by ``snap_limit``).  For the exact solver, when no start of :func:`_snap_starts`
    gives a PSD point (an interior-point combination whose smallest non-zero eigenvalue is below its
    distance from that space): it then looks in the space itself for a combination PSD of the step's
    rank.  Proves nothing by itself."""
    Yq, Zq = _q(np.asarray(Y, dtype=float)), _q(np.asarray(Z, dtype=float))
    Yg, Zg = _mm(Yq[step.indices], G), _mm(Zq[step.indices], G)
    values = np.asarray(step.values, dtype=float)
    out, seen = [], []
    for how in _snap_hows(rough):
        C = _numeric_kernel(Yg, Zg, values, step.rank, how=how)
        if C is None or C.shape[1] == 0 or snap_work(Yg, Zg, C) > snap_limit:
            continue
        if _known_kernel(C, seen):
            continue  # the same kernel as one found already
        seen.append(C)
        N = _multiplier_space(Yg, Zg, C)
        if N.shape[1]:
            out.append((Yg, Zg, C, N))
    return out

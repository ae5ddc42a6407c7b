"""The exact solver: facial reduction -> null space -> decide, each stage a module.

Plain least squares on ``<Phi, y y^T - z z^T> = 0`` ignores that Phi is PSD and, for Theorem 1's
feedback, leaves a large solution space (18-dimensional for p = 10, r = 8).  The PSD constraint
enters through *facial reduction* (Borwein and Wolkowicz):

1. **Reduce** (:mod:`featlib.solvers.reduce`).  A combination ``S = sum_k alpha_k (y_k y_k^T -
   z_k z_k^T)`` that is PSD and non-zero forces every PSD solution onto ``ker S``.  Single pairs
   with a zero side (Theorem 1's ``(0, v)``) are the cheap case; combinations that no single pair
   shows (the compact construction of ``teach(..., "compact")``, low-rank targets from generic
   samples) are found by an auxiliary SDP when cvxpy is installed, or handed over as checked
   hints.  Each step is recorded in the answer's :class:`~featlib.certificates.Certificate`.
2. **Null space** (:mod:`featlib.solvers.nullspace`).  On the final face the pair equalities are a
   linear system in ``svec(Psi)``; its null space L (QR + SVD, relative threshold ``rtol``; or back
   substitution for large sparse feedback) has dimension ``version_space_dim``.
3. **Decide** (:mod:`featlib.solvers.decide`).  ``dim L == 1``: identified.  ``dim L >= 2`` with a
   member positive definite on the face: not identified, with two PSD witnesses.  Otherwise go back
   to step 1: the theorem of the alternative says a PSD combination exists.  Only when neither is
   found numerically is the answer undecided (``decided=False``, :class:`~featlib.IdentifiabilityWarning`).

**Integer pairs** (up to powers of two) at verify's exact sizes (p <= 20) get two more chances, both
checked in rational arithmetic, because an interior-point step's face is known only to about the
square root of the SDP's accuracy (1e-2 ... 1e-4 near hidden faces), and the reduction after a wrong
face can go anywhere: each such step is *snapped* to the exact face it points at
(:func:`featlib.certificates.exact_face`: the multipliers projected onto those whose combination
vanishes on an exact kernel, its RREF rationalised or short integer vectors found by LLL, also only
roughly near the float kernel), and a solve still undecided is tried as "not identified" on a face
spanned by short integer vectors (:func:`_rational_face_not_identified`).  Measured on exact 2-sparse
and μ-model pairs at p = 10 (ranks 1 to 4, 576 solves each): 31 and 14 undecided before, 0 and 0 after
(see the Benchmarks page).  Float pairs are not snapped: their exact solution set is not the one a user
asks about (see :func:`featlib.verify`).  A float solve still undecided (p <= 20) gets one more chance: a
certificate built around a polished solution of the pairs (:func:`featlib.solvers.near.identified_around`:
one combination step vanishing on that solution's range, re-centred by an SDP), kept only when verify
proves it in floating point at margin 1e-2.

Large structured feedback does not go through the dense linear system:

* **sparse storage** (e.g. Theorem 2's 2-sparse pairs): the forced null directions are coordinate
  axes and are dropped; then back substitution (:func:`~featlib.solvers.nullspace.peel`) over the
  sparse constraints.  If it determines every unknown and satisfies every row, the solution space
  is one-dimensional, with no rank decision.  Otherwise shift-invert Lanczos on ``M^T M`` (up to
  ``LANCZOS_MAX_UNKNOWNS``), else the dense path.
* **shared-basis storage** (Theorem 1's and the compact construction's pairs):
  :mod:`featlib.solvers.basis`.

``solve(fb, "exact", face_hint=...)`` takes candidate facial-reduction multipliers (a list of
``(indices, values)``; ``teach(..., "compact")`` stores its own in ``fb.meta["face_hint"]``, which
is used when no hint is passed).  They are checked against the pairs before use, so a wrong hint
cannot produce a wrong answer.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
import warnings

import numpy as np
import scipy.sparse as sp
import scipy.linalg as sla
import scipy.sparse.linalg as spla

from .. import _checks
from ..certificates import Certificate, FaceStep
from ..feedback import PairFeedback, row_sq_norms
from .._blas import numpy_blas_single_thread
from ..linalg import right_singular, smat, svec, svec_dim, svec_outer_difference_sparse
from . import _lsq, decide, near, reduce
from ._result import (CHOLESKY_CERTIFICATE_MIN, Solution, max_relative_residual, normalise, psd_certificate,
                      psd_generator)
from .nullspace import constraint_rows, dense_null_space, gram_null_space, peel
from ..certificates import EXACT_MAX_UNKNOWNS_INTEGER, exact_face, snap_spaces, verify
from .. import _exact as _X
from ..linalg import svec_outer_difference
from .basis import solve_basis

__all__ = ["solve_exact", "reduce_null_space"]

#: dense SVD up to this many unknowns q(q+1)/2 of the reduced problem (p ~ 77 when nothing is reduced)
DENSE_MAX_UNKNOWNS = 3000

#: shift-invert Lanczos on M^T M only up to this many unknowns: beyond it the sparse LU fills in
#: (measured: p = 512, 200,000 sampled 3-sparse pairs, 131,328 unknowns, no answer in 500 s)
LANCZOS_MAX_UNKNOWNS = 20_000

#: the dense path materialises the activations: refuse beyond this many entries (n * p)
DENSE_MAX_ENTRIES = 50_000_000

#: the solver snaps an inexact step of integer pairs to an exact one (rational elimination) only up to this
#: size (:func:`featlib.certificates.snap_work`): the 2-sparse steps at p = 10 measure at most 63,180
#: (milliseconds); a Gaussian step at p = 20 with 195 pairs measures 897,000 and took 3.7 s and 44 s for its
#: two snapping attempts, where the float refinement decides it in a second
SOLVER_SNAP_MAX_WORK = 300_000
#: ... and, for a solve that the first pass leaves undecided, once more up to this size: 2-sparse steps at
#: p = 20, rank 7, 157 to 184 pairs measure 430,000 to 960,000 (8 bisection probes of 30 undecided at the
#: first limit); with this one two of them were identified in 6 and 9 s (with other jobs running)
SOLVER_SNAP_RETRY_MAX_WORK = 2_000_000

#: the auxiliary facial-reduction SDP (a q x q PSD variable) runs up to this face dimension
COMBINATION_MAX_DIM = 40

#: most facial-reduction rounds of the dense path (each removes at least one direction)
MAX_ROUNDS = 200

PD_CERTIFICATE_MIN = decide.PD_CERTIFICATE_MIN
#: a positive definite point with a smaller relative lambda_min than PD_CERTIFICATE_MIN (but above
#: this) gives "not identified" only when featlib.verify proves the certificate (thin PD regions:
#: a pair with a rounding-level side)
THIN_PD_MIN = 1e-13
#: a facial-reduction combination must have its smallest kept eigenvalue at least this many times the
#: rounding bound of forming it (:func:`_material`)
MATERIAL_FACTOR = 1e3
#: a positive definite point from the SDP whose smallest eigenvalue (trace 1) is above this is taken
#: before any search for a PSD combination: far above the SDP's accuracy (~1e-8), so a combination
#: cannot exist
CLEAR_PD_MIN = 1e-6
#: an unproved "not identified" verdict on a face from an inexact combination step is kept only when the
#: face is accurate to this (:func:`_inexact_not_identified`); measured: 0.025 on a wrong verdict (p = 20,
#: reached with a less accurate null-space basis than the current one), 2.5e-2 to 9e-2 on 3 of 84 2-sparse
#: solves at p = 10 (now undecided; whether they were wrong is not known), 3e-7 to 1.3e-3 on the sampled
#: near-threshold cases of the tests (kept; verify is inconclusive on them)
NOT_IDENTIFIED_MAX_FACE_TOL = 1e-2
#: a single ray left by facial reduction is the answer when it satisfies every pair to this relative
#: residual (rounding of the face and of the pairs), else the pairs are inconsistent
RAY_RTOL = 1e-12


def reduce_null_space(Y, Z, *, zero_rtol=1e-13, parallel_rtol=1e-12, rank_rtol=1e-10, max_rounds=None):
    """Facial reduction of dense pairs by single semidefinite pairs: returns (Q, N), orthonormal.

    ``N`` spans the directions every PSD solution must annihilate (forced by semidefinite pair
    matrices, iterated); ``Q`` spans their orthogonal complement, so every PSD solution is
    ``Q Psi Q^T``.  (The SDP back end's first step; the exact solver records these rounds as
    certificate steps and goes on with PSD combinations.)
    """
    p = Y.shape[1]
    Q = np.eye(p)
    scale = np.einsum("ij,ij->i", Y, Y) + np.einsum("ij,ij->i", Z, Z)
    rounds = 0
    while Q.shape[1] > 0:
        out = reduce.pair_step(Y @ Q, Z @ Q, scale, zero_rtol=zero_rtol, parallel_rtol=parallel_rtol,
                               rank_rtol=rank_rtol)
        if out is None:
            break
        Q = Q @ out[1]
        rounds += 1
        if max_rounds is not None and rounds >= max_rounds:
            break
    N = _complement(Q, p)
    return Q, N


def _complement(Q, p):
    if Q.shape[1] == p:
        return np.zeros((p, 0))
    if Q.shape[1] == 0:
        return np.eye(p)
    U, _, _ = np.linalg.svd(Q, full_matrices=True)
    return U[:, Q.shape[1]:]


def _check_tolerances(**tolerances):
    """Each relative tolerance must be a number in (0, 1): nan, 0, negatives and 5 would turn the
    rank decisions into false proofs."""
    for name, value in tolerances.items():
        if isinstance(value, (bool, str)) or not isinstance(value, numbers.Real):
            raise _checks.ArgumentTypeError(f"{name} must be a number in (0, 1); got {value!r}.")
        v = float(value)
        if not (np.isfinite(v) and 0 < v < 1):
            raise _checks.ArgumentError(f"{name} must be a number in (0, 1); got {value!r}. Tolerances are relative "
                             f"(the exact solver's defaults: rtol=1e-9, psd_rtol=1e-8, zero_rtol=1e-13).")


def _hints(face_hint, n):
    if face_hint is None:
        return []
    out = []
    if isinstance(face_hint, (str, bytes)) or not hasattr(face_hint, "__iter__"):
        raise _checks.ArgumentTypeError(f"face_hint must be a list of (indices, values) pairs; got {type(face_hint).__name__}.")
    for k, h in enumerate(face_hint):
        try:
            idx, val = h
            idx = np.asarray(idx, dtype=np.int64).ravel()
            val = np.asarray(val, dtype=float).ravel()
        except (TypeError, ValueError):
            raise _checks.ArgumentTypeError(f"face_hint[{k}] must be a pair (indices, values) of equal-length arrays.") from None
        if idx.shape != val.shape or (idx.size and (idx.min() < 0 or idx.max() >= n)) or not np.all(np.isfinite(val)):
            raise _checks.FeedbackError(
                f"face_hint[{k}] does not fit this feedback ({n} pairs): indices must lie in [0, {n}) and values "
                f"be finite, one value per index.")
        out.append((idx, val))
    return out


# ============================================================================================
# the solver


def solve_exact(
    feedback: PairFeedback,
    *,
    rtol: float = 1e-9,
    psd_rtol: float = 1e-8,
    zero_rtol: float = 1e-13,
    sparse: bool | None = None,
    basis_path: bool | None = None,
    combinations: bool = True,
    face_hint=None,
    warn: bool = True,
) -> Solution:
    """Exact PSD-aware solve of a feedback set (see the module docstring for the method).

    Parameters
    ----------
    feedback : PairFeedback
    rtol : float
        Relative singular-value threshold defining the numerical null space of the reduced system
        (dense path).  The sparse path resolves only to about ``sqrt(machine eps)`` and uses
        ``max(rtol, 1e-6)``.
    psd_rtol : float
        A generator of a one-dimensional solution space counts as PSD if its smallest eigenvalue is
        ``>= -psd_rtol * largest``.
    zero_rtol : float
        A pair side with ``||side||^2 <= zero_rtol * ||other side||^2`` counts as zero (a null pair).
    sparse : bool or None
        Force the scipy.sparse path (True), the dense path (False), or choose (None: for sparsely
        stored feedback, back substitution first; then the dense path up to
        ``DENSE_MAX_UNKNOWNS`` unknowns, shift-invert Lanczos beyond).
    basis_path : bool or None
        For feedback stored over a shared basis, first try the basis path
        (:mod:`featlib.solvers.basis`), falling back to the dense path when its structure does not
        fit (None or True, the default); False skips it.
    combinations : bool
        Look for PSD *combinations* of pairs with an auxiliary SDP (needs cvxpy; up to a face of
        dimension ``COMBINATION_MAX_DIM``) when single pairs and the positive-definite search do
        not decide.  Without it such problems come back undecided.
    face_hint : list of (indices, values), optional
        Candidate facial-reduction multipliers, checked before use (see the module docstring): their
        combination must be PSD with a clear rank on the current face.  A face is taken as exact only for
        simple rational multipliers (:func:`~featlib.solvers.reduce.simple_rationals`, as the compact
        teacher's) PSD to 1e-12; any other hint is an inexact step, like the auxiliary SDP's.
    warn : bool
        Emit :class:`~featlib.IdentifiabilityWarning` when identification cannot be decided.

    Raises
    ------
    InconsistentFeedbackError
        When no non-zero PSD matrix satisfies the pairs to the tolerances (noisy answers: use
        ``method="sdp"``, which minimises the residual under the PSD constraint).
    """
    if not isinstance(feedback, PairFeedback):
        raise _checks.ArgumentTypeError(f"solve expects a PairFeedback; got {type(feedback).__name__}.")
    _check_tolerances(rtol=rtol, psd_rtol=psd_rtol, zero_rtol=zero_rtol)
    hints = _hints(face_hint, len(feedback))
    if face_hint is None and feedback.meta.get("face_hint") is not None:
        # the teacher's own multipliers (teach(..., "compact")); checked before use like any hint, and
        # ignored when they no longer fit (a subset of the pairs keeps the meta of the whole)
        try:
            hints = _hints(feedback.meta["face_hint"], len(feedback))
        except _checks.FeatlibError:
            hints = []
    t0 = time.perf_counter()
    p = feedback.p
    if len(feedback) == 0:
        return _no_pairs(p, t0)
    use_sparse = sparse
    if use_sparse is None:
        use_sparse = feedback.storage == "sparse" and not hints
    if use_sparse:
        # small problems only try back substitution (cheap); the Lanczos step is for large ones
        lanczos = sparse is True or DENSE_MAX_UNKNOWNS < svec_dim(p) <= LANCZOS_MAX_UNKNOWNS
        out = _solve_sparse(feedback, rtol=max(rtol, 1e-6), psd_rtol=psd_rtol, zero_rtol=zero_rtol,
                            lanczos=lanczos)
        if out is not None:
            out.seconds = time.perf_counter() - t0
            return out
    if feedback.storage == "basis" and basis_path is not False:
        out = solve_basis(feedback, psd_rtol=psd_rtol, hints=hints)
        if out is not None:
            out.seconds = time.perf_counter() - t0
            return out
    if len(feedback) * p > DENSE_MAX_ENTRIES:
        if feedback.storage in ("sparse", "basis"):
            why = ("back substitution over the pairs could not determine every entry, so they probably do not "
                   "identify Phi* (for example sampled pairs below the bound)")
        else:
            why = "dense pairs at this size need the sparse path: store them with PairFeedback.to_sparse()"
        raise _checks.FeedbackError(
            f"{len(feedback)} pairs in R^{p} are too many for the dense exact path (it would hold "
            f"{2 * len(feedback) * p * 8 / 1e9:.1f} GB of activations), and {why}. Use method='gd', which "
            f"estimates a low-rank Phi from such feedback."
        )
    with numpy_blas_single_thread():  # two OpenBLAS pools (numpy's and scipy's wheels) would fight (featlib._blas)
        sol = _solve_dense(feedback, rtol=rtol, psd_rtol=psd_rtol, zero_rtol=zero_rtol, hints=hints,
                           combinations=combinations)
    sol.seconds = time.perf_counter() - t0
    if not sol.decided and warn:
        extra = "" if reduce.have_sdp() else " (pip install 'featlib[sdp]': the combination search needs cvxpy)"
        warnings.warn(
            f"exact solver: the pair equalities leave a {sol.version_space_dim}-dimensional solution space in "
            f"which neither a positive definite member nor a further PSD combination of pairs was found{extra}, "
            f"so it cannot tell whether the PSD constraint pins Phi down. Use solve(..., method='sdp') for its "
            f"numerical uniqueness test.",
            _checks.IdentifiabilityWarning,
            stacklevel=4,  # solve -> _solve -> solve_exact: point at the caller of solve
        )
    return sol


def _no_pairs(p, t0):
    """No pairs: every PSD matrix is consistent.  Identified only for p = 1 (one ray)."""
    if p == 1:
        cert = Certificate(verdict="identified", face_dim=1, reduced_rank=0, unknowns=1, face=np.eye(1))
        return Solution(phi=np.eye(1), identified=True, version_space_dim=1, residual=0.0, method="exact",
                        seconds=time.perf_counter() - t0, certificate=cert)
    W1 = np.eye(p) / p
    W2 = W1.copy()
    W2[0, 0] *= 1.5
    cert = Certificate(verdict="not identified", face_dim=p, reduced_rank=0, unknowns=svec_dim(p), face=np.eye(p),
                       witnesses=(W1, W2))
    return Solution(phi=W1, identified=False, version_space_dim=svec_dim(p), residual=0.0, method="exact",
                    seconds=time.perf_counter() - t0, info={"path": "empty"}, certificate=cert)


class _Contradiction(Exception):
    """Raised inside the facial-reduction loop when the pairs seem to leave no non-zero PSD matrix;
    :func:`_solve_dense` decides what that means (a Farkas certificate, a refined step, or undecided)."""

    def __init__(self, message, kind, *, F, steps, faces, face_tol, first_inexact, phi0=None, target=None,
                 after=None):
        super().__init__(message)
        self.message, self.kind, self.F, self.steps, self.faces = message, kind, F, steps, faces
        self.face_tol, self.first_inexact, self.phi0, self.target = face_tol, first_inexact, phi0, target
        self.after = after  # the face just after the first inexact step (a second candidate answer lives there)


def _integer_pairs(feedback) -> bool:
    """Integer pairs (up to powers of two) at the sizes verify checks in rational arithmetic."""
    return svec_dim(feedback.p) <= EXACT_MAX_UNKNOWNS_INTEGER and (feedback.has_integer_entries()
                                                                  or feedback.has_integer_pairs_up_to_scale())


def _solve_dense(feedback, *, rtol, psd_rtol, zero_rtol, hints, combinations):
    """:func:`_reduce_dense`, and for integer pairs that it leaves undecided: once more where a snap
    failed, with larger snapping eliminations allowed (:data:`SOLVER_SNAP_RETRY_MAX_WORK`), the other
    ranks the SDP's eigenvalues allow (:func:`_fallback_ranks`) and re-centred steps
    (:func:`_recentred_step`), then a proved "not identified" from a face spanned by short integer
    vectors (:func:`_rational_face_not_identified`).  For other (floating-point) pairs left undecided (p <= 20),
    "identified" with a certificate built around a polished solution when verify proves it
    (:func:`featlib.solvers.near.identified_around`)."""
    sol = _reduce_dense(feedback, rtol=rtol, psd_rtol=psd_rtol, zero_rtol=zero_rtol, hints=hints,
                        combinations=combinations)
    if not sol.decided and combinations and reduce.have_sdp() and _integer_pairs(feedback):
        # once more with snapping allowed the larger eliminations (seconds each) that the first pass skips,
        # where it tried to snap a step and could not
        again = None
        if sol.info.get("snap_failed"):
            again = _reduce_dense(feedback, rtol=rtol, psd_rtol=psd_rtol, zero_rtol=zero_rtol, hints=hints,
                                  combinations=combinations, snap_limit=SOLVER_SNAP_RETRY_MAX_WORK)
        if again is not None and again.decided:
            again.info["snap_retry"] = True
            return again
        found = _rational_face_not_identified(feedback, sol, rtol)
        if found is not None:
            return found
    elif not sol.decided and combinations and reduce.have_sdp() and feedback.p <= near.NEAR_AUTO_MAX_P:
        # floating-point pairs: a certificate built around a polished solution, proved by verify
        # (near.identified_around); measured on 2-sparse and mu-model pairs at p = 10 near their thresholds
        around = near.identified_around(feedback)
        if around is not None:
            around.info["undecided_before"] = (sol.info.get("undecided_reason") or sol.info.get("contradiction")
                                               or "undecided")
            return around
    return sol


def _rational_face_not_identified(feedback, sol, rtol):
    """An undecided solve of integer pairs, decided "not identified" when the smallest face of the
    solutions is spanned by short integer vectors: the SDP's solution of largest rank (its smallest
    eigenvalue then about 0), its range at the ranks its eigenvalue gaps suggest rounded to integer
    vectors by LLL (:func:`~featlib.solvers.decide.rational_face_witnesses`), and two positive definite
    solutions on that face, proved by :func:`featlib.verify` in rational arithmetic (no facial-reduction
    steps are needed: two independent PSD solutions are the whole claim).  Measured on the 9 exact
    2-sparse solves at p = 10 that snapping with verify's own tolerances left undecided (rank 1 to 4, 9 to
    43 pairs; their SDP faces graded down to 1e-7): all 9 are "not identified", on integer faces of
    dimension 3 to 5.  Snapping onto rough kernels (added after) decides those 9 first, also "not
    identified"; how often this fallback still decides a solve is not measured.  None when no such face
    is found or verify does not prove it."""
    Y, Z = feedback.dense_y(), feedback.dense_z()
    p = feedback.p
    scale = np.einsum("ij,ij->i", Y, Y) + np.einsum("ij,ij->i", Z, Z)
    L, _, _ = _face_null_space(Y, Z, scale, 1e-12, rtol)
    if L.shape[1] < 2 or p > COMBINATION_MAX_DIM:
        return None
    X, _ = decide.pd_point_sdp(L, p)
    if X is None:
        return None
    got = decide.rational_face_witnesses(Y, Z, X, _gap_ranks(np.linalg.eigvalsh(X)))
    if got is None:
        return None
    B, W1, W2, m = got
    k = B.shape[1]
    cert = Certificate(verdict="not identified", steps=(), face_dim=k, reduced_rank=svec_dim(k) - m,
                       unknowns=svec_dim(k), face=B, witnesses=(W1, W2), method="rational face")
    if not verify(feedback, cert, exact=True).valid:
        return None
    info = {key: v for key, v in sol.info.items() if key not in ("undecided_reason", "contradiction")}
    info.update(not_identified_by="rational face", undecided_before=(sol.info.get("undecided_reason")
                                                                     or sol.info.get("contradiction") or "undecided"))
    phi = normalise(B @ W1 @ B.T)
    return Solution(phi=phi, identified=False, version_space_dim=m, residual=max_relative_residual(feedback, phi),
                    method="exact", seconds=0.0, decided=True, info=info, certificate=cert)


def _reduce_dense(feedback, *, rtol, psd_rtol, zero_rtol, hints, combinations, snap_limit=None):
    """Facial reduction, then the null space on the face.  A contradiction (no non-zero PSD matrix
    seems to satisfy the pairs) is reported as :class:`InconsistentFeedbackError` only with a
    certificate that :func:`featlib.verify` accepts (a facial-reduction sequence whose last
    combination is positive definite: a Farkas certificate).  A contradiction reached after a
    combination step that is only accurate to ``face_tol`` is not reported: that step is refined
    (the answer polished by Gauss-Newton, the multipliers projected onto its range) and the
    reduction rerun; if that fails, the answer is undecided."""
    Y, Z = feedback.dense_y(), feedback.dense_z()
    p = feedback.p
    scale = np.einsum("ij,ij->i", Y, Y) + np.einsum("ij,ij->i", Z, Z)
    F = np.eye(p)
    steps, faces = [], []
    info = {"path": "dense"}
    hint_tol, first_hint = 0.0, None
    for idx, val in hints:
        out = reduce.hint_step(Y[idx] @ F, Z[idx] @ F, np.arange(idx.size), val)
        if out is not None and _material(Y[idx] @ F, Z[idx] @ F, out[0], scale[idx], p):
            step, K, accuracy = out
            if accuracy > 1e-12:  # a hint whose face is not exact to rounding: an inexact step like an SDP's
                hint_tol = max(hint_tol, accuracy)
                first_hint = len(steps) if first_hint is None else first_hint
            steps.append(FaceStep(indices=idx, values=val, rank=step.rank, kind="hint"))
            faces.append(F)
            F = F @ K
    # integer pairs at verify's exact sizes: an inexact combination step is snapped to the exact face it
    # points at (rational arithmetic, as verify does), so that the reduction goes on from an exact face
    snap = (SOLVER_SNAP_MAX_WORK if snap_limit is None else snap_limit) if _integer_pairs(feedback) else 0
    opts = dict(rtol=rtol, psd_rtol=psd_rtol, zero_rtol=zero_rtol, combinations=combinations, snap=snap)
    try:
        sol = _facial_loop(feedback, Y, Z, scale, steps, faces, F, hint_tol, info, first_inexact=first_hint, **opts)
        state = info.pop("_state")
        if sol.identified and state[2] is not None:
            # an inexact combination step: refine it on the polished answer, so that the certificate's
            # combination vanishes on the answer's range to rounding (what verify needs), and rerun
            refined = _refine_step(feedback, Y, Z, scale, state[0], state[1], state[2], sol.phi)
            if refined is not None:
                steps2, faces2, F2, tol = refined
                try:
                    again = _facial_loop(feedback, Y, Z, scale, steps2, faces2, F2, tol, dict(info), **opts)
                    again.info.pop("_state", None)
                    if again.identified and np.abs(again.phi - sol.phi).max() < 1e-8:
                        again.info["refined_step"] = True
                        return again
                except (_Contradiction, _checks.FeatlibError):
                    pass
            # not refined: the verdict stands only if its answer satisfies the pairs and verify proves it
            # (2-sparse integer pairs, p = 20, rank 6, 136 pairs: a face accurate to 1.7e-2, then two single-pair
            # steps on it left one ray, and the "identified" answer violated the pairs by 1.6e-2 and was at
            # relative error 0.96 from the target; the single-ray check allows 100 x face_tol)
            if not _inexact_identified_holds(feedback, sol):
                info = dict(sol.info)
                info["undecided_reason"] = (
                    f"'identified' on a face from an inexact combination step (accurate to {sol.info.get('face_tol', 0):.1e}) "
                    f"that could not be refined; its answer has relative residual {sol.residual:.1e} and verify does not "
                    "prove it")
                return dataclasses.replace(sol, decided=False, identified=False, certificate=None, info=info)
        if sol.decided and not sol.identified and state[2] is not None:
            return _inexact_not_identified(feedback, Y, Z, scale, sol, state, opts)
        return sol
    except _Contradiction as c:
        if c.face_tol > 1e-12:
            info["refined_step"] = False
            refined = _refine_step(feedback, Y, Z, scale, c.steps, c.faces, c.first_inexact, c.phi0)
            if refined is None:
                # a second candidate: the least-squares solution on the face just after the inexact step
                # (where the contradiction arose there may be no candidate, e.g. every direction removed, or
                # only a wrong one, e.g. a single ray left when the target has rank 2)
                refined = _refine_step(feedback, Y, Z, scale, c.steps, c.faces, c.first_inexact,
                                       _candidate_on_face(Y, Z, scale, c.after))
            if refined is not None:
                info["refined_step"] = True
                steps, faces, F, tol = refined
                try:
                    sol = _facial_loop(feedback, Y, Z, scale, steps, faces, F, tol, info, **opts)
                    info.pop("_state", None)
                    return sol
                except _Contradiction as c2:
                    c = c2
        return _contradiction(feedback, Y, Z, c, info)


#: an "identified" answer on a face from an unrefined inexact step is kept only with a relative residual
#: at most this (and verify's proof, :func:`_inexact_identified_holds`)
INEXACT_IDENTIFIED_MAX_RESIDUAL = 1e-9


def _inexact_identified_holds(feedback, sol) -> bool:
    """Whether an "identified" verdict reached on a face from an inexact step that could not be refined
    stands: its answer satisfies every pair (:data:`INEXACT_IDENTIFIED_MAX_RESIDUAL`) and
    :func:`featlib.verify` proves the certificate (margin 1e-2; up to its size limit)."""
    if not sol.residual <= INEXACT_IDENTIFIED_MAX_RESIDUAL or sol.certificate is None:
        return False
    try:
        return verify(feedback, sol.certificate, margin=1e-2).valid
    except _checks.FeatlibError:  # beyond verify's sizes
        return False


def _inexact_not_identified(feedback, Y, Z, scale, sol, state, opts):
    """A "not identified" verdict reached on a face that an inexact combination step (accurate only to
    ``face_tol``) produced.  On such a face the linear system's rank is decided at ``face_tol``, and a
    wrong face can leave room for a second solution that the pairs exclude (3-sparse exact pairs at
    p = 20, rank 2: face_tol 0.025, "not identified" although verify proves the pairs identify the
    target; seen with a less accurate null-space basis, before :func:`~featlib.solvers.nullspace.dense_null_space`
    took the complement by Householder reflectors, which identifies that case directly).  So: kept when :func:`featlib.verify` proves its certificate; else the step is refined from
    the least-squares candidate on the face after it and the reduction rerun, whose answer is returned
    when it is identified (to 1e-9, or proved by verify) or "not identified" with a proved certificate;
    else the unproved verdict is kept only when ``face_tol <= NOT_IDENTIFIED_MAX_FACE_TOL``
    (``info["not_identified_proved"] = False``: the solver's numerical verdict, which verify could not
    re-check), and the answer is otherwise undecided."""
    check = verify(feedback, sol.certificate)
    info = dict(sol.info)
    info["inexact_face_check"] = check.status
    if check.valid:
        return dataclasses.replace(sol, info=info)
    steps, faces, first = state
    after = _face_after(faces, first, info.get("complement"))
    # a refined step whose face is known only to 1e-7 (a weak step: eigenvalue gap 8e-4 against a top
    # of 57 in the case above) is allowed here because whatever the rerun answers is then re-checked
    refined = _refine_step(feedback, Y, Z, scale, steps, faces, first, _candidate_on_face(Y, Z, scale, after),
                           max_tol=1e-7)
    if refined is not None:
        steps2, faces2, F2, tol = refined
        try:
            again = _facial_loop(feedback, Y, Z, scale, steps2, faces2, F2, tol, dict(info), **opts)
            again.info.pop("_state", None)
            again.info["refined_step"] = True
            if again.decided and ((again.identified and tol <= 1e-9) or verify(feedback, again.certificate).valid):
                return again
        except (_Contradiction, _checks.FeatlibError):
            pass
    if sol.info.get("face_tol", 1.0) <= NOT_IDENTIFIED_MAX_FACE_TOL:
        info["not_identified_proved"] = False
        return dataclasses.replace(sol, info=info)
    info["undecided_reason"] = ("'not identified' on a face from an inexact combination step (accurate to "
                                f"{sol.info.get('face_tol', float('nan')):.1e}), and verify could not prove the "
                                "certificate (" + check.reason + ")")
    return dataclasses.replace(sol, decided=False, identified=False, certificate=None, info=info)


def _contradiction(feedback, Y, Z, c, info):
    """Raise InconsistentFeedbackError with a verified Farkas certificate, or return an undecided
    Solution when the contradiction cannot be certified."""
    if c.face_tol <= 1e-12:
        cert = _farkas_certificate(Y, Z, c)
        if cert is not None:
            check = verify(feedback, cert)
            if check.valid:
                err = _checks.InconsistentFeedbackError(
                    c.message + f" Certificate: {cert!r} (featlib.verify re-checks it: the error's .certificate).")
                err.certificate = cert
                raise err
            info["farkas_check"] = check.reason
    info["contradiction"] = c.message
    phi = c.phi0 if c.phi0 is not None else np.eye(Y.shape[1])
    phi = normalise(phi)
    return Solution(phi=phi, identified=False, version_space_dim=0, residual=max_relative_residual(feedback, phi),
                    method="exact", seconds=0.0, decided=False, info=info, certificate=None)


def _farkas_certificate(Y, Z, c):
    """The steps so far plus one combination that is positive definite on the current face: no
    non-zero PSD matrix satisfies the pairs (Farkas' lemma for the PSD cone)."""
    steps = list(c.steps)
    q = c.F.shape[1]
    if q > 0:
        if c.target is None:
            return None
        Yr, Zr = Y @ c.F, Z @ c.F
        G = svec_outer_difference(Yr, Zr)
        alpha = np.linalg.lstsq(G.T, svec(c.target), rcond=None)[0]
        idx = np.flatnonzero(alpha)
        if idx.size == 0:
            return None
        steps.append(FaceStep(indices=idx, values=alpha[idx], rank=q, kind="farkas"))
    return Certificate(verdict="inconsistent", steps=tuple(steps), face_dim=0, reduced_rank=0, unknowns=0)


def _refine_step(feedback, Y, Z, scale, steps, faces, first_inexact, phi0, *, max_tol=1e-9):
    """Refine the first inexact combination step (``steps[first_inexact]``, taken on the face
    ``faces[first_inexact]``): polish the candidate answer ``phi0`` by Gauss-Newton on all pairs,
    take its range as the step's kernel, project the multipliers onto those whose combination
    vanishes there, and accept the step if its combination is PSD of the same rank to rounding.
    Returns ``(steps, faces, F, face_tol)`` to rerun the reduction from, or None."""
    if phi0 is None or first_inexact is None:
        return None
    phi1 = _polish_identified(Y, Z, normalise(phi0), {})
    if not max_relative_residual(feedback, phi1) <= 1e-11:
        return None
    w, V = np.linalg.eigh(phi1)
    R = V[:, w > 1e-8 * w[-1]]
    t = first_inexact
    step, Ft = steps[t], faces[t]
    K, sv, _ = np.linalg.svd(Ft.T @ R, full_matrices=False)
    if sv.size == 0 or sv.min() < 0.5:
        return None
    Yr, Zr = Y[step.indices] @ Ft, Z[step.indices] @ Ft
    q = Ft.shape[1]
    alpha = reduce.vanishing_on(Yr, Zr, step.values, K, rcond=1e-10)
    if alpha is None:
        return None
    S = reduce._combination(Yr, Zr, np.arange(len(alpha)), alpha)
    # rounding judged from the pairs' full norms (their projections carry the whole vectors' rounding)
    out = reduce._kernel_of_psd(S, psd_rtol=1e-12,
                                floor=reduce.combination_rounding(alpha, scale[step.indices], Y.shape[1]))
    if out is None or out[0] != step.rank:
        return None
    k = out[0]
    if K.shape[1] != q - k:
        return None
    # the new face is the polished answer's range itself; S(alpha) vanishes on it to rounding, so it is
    # the kernel to ||S K|| / gap
    gap = float(np.linalg.eigvalsh(S)[q - k])
    tol = max(1e-12, 10.0 * float(np.linalg.norm(S @ K)) / gap)
    if not tol <= max_tol:
        return None
    new = FaceStep(indices=step.indices, values=alpha, rank=k, kind="combination")
    if not _material(Y @ Ft, Z @ Ft, new, scale, Y.shape[1]):
        return None
    steps = list(steps[:t]) + [new]
    return steps, list(faces[: t + 1]), Ft @ K, tol


def _material(Yr, Zr, step, scale, p):
    """Whether a combination step is made of more than rounding: the smallest of its ``step.rank`` kept
    eigenvalues on the face is at least :data:`MATERIAL_FACTOR` times ``4 (p + 2) eps sum_k |alpha_k|
    scale_k``, the rounding bound of the combination computed from the pairs' squared norms ``scale`` in
    the full space (a pair's projection onto a face carries the rounding of the whole vector).  A
    relative eigenvalue gap alone accepted a combination whose eigenvalues were all about 1e-33 against
    pairs of norm 1 (exact sparse pairs, p = 12): its "kernel" missed the target by 0.75, and the
    certificate failed verify."""
    idx = np.asarray(step.indices, dtype=np.int64)
    alpha = np.asarray(step.values, dtype=float)
    S = reduce._combination(Yr[idx], Zr[idx], np.arange(idx.size), alpha)
    w = np.linalg.eigvalsh(S)
    k = int(step.rank)
    if not 0 < k <= w.size:
        return False
    return bool(w[w.size - k] >= MATERIAL_FACTOR * reduce.combination_rounding(alpha, scale[idx], p))


def _on_rows(out, rows):
    """A step found on a subset of the pairs (``rows``), its indices mapped back to all pairs."""
    if out is None:
        return None
    step = out[0]
    return (dataclasses.replace(step, indices=np.asarray(rows)[np.asarray(step.indices, dtype=np.int64)]),) + tuple(out[1:])


def _face_after(faces, first, current):
    """The face just after step ``first`` (``faces[i]`` is the face step i was taken on; ``current`` is
    the face after the last step)."""
    return faces[first + 1] if first + 1 < len(faces) else current


def _candidate_on_face(Y, Z, scale, G):
    """The PSD part of the least-squares solution of the pair equalities on the face G (its smallest right
    singular vector), lifted: a candidate answer for :func:`_refine_step`, or None."""
    if G is None or G.shape[1] == 0:
        return None
    q = G.shape[1]
    Mr = constraint_rows(Y @ G, Z @ G, scale, drop_rtol=1e-12)
    if Mr.shape[0] == 0:
        return None
    Vt = right_singular(Mr)[1]
    W = smat(Vt[-1], q)
    W = W if np.trace(W) >= 0 else -W
    w, V = np.linalg.eigh(W)
    psi = (V * np.maximum(w, 0)) @ V.T
    return G @ psi @ G.T if np.any(psi) else None


#: the floors of the search for a positive definite solution (decide.find_pd_point's defaults): the
#: boundary step is tried between the first and the second
PD_FLOORS = (1e-3, 1e-6)
#: dense rows go through the Gram matrix (:func:`gram_null_space`) from this many rows per unknown (its
#: product costs 2 n P^2 flops against a QR's 2 n P^2 - 2 P^3 / 3, but in one BLAS-3 call, and its
#: eigensolver works on P x P, not n x P)
GRAM_MIN_ROWS_PER_UNKNOWN = 4
#: ... and only from this many pairs x unknowns^2 (a QR of 10 ms or more): below it the QR's basis is kept.
#: The two bases span the same space to rounding, but the auxiliary SDPs are sensitive to the basis they
#: are written in: at p = 10 (sparse pairs below their threshold) Clarabel failed on some problems in the
#: Gram's eigenvector basis that it solved in the QR's, and SCS then took 0.5 to 5 s instead of 0.2 s
GRAM_MIN_WORK = 10 ** 8


def _material_boundary_step(Yr, Zr, live, L, X, scale, p):
    """:func:`reduce.boundary_step` from the boundary point X on the live pairs (indices mapped back to all
    pairs), or None when it finds none or its combination is only rounding (:func:`_material`)."""
    out = _on_rows(reduce.boundary_step(Yr[live], Zr[live], L, X), live)
    return out if out is not None and _material(Yr, Zr, out[0], scale, p) else None


def _polished_boundary_point(Y, Z, F, X):
    """A boundary point of the solutions on the face F from an approximate one X (face coordinates) whose
    rank shows by a clear eigenvalue gap (:func:`decide.gap_rank`): its PSD part of that rank, lifted and
    polished by Gauss-Newton on a factor over all pairs (:func:`_polish_identified`), back in face
    coordinates with trace 1; None unless the polish satisfies every pair to 1e-11 (relative) and stays on
    the face.  Only a guess for :func:`reduce.boundary_step`: the combination built on it is PSD by
    construction and checked as any other."""
    if X is None:
        return None
    w, V = np.linalg.eigh((X + X.T) / 2)
    k = decide.gap_rank(w)
    if k is None or k == w.size:
        return None
    Xk = (V[:, -k:] * w[-k:]) @ V[:, -k:].T
    info = {}
    phi = _polish_identified(Y, Z, normalise(F @ Xk @ F.T), info, rank=k)
    if not info.get("polished_residual", (np.inf, np.inf))[1] <= 1e-11:
        return None
    Xf = F.T @ phi @ F
    if not np.linalg.norm(F @ Xf @ F.T - phi) <= 1e-9 * np.linalg.norm(phi):
        return None
    return Xf / np.trace(Xf)


def _face_null_space(Yr, Zr, scale, drop_rtol, rtol):
    """``(L, singular values or None, dense rows or None)``: the null space of the pairs' unit-normalised
    rows on the face (the rows of :func:`constraint_rows`).  Large problems (:data:`GRAM_MIN_WORK`) with
    sparse pairs (the first round of sampled sparse feedback) go through the Gram matrix of their sparse
    rows (:func:`gram_null_space`: 2,062 x 820 rows at p = 40 in 0.03 s against 0.2 s for the dense QR,
    8,162 x 3,240 at p = 80 in 2 s against 7 s), tall dense ones through the Gram matrix of their dense
    rows; the dense QR where those routes cannot decide, and for everything else."""
    big = Yr.shape[0] * svec_dim(Yr.shape[1]) ** 2 >= GRAM_MIN_WORK
    A = _lsq.pair_matrix_rows(Yr, Zr) if big else None
    tried = A is not None  # the same Gram route again on the dense rows would decline again
    if A is not None:
        nrm = np.sqrt(np.asarray(A.multiply(A).sum(axis=1)).ravel())
        keep = nrm > drop_rtol * scale
        A = sp.diags(1.0 / nrm[keep]) @ A[keep]
        L = gram_null_space(A, rtol)
        if L is not None:
            return L, None, None
    Mr = constraint_rows(Yr, Zr, scale, drop_rtol=drop_rtol)
    if big and not tried and Mr.shape[0] >= GRAM_MIN_ROWS_PER_UNKNOWN * Mr.shape[1]:
        # many more rows than unknowns (sampled pairs on a face: 2,062 x 210 at p = 40): the Gram matrix is
        # a fraction of a QR's work
        L = gram_null_space(Mr, rtol)
        if L is not None:
            return L, None, Mr
    L, s = dense_null_space(Mr, rtol)
    return L, s, Mr


def _facial_loop(feedback, Y, Z, scale, steps, faces, F, face_tol, info, *, rtol, psd_rtol, zero_rtol, combinations,
                 first_inexact=None, snap=0):
    p = feedback.p
    steps, faces = list(steps), list(faces)
    if first_inexact is None and face_tol > 1e-12:
        first_inexact = next((i for i, st in enumerate(steps) if st.kind == "combination"), None)
    verdict, psi, m, s, wit = None, None, None, None, None
    thin = False
    exact_cache = {}  # integer pairs: the exact face after the last snapped step (see _snapped_step)

    def contradiction(message, kind, *, phi0=None, target=None):
        after = None if first_inexact is None else _face_after(faces, first_inexact, F)
        return _Contradiction(message, kind, F=F, steps=tuple(steps), faces=tuple(faces), face_tol=face_tol,
                              first_inexact=first_inexact, phi0=phi0, target=target, after=after)

    for _ in range(MAX_ROUNDS):
        q = F.shape[1]
        if q == 0:
            raise contradiction(
                f"The pairs force Phi v = 0 for a basis of all of R^{p}: only Phi = 0 is consistent. Check "
                f"the feedback (pairs (0, v) should only use null-space vectors of the target).", "empty")
        Yr, Zr = Y @ F, Z @ F
        if q == 1 and steps:
            # a single ray left after facial reduction: decide it directly.  A further "semidefinite
            # pair" on it would only be rounding (a pair that holds for Phi* to 1e-17 has a side of
            # 1e-9 on the ray and would remove it, exactly but uselessly: the stored numbers are then
            # inconsistent only at rounding level, which is not what a user asks)
            res = np.abs(np.einsum("ij,ij->i", Yr, Yr) - np.einsum("ij,ij->i", Zr, Zr)) / np.where(scale > 0, scale, 1)
            if res.max(initial=0.0) > max(100 * face_tol, RAY_RTOL):
                raise contradiction(
                    f"The pairs leave a single direction, but it violates a pair by {res.max():.2e} (relative): no "
                    f"non-zero PSD matrix satisfies them. The feedback is inconsistent (noisy answers?); use "
                    f"solve(..., method='sdp').", "ray", phi0=F @ F.T)
            m, s, L = 1, np.zeros(0), np.ones((1, 1))
            verdict, psi = "identified", np.ones((1, 1))
            break
        out = reduce.pair_step(Yr, Zr, scale, zero_rtol=zero_rtol, parallel_rtol=max(1e-12, face_tol))
        if out is not None:
            steps.append(out[0])
            faces.append(F)
            F = F @ out[1]
            continue
        if svec_dim(q) > DENSE_MAX_UNKNOWNS * 4:
            raise _checks.FeedbackError(
                f"The reduced problem has {svec_dim(q)} unknowns, too many for the dense exact solver, and back "
                f"substitution over the pairs could not determine every entry, so the pairs probably do not "
                f"identify Phi* (for example sampled pairs below the bound). Use method='gd', which estimates "
                f"a low-rank Phi from such feedback."
            )
        L, s, Mr = _face_null_space(Yr, Zr, scale, max(1e-12, face_tol), max(rtol, face_tol))
        m = L.shape[1]
        if m == 0:
            Mr = constraint_rows(Yr, Zr, scale, drop_rtol=max(1e-12, face_tol)) if Mr is None else Mr
            sv, Vt = right_singular(Mr)
            smin = sv[-1] / sv[0] if sv.size else 0.0
            W = smat(Vt[-1], q)
            W = W if np.trace(W) >= 0 else -W
            wv, Vv = np.linalg.eigh(W)
            raise contradiction(
                f"No non-zero PSD matrix satisfies the pairs: the reduced linear system has full column rank "
                f"(smallest relative singular value {smin:.2e} > rtol = {rtol:g}). If the answers are noisy, "
                f"use solve(..., method='sdp') for a least-squares PSD estimate, or raise rtol.", "full rank",
                phi0=F @ ((Vv * np.maximum(wv, 0)) @ Vv.T) @ F.T, target=np.eye(q))
        if m == 1:
            G1 = smat(L[:, 0], q)
            gen = psd_generator(G1, psd_rtol)
            if gen is None:
                w, V = np.linalg.eigh(G1)
                if w.sum() < 0:
                    w, G1 = -w, -G1
                pos, neg = w > 0, w < 0
                # S > 0 with <S, G1> = 0: weights 1 / (sum of |eigenvalues|) on each sign
                d = np.ones_like(w)
                d[pos] = 1.0 / w[pos].sum()
                d[neg] = 1.0 / -w[neg].sum()
                ws = np.sort(w)
                raise contradiction(
                    f"The pair equalities have a one-dimensional solution space, but its generator is indefinite "
                    f"(eigenvalues from {ws[0]:.3g} to {ws[-1]:.3g}): no non-zero PSD matrix satisfies the pairs. "
                    f"The feedback is inconsistent (noisy answers?); use solve(..., method='sdp').", "indefinite",
                    phi0=F @ ((V * np.maximum(w, 0)) @ V.T) @ F.T, target=(V * d) @ V.T)
            verdict, psi = "identified", gen[0]
            break
        # pairs whose projection onto the face is rounding residue take no part in a combination: with
        # large multipliers they made combinations of pure rounding (exact sparse pairs, p = 12)
        live = np.flatnonzero(np.einsum("ij,ij->i", Yr, Yr) + np.einsum("ij,ij->i", Zr, Zr)
                              > max(zero_rtol, 1e-13) * scale)
        out = None
        # the face so far is exact (integer pairs, every step exact): an SDP step can be snapped
        exact_face_now = snap > 0 and first_inexact is None and face_tol <= 1e-12
        # the search for a positive definite solution at its first floor, then a PSD combination of the pairs
        # from a boundary point of the solutions (alternating projections, no SDP), and only then the
        # search's second floor: where a combination vanishes on that point's range, no solution is
        # positive definite (theorem of the alternative: <S, X> = 0 for a non-zero PSD S), and the second
        # floor's 500 projections (of 860, at p = 40 on sampled pairs, finding none) are skipped.  The
        # boundary step before any search made solves that do find a positive definite point up to 10
        # times slower (p = 10, sparse pairs below their threshold: the boundary point took 3,500
        # projections where the search needed 300)
        X, lam = decide.find_pd_point(L, q, floors=PD_FLOORS[:1])
        if not (X is not None and lam > PD_CERTIFICATE_MIN):
            if combinations:
                X0 = decide.psd_point(L, q)
                out = _material_boundary_step(Yr, Zr, live, L, X0, scale, p)
                if out is None:
                    # the projections may stall short of the boundary while its rank already shows (a single
                    # ray of solutions: sampled pairs fewer than the unknowns, p = 40, 700 pairs: eigenvalues
                    # down to -7e-4 below a gap of 40x); Gauss-Newton on a factor of that rank reaches it
                    Xp = _polished_boundary_point(Y, Z, F, X0)
                    if Xp is not None:
                        out = _material_boundary_step(Yr, Zr, live, L, Xp, scale, p)
            if out is None:  # (without combinations the search runs both floors, as it always did)
                X2, lam2 = decide.find_pd_point(L, q, floors=PD_FLOORS[1:])
                if lam2 > lam:
                    X, lam = X2, lam2
        if out is not None or (not (X is not None and lam > PD_CERTIFICATE_MIN) and combinations):
            # no positive definite solution found: else a PSD combination from the auxiliary SDP
            sdp_pd, raw = None, None
            if out is None and reduce.have_sdp() and q <= COMBINATION_MAX_DIM:
                # a clearly positive definite solution first (the SDP's smallest eigenvalue far above its
                # accuracy): then no PSD combination exists (theorem of the alternative), and the combination
                # SDP would fail slowly (Clarabel gives up, SCS runs to its iteration limit: 12 s of a 13 s
                # solve at p = 20, measured)
                sdp_pd = decide.pd_point_sdp(L, q)
                if not (sdp_pd[0] is not None and sdp_pd[1] > CLEAR_PD_MIN):
                    raw = {} if exact_face_now else None
                    out = _on_rows(reduce.combination_step(Yr[live], Zr[live], L, raw=raw), live)
                    if out is not None and not _material(Yr, Zr, out[0], scale, p):
                        out = None
            if exact_face_now and (out[2] > 1e-12 if out is not None else bool(raw)):
                # integer pairs: the step made exact, or the SDP's own combination (which the float polish
                # could not make PSD to rounding) snapped at the ranks its eigenvalues suggest
                cands = [] if out is None else [(out[0].indices, out[0].values, out[0].rank)]
                if raw:
                    cands += [(live, raw["alpha"], k) for k in _gap_ranks(raw["eigenvalues"])]
                exact = _snapped_step(Y, Z, steps, cands, snap, cache=exact_cache)
                if exact is None and raw and snap >= SOLVER_SNAP_RETRY_MAX_WORK:
                    # eigenvalues graded with no clear gap: the other plausible ranks, largest first (only
                    # in the retry of a solve left undecided: a rank that does not snap costs seconds at
                    # p = 20, and where the float step goes on to a verdict they were spent for nothing,
                    # 26 s of a 35 s solve, measured)
                    more = _fallback_ranks(raw["eigenvalues"], {c[2] for c in cands})
                    if more:
                        exact = _snapped_step(Y, Z, steps, [(live, raw["alpha"], k) for k in more], snap,
                                              cache=exact_cache)
                        if exact is not None:
                            info["fallback_rank_steps"] = info.get("fallback_rank_steps", 0) + 1
                if exact is None:
                    info["snap_failed"] = True
                if exact is not None:
                    steps.append(exact[0])
                    faces.append(F)
                    F = exact[1]
                    info["snapped_steps"] = info.get("snapped_steps", 0) + 1
                    if exact_cache.get("recentred"):
                        info["recentred_steps"] = exact_cache["recentred"]
                    continue
            if out is not None:
                steps.append(out[0])
                faces.append(F)
                F = F @ out[1]
                if out[2] > 1e-12 and first_inexact is None:
                    first_inexact = len(steps) - 1
                face_tol = max(face_tol, out[2])
                continue
            if sdp_pd is not None:
                X, lam = sdp_pd
            elif reduce.have_sdp() and q <= COMBINATION_MAX_DIM:
                X, lam = decide.pd_point_sdp(L, q)
        info["pd_certificate_lambda_min"] = lam
        if X is not None and lam > PD_CERTIFICATE_MIN:
            verdict, psi = "not identified", X
            wit = decide.witnesses(X, L, q)
            break
        if X is not None and lam > THIN_PD_MIN:
            # positive definite, but too thinly for the usual margin: kept only if verify proves it below
            verdict, psi = "not identified", X
            wit = decide.witnesses(X, L, q)
            thin = True
            break
        psi = decide.psd_point(L, q)
        if psi is None:
            raise contradiction(
                "Every solution of the pair equalities has zero trace, so none is a non-zero PSD matrix: the "
                "feedback is inconsistent.", "zero trace", target=np.eye(q))
        break
    q = F.shape[1]
    info.update({"complement": F, "null_space": _complement(F, p), "singular_values": s, "facial_steps": len(steps),
                 "face_tol": face_tol, "_state": (tuple(steps), tuple(faces), first_inexact)})
    identified = verdict == "identified"
    decided = verdict is not None
    cert = None
    if decided:
        U = svec_dim(q)
        cert = Certificate(verdict=verdict, steps=tuple(steps), face_dim=q,
                           reduced_rank=U - m, unknowns=U, face=F, witnesses=wit, method="svd")
        if thin:
            check = verify(feedback, cert, exact=False)
            info["thin_pd_check"] = check.status
            if not check.valid:
                decided, cert, identified = False, None, False
    phi = normalise(F @ psi @ F.T)
    if identified and face_tol > 1e-12:
        phi = _polish_identified(Y, Z, phi, info)
    return Solution(phi=phi, identified=identified, version_space_dim=m, residual=max_relative_residual(feedback, phi),
                    method="exact", seconds=0.0, decided=decided, info=info, certificate=cert)


def _gap_ranks(w, *, most=3, min_ratio=10.0):
    """Ranks suggested by the largest gaps of an interior-point combination's eigenvalues ``w``
    (ascending): each gap between consecutive eigenvalues at least ``min_ratio`` wide, above 1e-10 of the
    top, biggest first, at most ``most`` of them."""
    w = np.asarray(w, dtype=float)
    q = w.size
    top = float(w[-1]) if q else 0.0
    if not top > 0:
        return []
    lo = np.maximum(np.abs(w[:-1]), 1e-16 * top)
    ratio = w[1:] / lo
    ok = np.flatnonzero((ratio >= min_ratio) & (w[1:] > 1e-10 * top))
    order = ok[np.argsort(-ratio[ok], kind="stable")][:most]
    return [int(q - 1 - i) for i in order]


def _fallback_ranks(w, tried, *, most=8, low=1e-10, high=1e-2):
    """Ranks to try when none of :func:`_gap_ranks` snaps: every rank whose smallest kept eigenvalue of
    the interior-point combination ``w`` (ascending) is above ``low`` of the top and whose largest
    dropped one is below ``high`` of it, largest first, not in ``tried``, at most ``most``.  Measured
    case: exact μ-model pairs, p = 20, rank 2, seed 2, 58 pairs, eigenvalues graded from 1e-9 to 1.75e-4
    and then 6.8e-3 (one gap of 39x, at rank 8, which does not snap): ranks 9 to 12 and 15 snap (each
    an exact PSD combination, so each a valid step), and the solve was undecided."""
    w = np.asarray(w, dtype=float)
    q = w.size
    top = float(w[-1]) if q else 0.0
    if not top > 0:
        return []
    out = [k for k in range(q - 1, 0, -1)
           if k not in tried and w[q - k] > low * top and w[q - k - 1] < high * top]
    return out[:most]


def _snapped_step(Y, Z, steps, candidates, limit=None, cache=None):
    """An exact combination step for integer pairs, after the exact ``steps``: the first of
    ``candidates`` (``(indices, multipliers, rank)``, from the SDP, whose face is known only to about
    the square root of its accuracy) whose multipliers snap (:func:`featlib.certificates.exact_face`,
    verify's rational snapping) to ones whose combination is, in rational arithmetic, PSD of that rank
    on the exact face.  Returns ``(step, F)`` with the exact multipliers (rounded to floats) and an
    orthonormal basis of the exact face after it (accurate to rounding), or None.  Sound without
    further checks: every PSD solution of the pairs lies on that exact face.  A step that would
    leave no direction is not taken here (the inexact path and its contradiction handling decide).
    ``limit``: the largest elimination tried (:func:`featlib.certificates.snap_work`; default
    :data:`SOLVER_SNAP_MAX_WORK`).  ``cache``: a dict this function keeps between calls of one solve
    (``"k"``, ``"G"``: the exact face after the first k steps), so that the steps already made exact
    are not snapped again from their stored (rounded) multipliers, which may fail where the first
    snap needed a rough kernel."""
    limit = SOLVER_SNAP_MAX_WORK if limit is None else limit
    cache = {} if cache is None else cache
    k = cache.get("k", 0)
    if k > len(steps):
        k = 0
    prev = exact_face(Y, Z, steps[k:], start=cache.get("G") if k else None, snap_limit=limit)
    if prev is None:
        return None
    G0 = prev[0]
    f0 = G0.shape[1]
    tried = set()
    for idx, vals, rank in candidates:
        idx = np.asarray(idx, dtype=np.int64)
        vals = np.asarray(vals, dtype=float)
        if not (0 < rank < f0) or (rank, idx.tobytes(), vals.tobytes()) in tried:
            continue
        tried.add((rank, idx.tobytes(), vals.tobytes()))
        keep = np.flatnonzero(vals)
        if keep.size == 0:
            continue
        step = FaceStep(indices=idx[keep], values=vals[keep], rank=int(rank), kind="combination")
        got = exact_face(Y, Z, [step], start=G0, snap_limit=limit, rough=True)
        if got is None and limit >= SOLVER_SNAP_RETRY_MAX_WORK:
            # the kernel the step points at may be right while the multipliers nearest to the SDP's are
            # not PSD (its smallest non-zero eigenvalue below its error): look inside that space (only in
            # the retry, the last resort: it repeats the snap's eliminations, seconds each at p = 20)
            got = _recentred_step(Y, Z, G0, step, limit)
            if got is not None:
                cache["recentred"] = cache.get("recentred", 0) + 1
        if got is None:
            continue
        G, alphas = got
        alpha = np.array(alphas[0], dtype=float)
        Gf = np.array(G, dtype=float)
        if Gf.shape[1] == 0 or not np.any(alpha):
            continue
        F, _ = np.linalg.qr(Gf)
        cache["k"], cache["G"] = len(steps) + 1, G
        return FaceStep(indices=step.indices, values=alpha / np.max(np.abs(alpha)), rank=step.rank,
                        kind="combination"), F
    return None


def _recentred_step(Y, Z, G0, step, limit):
    """For integer pairs on the exact face ``G0``: a combination step whose exact multipliers are a
    well-centred point (an SDP: smallest eigenvalue on the complement of the kernel as large as possible)
    of the multipliers whose exact combination vanishes on a kernel the float ``step`` points at
    (:func:`featlib.certificates.snap_spaces`), checked PSD of the step's rank in rational arithmetic and
    then re-derived from its rounded multipliers the way verify derives it (:func:`exact_face`).  Returns
    ``(G, [alpha])`` as :func:`exact_face` does, or None.  Measured case: 2-sparse pairs, p = 20, rank 5,
    114 pairs, where the SDP's combination has eigenvalues 1.3e-5 ... 0.38 above a kernel of 5 and the
    exact multipliers nearest to the rationalised ones were not PSD (the solve was undecided); snapping
    from the stored floats themselves (``certificates._snap_starts``) now decides that case first, and
    this step decides it without that (tested both ways)."""
    for Yg, Zg, C, N in snap_spaces(Y, Z, G0, step, snap_limit=limit, rough=True):
        f0, k = C.shape
        if f0 - k != step.rank:
            continue
        try:
            Yf, Zf, Nf, Cf = (np.array(A, dtype=float) for A in (Yg, Zg, N, C))
        except (OverflowError, ValueError):
            continue  # an exact basis whose numbers do not fit in floats
        if not all(np.all(np.isfinite(A)) for A in (Yf, Zf, Nf, Cf)):
            continue
        Q = np.linalg.qr(Cf, mode="complete")[0][:, k:]  # the kernel's complement
        # the rounding of stored multipliers moves the combination by up to about 1e-16 of
        # sum_i |alpha_i| (|y_i|^2 + |z_i|^2): the smallest eigenvalue is maximised against that sum, not
        # against the trace (measured on the case above: margin 1.9e-11 of the sum, against 2.2e-13)
        B = ((Yf ** 2).sum(1) + (Zf ** 2).sum(1))[:, None] * Nf
        norms = np.abs(B).sum(0)
        if not np.all(norms > 0):
            continue
        Nn = Nf / norms
        YQ, ZQ = Yf @ Q, Zf @ Q
        M = np.einsum("ij,ia,ib->jab", Nn, YQ, YQ) - np.einsum("ij,ia,ib->jab", Nn, ZQ, ZQ)
        top = np.abs(M).max()
        if not top > 0:
            continue
        c = reduce.psd_in_span(M / top, B / norms)
        if c is None:
            continue
        alpha = _X.matmul(N, _X.q((c / norms)[:, None]))[:, 0]  # exact: every float is a rational
        S = _X.matmul((Yg * alpha[:, None]).T, Yg) - _X.matmul((Zg * alpha[:, None]).T, Zg)
        ok, rk = _X.psd_rank(S)
        if not (ok and rk == step.rank):
            continue
        a = np.array(alpha, dtype=float)
        if not np.any(a):
            continue
        again = FaceStep(indices=step.indices, values=a / np.max(np.abs(a)), rank=step.rank, kind="combination")
        got = exact_face(Y, Z, [again], start=G0, snap_limit=limit)
        if got is not None:
            return got
    return None


def _polish_identified(Y, Z, phi, info, iters=20, rank=None):
    """Gauss-Newton on a factor L (phi = L L^T) of an identified answer whose face came from an
    SDP-found combination (accurate only to about 1e-6): the pairs pin phi down, so the least-squares
    problem min sum_k (|L^T y_k|^2 - |L^T z_k|^2)^2 with trace 1 has it as its isolated solution and
    Gauss-Newton converges to it.  Keeps the refined matrix only when its residual is smaller.  ``rank``:
    the factor's width (default: the eigenvalues above 1e-9 of the largest)."""
    w, V = np.linalg.eigh(phi)
    keep = w > 1e-9 * w[-1] if rank is None else np.arange(w.size) >= w.size - rank
    L = V[:, keep] * np.sqrt(w[keep])
    scale = np.einsum("ij,ij->i", Y, Y) + np.einsum("ij,ij->i", Z, Z)
    scale = np.where(scale > 0, scale, 1.0)

    def residual(L):
        return (np.einsum("ij,ij->i", Y @ L, Y @ L) - np.einsum("ij,ij->i", Z @ L, Z @ L)) / scale

    r0 = float(np.max(np.abs(residual(L))))
    if r0 <= 1e-15:  # already polished (the refined rerun): nothing to gain
        info["polished_residual"] = (r0, r0)
        return phi
    best, best_r = L, r0
    last = r0
    for _ in range(iters):
        res = residual(L)
        b = -np.r_[res, np.sum(L * L) - 1.0]
        tr = 2 * L.ravel()[None, :]  # keep trace(L L^T) = 1 to first order
        step = None
        J = _lsq.factor_jacobian(Y, Z, L, scale)
        if J is not None:  # sparse pairs: normal equations with the rotations as the known null space
            step = _lsq.least_squares_with_null(sp.vstack([J, sp.csr_matrix(tr)]).tocsr(), b, _lsq.rotation_basis(L))
        if step is None:
            J = 2 * ((Y[:, :, None] * (Y @ L)[:, None, :] - Z[:, :, None] * (Z @ L)[:, None, :]) / scale[:, None, None])
            A = np.vstack([J.reshape(len(Y), -1), tr])
            try:
                # complete orthogonal factorisation (min-norm, rank-revealing): the factor's rotations are
                # a null space of J; several times faster than the SVD-based default
                step = sla.lstsq(A, b, cond=1e-13, lapack_driver="gelsy", check_finite=False)[0]
            except (np.linalg.LinAlgError, ValueError):
                break
        L = L + step.reshape(L.shape)
        rr = float(np.max(np.abs(residual(L))))
        if rr < best_r:
            best, best_r = L, rr
        if rr < 1e-15 or rr > 0.5 * last:  # converged, or stalled at the rounding floor
            break
        last = rr
    info["polished_residual"] = (r0, best_r)
    return normalise(best @ best.T) if best_r < r0 else phi


# ============================================================================================
# sparse path


def _solve_sparse(feedback, *, rtol, psd_rtol, zero_rtol, lanczos=True):
    """scipy.sparse exact path; returns None when the structure needs the dense path."""
    p = feedback.p
    if feedback.storage in ("sparse", "dense"):
        Y, Z = (sp.csr_matrix(C) for C in feedback._stored_rows())
    else:  # basis (or span) storage keeps coefficients: the activations themselves are needed here
        Y, Z = sp.csr_matrix(feedback.dense_y()), sp.csr_matrix(feedback.dense_z())
    keep = np.arange(p)
    nulls = []
    steps = []
    scale = None
    while True:
        Yr, Zr = (Y, Z) if keep.size == p else (Y[:, keep], Z[:, keep])
        ny, nz = row_sq_norms(Yr), row_sq_norms(Zr)
        if scale is None:
            scale = ny + nz
        yz = np.asarray(Yr.multiply(Zr).sum(axis=1)).ravel()
        semidef, _ = reduce.semidefinite_rows(ny, nz, yz, zero_rtol, 1e-12, scale)
        if not np.any(semidef):
            break
        rows = np.flatnonzero(semidef)
        side = sp.csr_matrix(sp.vstack([Yr[rows[ny[rows] >= nz[rows]]], Zr[rows[ny[rows] < nz[rows]]]]))
        side.eliminate_zeros()
        drop = np.unique(side.indices)
        if np.any(np.diff(side.indptr) != 1):
            # the forced directions must span whole coordinate axes to keep the problem sparse
            sub = side[:, drop].toarray()
            if np.linalg.matrix_rank(sub) < drop.size:
                return None  # not a coordinate subspace: use the dense path
        longer_y = ny[rows] >= nz[rows]
        steps.append(FaceStep(indices=rows, values=np.where(longer_y, 1.0, -1.0) / (ny[rows] + nz[rows]),
                              rank=int(drop.size), kind="pairs"))
        nulls.extend(keep[drop].tolist())
        keep = np.delete(keep, drop)
        if keep.size == 0:
            raise _checks.InconsistentFeedbackError(
                "The pairs force every coordinate into the null space: only Phi = 0 is consistent."
            )
    q = keep.size
    M = svec_outer_difference_sparse(Yr, Zr)
    norms = np.sqrt(row_sq_norms(M))
    nzr = norms > 1e-12 * scale
    dropped = None if nzr.all() else M[~nzr]  # kept unnormalised for the residual check
    M = M[nzr] if not nzr.all() else M
    M.data /= np.repeat(norms[nzr], np.diff(M.indptr))  # unit rows, in place
    rows = (M, norms, nzr, scale, dropped)  # the residual check reuses the constraints (see _constraint_residual)
    info = {"path": "sparse", "null_coordinates": np.array(sorted(nulls), dtype=int), "kept": keep,
            "steps": steps}
    x = peel(M, dim=q)
    if x is not None:
        info["peeled"] = True
        return _sparse_solution(feedback, x, q, keep, nulls, psd_rtol, info, rows)
    if not lanczos:
        return None
    G = (M.T @ M).tocsc()
    P = G.shape[0]
    if G.nnz == 0:
        return None  # no informative pair left: the dense path decides (and explains) it
    try:
        top = float(spla.eigsh(G, k=1, which="LA", return_eigenvectors=False)[0]) if P > 2 else float(
            np.linalg.eigvalsh(G.toarray())[-1])
        shift = 1e-10 * top
        k = min(3, P - 1)
        if P <= 3:
            w, V = np.linalg.eigh(G.toarray())
        else:
            w, V = spla.eigsh(G, k=k, sigma=-shift, which="LM")
            order = np.argsort(w)
            w, V = w[order], V[:, order]
    except (spla.ArpackError, spla.ArpackNoConvergence, RuntimeError, np.linalg.LinAlgError):
        return None  # Lanczos gave no answer: the dense path decides, or says why it cannot
    sv = np.sqrt(np.clip(w, 0.0, None) / top)
    m = int(np.count_nonzero(sv <= rtol))
    info["smallest_relative_singular_values"] = sv
    if m != 1:
        return None  # undecided / unidentified / inconsistent: the dense path has the full logic
    return _sparse_solution(feedback, V[:, 0], q, keep, nulls, psd_rtol, info, rows)


def _constraint_residual(feedback, block, norm, rows):
    """``max_relative_residual(feedback, phi)`` for ``phi`` zero outside the kept coordinates and equal
    to ``block`` on them (``||phi||_2 = norm``), read off the assembled constraints: row k of the
    unit-row matrix M times its norm is ``svec(y_k y_k^T - z_k z_k^T)`` on the kept coordinates, so
    ``M @ svec(block) * norms = y_k^T phi y_k - z_k^T phi z_k``.  One sparse product instead of
    gathering 8.4M quadratic forms from phi (0.2 s against 2.5 s for the p = 4096 sparse teacher).
    Rows dropped from M as numerically zero are evaluated from their unnormalised constraint rows."""
    M, norms, nzr, scale, dropped = rows
    diff = np.zeros(len(feedback))
    v = svec(block)
    diff[nzr] = (M @ v) * norms[nzr]
    if dropped is not None:
        diff[~nzr] = dropped @ v
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(scale > 0, np.abs(diff) / (norm * np.where(scale > 0, scale, 1.0)), 0.0)
    return float(np.max(rel, initial=0.0))


def _sparse_solution(feedback, v, q, keep, nulls, psd_rtol, info, rows=None):
    """Solution from the null vector v (svec of the reduced matrix), or None if it is not PSD."""
    p = feedback.p
    if q > CHOLESKY_CERTIFICATE_MIN:  # Cholesky certificate: O(q^3 / 3), no eigendecomposition
        cert = psd_certificate(smat(v, q), psd_rtol)
        info["psd_certificate"] = "cholesky"
        if cert is None:
            return None
        psi, top = cert
    else:  # one eigh: the PSD check and the projection of rounding-level negative eigenvalues
        gen = psd_generator(smat(v, q), psd_rtol)
        if gen is None:
            return None
        psi, top = gen[0], float(np.max(np.abs(gen[1])))
        info["psd_certificate"] = "eigh"
    block = psi / np.trace(psi)
    phi = np.zeros((p, p))
    phi[np.ix_(keep, keep)] = block
    N = np.zeros((p, len(nulls)))
    N[np.array(sorted(nulls), dtype=int), np.arange(len(nulls))] = 1.0
    info["null_space"] = N
    norm = top / np.trace(psi)
    if rows is not None:
        residual = _constraint_residual(feedback, block, norm, rows)
    else:
        residual = max_relative_residual(feedback, phi, norm=norm)
    U = svec_dim(q)
    cert = Certificate(verdict="identified", steps=tuple(info.pop("steps", ())), face_dim=q, reduced_rank=U - 1,
                       unknowns=U, face=None, method="back substitution" if info.get("peeled") else "lanczos")
    return Solution(phi=phi, identified=True, version_space_dim=1, residual=residual, method="exact",
                    seconds=0.0, decided=True, info=info, certificate=cert)

"""``solve(feedback, method=...)`` and its back ends.

========  ======================================================================================
method    what it does
========  ======================================================================================
"exact"   PSD-aware linear algebra (facial reduction + null space); dense, or scipy.sparse for
          large sparse feedback.  Exact to rounding; needs consistent (noise-free) feedback.
"sdp"     cvxpy: PSD least squares with trace 1, and a uniqueness test by random linear
          objectives.  Handles noisy feedback and hidden faces.  Needs ``featlib[sdp]``.
"gd"      gradient descent on Phi = U U^T with torch (Algorithm 3 of the paper).  Needs
          ``featlib[torch]``.
"svp"     alternating projections (constraints, rank-r PSD) from the prior I: an estimate for
          sampled pairs below or near the degrees of freedom (:mod:`featlib.solvers.svp`).
"auto"    see :func:`solve`.
========  ======================================================================================
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import warnings

import numpy as np

from .. import _checks
from ..certificates import rescale_multipliers
from ..feedback import PairFeedback
from ..spanfeedback import EXPAND_MAX_BYTES, FrameFeedback, SpanFeedback
from ._result import Solution
from .exact import solve_exact
from .near import near_solutions
from .sdp import solve_sdp
from ..streams import PairStream
from ..triplets import TripletFeedback
from .exact import _hints
from .gd import solve_gd
from .svp import solve_svp
from .triplet import solve_triplets

__all__ = ["solve", "Solution", "METHODS", "solve_exact", "solve_sdp", "near_solutions"]

METHODS = ("auto", "exact", "sdp", "gd", "svp")

#: "auto" hands undecided or inconsistent problems to the SDP back end up to this p.
AUTO_SDP_MAX_P = 40


def _have(module):
    return importlib.util.find_spec(module) is not None


def solve(feedback: PairFeedback, method: str = "auto", **options) -> Solution:
    """Learn a feature matrix from equality pairs, up to a positive scale.

    Parameters
    ----------
    feedback : PairFeedback, PairStream or TripletFeedback
        The pairs, e.g. from :func:`featlib.teach`; a :class:`featlib.PairStream` (pairs drawn or read
        one batch at a time) is learned by ``"gd"`` only; sign-only :class:`featlib.TripletFeedback`
        by ``"auto"``, ``"gd"`` or ``"sdp"`` (:func:`featlib.solvers.triplet.solve_triplets`).
    method : {"auto", "exact", "sdp", "gd", "svp"}
        The back end (see the module docstring).  ``"auto"`` runs ``"exact"``; when that cannot
        decide identification (a hidden face, IdentifiabilityWarning) or finds the pairs
        inconsistent (noisy answers), and cvxpy is installed and ``p <= 40``, it runs ``"sdp"``
        instead; otherwise it returns the exact answer (re-raising an inconsistency error).
    **options
        Passed to the back end: :func:`~featlib.solvers.exact.solve_exact`,
        :func:`~featlib.solvers.sdp.solve_sdp`, :func:`~featlib.solvers.gd.solve_gd` or
        :func:`~featlib.solvers.svp.solve_svp`.

    Returns
    -------
    Solution
        ``.phi`` (unit trace, PSD), ``.identified``, ``.version_space_dim``, ``.residual``,
        ``.method``, ``.seconds``, ``.decided``, ``.info``.
    """
    if isinstance(feedback, TripletFeedback):  # sign-only answers: an estimate, never identification
        if not isinstance(method, str) or method not in ("auto", "gd", "sdp"):
            raise _checks.UnknownMethodError(
                f"method {method!r} needs equality pairs; sign-only triplets are learned with 'auto', 'gd' or 'sdp'.")

        _check_options(solve_triplets, options, method)
        return solve_triplets(feedback, method, **options)

    if isinstance(feedback, PairStream):  # pairs one batch at a time: only gradient descent reads them so
        if not isinstance(method, str) or method not in ("auto", "gd"):
            raise _checks.UnknownMethodError(
                f"method {method!r} needs every pair in memory; a PairStream is learned with 'gd' ('auto' means 'gd' "
                f"for a stream), or turn a small one into a PairFeedback with stream.to_feedback().")

        _check_options(solve_gd, options, "gd")
        return solve_gd(feedback, **options)
    _checks.check_method(method, METHODS)
    if not isinstance(feedback, PairFeedback):
        raise _checks.ArgumentTypeError(
            f"solve expects a PairFeedback (e.g. from featlib.teach); got {type(feedback).__name__}. "
            f"Wrap raw arrays with featlib.PairFeedback(y, z)."
        )
    if isinstance(feedback, SpanFeedback):  # null-space pairs kept as a span: solve the exact reduction
        return _solve_span(feedback, method, options)
    if isinstance(feedback, FrameFeedback):  # compact pairs over an implicit complement: face step, then reduce
        return _solve_frame(feedback, method, options)
    # pairs are homogeneous: solve the same pairs rescaled to entries of order one, so that 1e-170 or
    # 1e160 times every activation changes nothing (their squares would underflow or overflow)
    feedback, factors = feedback._normalized()
    if options.get("face_hint") is not None:  # a hint's combination is of the pair matrices: rescale

        options = dict(options)
        exps = _exponents(factors)
        options["face_hint"] = [(i, rescale_multipliers(v, exps[i])) for i, v in _hints(options["face_hint"], len(feedback))]
    try:
        sol = _solve(feedback, method, options)
    except _checks.InconsistentFeedbackError as err:  # its certificate refers to the caller's pairs too
        cert = getattr(err, "certificate", None)
        if cert is not None:
            import dataclasses

            exps = _exponents(factors)
            err.certificate = dataclasses.replace(cert, steps=tuple(
                dataclasses.replace(st, values=rescale_multipliers(st.values, -exps[st.indices])) for st in cert.steps))
        raise
    return _in_original_scale(sol, factors)


def _solve_span(feedback, method, options):
    """``solve`` on :class:`featlib.SpanFeedback`: the stored pairs in R^k (``feedback.reduced()``, an
    exactly equivalent problem for ``S = W^T Phi W``) by the chosen back end, the answer lifted to the
    factor ``W G^-1 S^{1/2}`` (p x rank, unit trace).  No p x p array is formed: ``phi`` is formed from
    the factor only when asked for.  The certificate is the reduced problem's; :func:`featlib.verify`
    re-checks it on the span feedback.  ``residual`` is the largest relative residual over the stored
    pairs and a bound on the span pairs' (:meth:`~featlib.SpanFeedback.span_mass`)."""
    return _solve_reduced(feedback, method, options, "span the kernel pairs' frame",
                          dict(route="span", span_pairs=feedback.n_span, stored_pairs=feedback.n_stored))


#: the largest face bound tau (``trace(U^T Phi U) <= tau trace((W R)^T Phi (W R))``, :class:`featlib.FrameFeedback`)
#: with which ``solve`` takes the face step of frame feedback; the compact teacher's: 1e-15 at p = 12 to 5e-12 at
#: p = 2^20
FRAME_FACE_MAX_TOL = 1e-8


def _frame_face(feedback, hint):
    """The face step of :class:`featlib.FrameFeedback` in floating point: ``(tau, None)`` with the bound
    ``tau`` of the class docstring evaluated from the computed blocks (0 when there is no complement), or
    ``(None, reason)``.  A solver's estimate: :func:`featlib.verify` proves the step only exactly."""
    p, k = feedback.frame.shape
    if p == k:
        return 0.0, None
    if hint is None:
        return None, "it has no face hint (meta['face_hint'] or solve(..., face_hint=...))"
    hints = _hints(hint, len(feedback))
    if len(hints) != 1:
        return None, f"its face hint has {len(hints)} steps; the frame route takes one"
    blocks = feedback.hint_blocks(*hints[0], normalise=True)  # tau is scale-free: read it at a safe scale
    if blocks is None:
        return None, "its face hint's multipliers, with the rows' scales, span more than 2^1000"
    E, X, d = blocks
    if d is None or not d.size or not np.all(d > 0):
        return None, ("the hint's combination could not be proved positive definite on the complement (some "
                      "hinted pair is two-sided there, or a complement direction has no one-sided unit term)")
    lam0 = float(d.min())
    e = float(np.sqrt(np.einsum("ij,ij->", E, E)))
    x = float(np.sqrt(np.sum(X.data ** 2))) if X.nnz else 0.0
    tau = ((x + np.sqrt(x * x + lam0 * e)) / lam0) ** 2
    if not tau <= FRAME_FACE_MAX_TOL:
        return None, f"the hint's face bound tau = {tau:.3g} exceeds {FRAME_FACE_MAX_TOL:g}"
    return float(tau), None


def _solve_frame(feedback, method, options):
    """``solve`` on :class:`featlib.FrameFeedback`: the face step ``range(Phi) ⊆ span(W)`` from the hint's
    combination (:func:`_frame_face`: a bound tau on what lies outside, evaluated in floating point), then
    the frame parts in R^k as for span feedback.  Without a usable hint the explicit form is solved when it
    fits (:data:`featlib.spanfeedback.EXPAND_MAX_BYTES`), else a :class:`featlib.ResourceError` says why."""
    options = dict(options)
    hint = options.pop("face_hint", None)
    if hint is None:  # the teacher's own hint; like solve_exact, one that no longer fits is ignored
        hint = feedback.meta.get("face_hint")
        try:
            _hints(hint, len(feedback))
        except _checks.FeatlibError:
            hint = None
    tau, reason = _frame_face(feedback, hint)
    if tau is None:
        if 8 * feedback.p ** 2 <= EXPAND_MAX_BYTES:
            if hint is not None:
                options["face_hint"] = hint
            sol = solve(feedback.expand(), method, **options)
            sol.info["route"] = "frame, expanded"
            sol.info["frame_face_failed"] = reason
            return sol
        raise _checks.ResourceError(
            f"solve cannot reduce this FrameFeedback (p = {feedback.p}) to its frame: {reason}; the explicit "
            f"form would need a {feedback.p} x {feedback.p} basis ({8 * feedback.p ** 2 / 2**30:.1f} GiB). Pass "
            f"the teacher's face_hint, or use teach(Factored(D), 'eigen').")
    return _solve_reduced(feedback, method, options, "reduce compact pairs to their frame",
                          dict(route="frame", frame_face_tol=tau))


def _solve_reduced(feedback, method, options, what, route_info):
    """The frame problem ``feedback.reduced()`` solved by the back end and lifted (see :func:`_solve_span`)."""
    import time

    t0 = time.perf_counter()
    try:
        sol = solve(feedback.reduced(), method, **options)
    except _checks.InconsistentFeedbackError as err:  # its message speaks of R^k: say which R^k
        k = feedback.frame.shape[1]
        err.args = (f"{feedback.storage} feedback (in R^{feedback.p}, reduced to the {k}-dimensional span of its "
                    f"frame, where the solver works): {err.args[0] if err.args else ''}",) + tuple(err.args[1:])
        raise
    F = feedback.lift(sol.phi)
    scale = float(np.linalg.norm(F))
    if not scale > 0:
        raise _checks.FeatlibError(f"the reduced solution lifted to zero ({what}); this should not happen (a PSD S "
                                   f"with unit trace and a frame of full column rank): please report it.")
    F /= scale  # unit trace: trace(F F^T) = ||F||_F^2 (in place: F is p x rank)
    residual = float(np.max(feedback.relative_residuals(None, factor=F))) if len(feedback) else 0.0
    info = dict(sol.info)
    info.update(frame_dim=feedback.frame.shape[1], reduced_solution=sol, seconds_reduced=sol.seconds, **route_info)
    return Solution(phi=None, identified=sol.identified, version_space_dim=sol.version_space_dim, residual=residual,
                    method=sol.method, seconds=time.perf_counter() - t0, decided=sol.decided, info=info,
                    certificate=sol.certificate, factor=F)


def _in_original_scale(sol, factors):
    """The certificate's multipliers refer to the rescaled pairs: map them back to the caller's."""
    cert = getattr(sol, "certificate", None)
    if cert is not None and cert.steps:
        import dataclasses

        exps = _exponents(factors)
        cert.steps = tuple(dataclasses.replace(st, values=rescale_multipliers(st.values, -exps[st.indices]))
                           for st in cert.steps)
    return sol


def _exponents(factors):
    """``factors`` are powers of two: their exponents (exact)."""
    return (np.frexp(factors)[1] - 1).astype(np.int64)


def _check_options(fn, options, method):
    """Options a back end does not take are refused by name (not Python's bare TypeError)."""
    known = _option_names(fn)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise _checks.ArgumentTypeError(
            f"method={method!r} takes no option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; its options are: "
            f"{', '.join(known)}.")


@functools.lru_cache(maxsize=None)
def _option_names(fn):
    """The keyword options of a back end (from its signature; cached: inspect costs 0.1 ms a call)."""
    params = inspect.signature(fn).parameters
    return tuple(k for k, v in params.items()
                 if v.kind == v.KEYWORD_ONLY or (v.kind == v.POSITIONAL_OR_KEYWORD and k != "feedback"))


def _solve(feedback, method, options):

    _check_options({"exact": solve_exact, "auto": solve_exact, "sdp": solve_sdp, "gd": solve_gd, "svp": solve_svp}[method],
                   options, method)
    if method == "svp":
        return solve_svp(feedback, **options)
    if method == "exact":
        return solve_exact(feedback, **options)
    if method == "sdp":
        return solve_sdp(feedback, **options)
    if method == "gd":
        return solve_gd(feedback, **options)
    # auto
    sdp_ok = _have("cvxpy") and feedback.p <= AUTO_SDP_MAX_P
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", _checks.IdentifiabilityWarning)
            sol = solve_exact(feedback, **options)
    except _checks.InconsistentFeedbackError:
        if sdp_ok:
            return solve_sdp(feedback)
        raise
    if not sol.decided and sdp_ok:
        return solve_sdp(feedback)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return sol

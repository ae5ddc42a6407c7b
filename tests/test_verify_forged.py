"""verify must never say "valid" for a false claim: the issue's forged certificates, malformed
certificates, extreme scales, and a property test that tampers with genuine certificates and checks
every "valid" against an independent SDP (cvxpy, not featlib's solvers) as the oracle.
"""
import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import featlib as fl
from featlib.certificates import Certificate, FaceStep
from conftest import needs_cvxpy, target


def _fb(Y, Z):
    return fl.PairFeedback(np.atleast_2d(np.asarray(Y, dtype=float)), np.atleast_2d(np.asarray(Z, dtype=float)))


# ---------------------------------------------------------------------------------------------
# the reproductions


def test_a_failed_exact_check_never_becomes_valid():
    # only Phi = 0 satisfies 1 * phi = 4 * phi
    check = fl.verify(_fb([[1.0]], [[2.0]]), Certificate("identified", face_dim=1))
    assert not check and check.status == "invalid"
    for exact in (True, False):
        assert not fl.verify(_fb([[1.0]], [[2.0]]), Certificate("identified", face_dim=1), exact=exact)


def test_a_nearly_psd_combination_does_not_verify():
    # pairs (e1, 0) and (sqrt(1.01e-5) e2, sqrt(0.99e-8) e3); the combination [1, 1] is
    # diag(1, 1.01e-5, -0.99e-8): not PSD, and Phi[1, 2] is free (the SDP finds it in +-0.031)
    Y = [[1, 0, 0], [0, np.sqrt(1.01e-5), 0]]
    Z = [[0, 0, 0], [0, 0, np.sqrt(0.99e-8)]]
    fb = _fb(Y, Z)
    forged = Certificate("identified", steps=(FaceStep(np.array([0, 1]), np.array([1.0, 1.0]), 2, "combination"),),
                         face_dim=1, reduced_rank=0, unknowns=1)
    for exact in (None, True, False):
        assert not fl.verify(fb, forged, exact=exact)


def test_the_same_trick_over_many_steps_at_p201_does_not_verify():
    # 100 steps, each removing two coordinates through a slightly indefinite combination
    p = 201
    Y, Z, steps = [], [], []
    for i in range(100):
        a, b = 2 * i, 2 * i + 1
        y1 = np.zeros(p); y1[a] = 1.0
        y2 = np.zeros(p); y2[b] = np.sqrt(1.01e-5)
        z2 = np.zeros(p); z2[b + 1] = np.sqrt(0.99e-8)
        Y += [y1, y2]
        Z += [np.zeros(p), z2]
        steps.append(FaceStep(np.array([2 * i, 2 * i + 1]), np.array([1.0, 1.0]), 2, "combination"))
    fb = _fb(Y, Z)
    forged = Certificate("identified", steps=tuple(steps), face_dim=1, reduced_rank=0, unknowns=1)
    check = fl.verify(fb, forged)
    assert not check.valid


def test_witnesses_must_be_exact_psd_solutions_and_independent():
    phi = target(4, 2, seed=0)
    fb = fl.teach(phi, "gaussian", n=5, seed=1)
    face = np.eye(4)
    for W in [(np.zeros((4, 4)), np.zeros((4, 4))), (phi, np.zeros((4, 4))), (phi, 2 * phi),
              (np.eye(4), np.eye(4) + 1e-3)]:
        cert = Certificate("not identified", face_dim=4, face=face, witnesses=W)
        assert not fl.verify(fb, cert), W
    # a unique ray (exact rank 2 of 3) with two witnesses that violate the pairs
    fb = _fb([[1, 0], [1, 1e-9]], [[0, 1], [0, 1]])
    cert = Certificate("not identified", face_dim=2, face=np.eye(2),
                       witnesses=(np.eye(2), np.array([[1, 0.5], [0.5, 1]])))
    for exact in (None, True, False):
        assert not fl.verify(fb, cert, exact=exact)


@pytest.mark.parametrize("scale", [1e-160, 1e160, 2.0 ** -1000, 2.0 ** 1000])
def test_extreme_scales_verify(scale):
    phi = target(5, 2, seed=3)
    fb = fl.teach(phi, "eigen")
    fb = fl.PairFeedback(fb.dense_y() * scale, fb.dense_z() * scale)
    sol = fl.solve(fb, "exact")
    assert sol.identified
    check = fl.verify(fb, sol)
    assert check.valid, check.reason


def test_malformed_certificates_are_refused_clearly():
    phi = target(4, 2, seed=1)
    fb = fl.teach(phi, "eigen")
    sol = fl.solve(fb, "exact")
    cert = sol.certificate
    (step, *_) = cert.steps
    bad_steps = [
        FaceStep(step.indices, np.full(len(step.values), np.nan), step.rank),
        FaceStep(step.indices, np.full(len(step.values), np.inf), step.rank),
        FaceStep(step.indices.astype(float), step.values, step.rank),
        FaceStep(step.indices, step.values[:-1], step.rank),
        FaceStep(step.indices, step.values, 1.5),
        FaceStep(step.indices, np.array(["a"] * len(step.values)), step.rank),
        FaceStep(step.indices + 10 ** 6, step.values, step.rank),
    ]
    for s in bad_steps:
        with pytest.raises(fl.CertificateError):
            fl.verify(fb, dataclasses.replace(cert, steps=(s,)))
    # all-zero multipliers: a combination of zero proves nothing
    zero = dataclasses.replace(cert, steps=(FaceStep(step.indices, 0 * step.values, step.rank),))
    assert not fl.verify(fb, zero)
    with pytest.raises(fl.CertificateError):
        fl.verify(fb, dataclasses.replace(cert, steps="nope"))
    wit = Certificate("not identified", face_dim=4, face=np.eye(4), witnesses=(np.eye(3), np.eye(4)))
    with pytest.raises(fl.CertificateError, match="shape"):
        fl.verify(fb, wit)
    wit = Certificate("not identified", face_dim=4, face=np.eye(4), witnesses=(np.eye(4) * np.nan, np.eye(4)))
    with pytest.raises(fl.CertificateError, match="NaN"):
        fl.verify(fb, wit)
    wit = Certificate("not identified", face_dim=4, face=np.eye(5), witnesses=(np.eye(5), np.eye(5)))
    with pytest.raises(fl.CertificateError, match="face"):
        fl.verify(fb, wit)


def test_a_forged_face_dim_does_not_buy_a_huge_dense_check():
    # the size is taken from the data: p = 110 with no step leaves 6105 unknowns, above the dense
    # limit, so the answer is "inconclusive" at once (the certificate's face_dim=0 is ignored)
    import time

    p = 110
    fb = fl.teach(np.eye(p), "sparse")
    forged = Certificate("identified", face_dim=0)
    t = time.perf_counter()
    check = fl.verify(fb, forged)
    assert check.status == "inconclusive" and time.perf_counter() - t < 20


def test_small_teacher_sets_verify_exactly_or_with_a_proved_margin():
    for teacher in ("eigen", "sparse"):
        phi = target(6, 2, seed=5)
        fb = fl.teach(phi, teacher)
        check = fl.verify(fb, fl.solve(fb, "exact"))
        assert check.valid
        assert check.exact or (check.margin is not None and check.margin <= 1e-6 and check.residual <= 1e-8)


# ---------------------------------------------------------------------------------------------
# the forging property test, with an independent SDP as the oracle


def _oracle_spread(fb, seeds=2):
    """Over {Phi PSD, tr Phi = 1, every pair}: None when infeasible, else the largest spread of a
    random linear functional (0 for a single point), solved by cvxpy directly."""
    import cvxpy as cp

    Y, Z = fb.dense_y(), fb.dense_z()
    scale = np.maximum(np.abs(Y).max(axis=1), np.abs(Z).max(axis=1))
    scale[scale == 0] = 1
    Y, Z = Y / scale[:, None], Z / scale[:, None]
    p = fb.p
    X = cp.Variable((p, p), PSD=True)
    cons = [cp.trace(X) == 1] + [Y[k] @ X @ Y[k] - Z[k] @ X @ Z[k] == 0 for k in range(len(Y))]
    spread = 0.0
    rng = np.random.default_rng(0)
    for _ in range(seeds):
        C = rng.standard_normal((p, p))
        C = (C + C.T) / 2
        vals = []
        for sense in (cp.Maximize, cp.Minimize):
            prob = cp.Problem(sense(cp.trace(C @ X)), cons)
            try:
                prob.solve(solver=cp.CLARABEL)
            except Exception:
                return "failed"
            if prob.status in ("infeasible", "infeasible_inaccurate"):
                return None
            if prob.status not in ("optimal", "optimal_inaccurate"):
                return "failed"
            vals.append(prob.value)
        spread = max(spread, abs(vals[0] - vals[1]) / max(1.0, np.linalg.norm(C, 2)))
    return spread


def _tamper(cert, draw, p, n):
    kind = draw(st.sampled_from(["verdict", "scale", "sign", "rank", "drop", "junk", "witness", "face", "none"]))
    steps = list(cert.steps)
    if kind == "verdict":
        v = "not identified" if cert.verdict == "identified" else "identified"
        return dataclasses.replace(cert, verdict=v)
    if kind in ("scale", "sign", "rank", "drop") and steps:
        t = draw(st.integers(0, len(steps) - 1))
        s = steps[t]
        if kind == "scale" and len(s.values):
            j = draw(st.integers(0, len(s.values) - 1))
            vals = s.values.copy()
            vals[j] *= draw(st.sampled_from([0.0, -1.0, 0.5, 2.0, 1 + 1e-9, 1e-8, 1e8]))
            steps[t] = dataclasses.replace(s, values=vals)
        elif kind == "sign":
            steps[t] = dataclasses.replace(s, values=-s.values)
        elif kind == "rank":
            steps[t] = dataclasses.replace(s, rank=max(1, s.rank + draw(st.sampled_from([-1, 1, 2]))))
        else:
            del steps[t]
        return dataclasses.replace(cert, steps=tuple(steps))
    if kind == "junk" and n:
        k = draw(st.integers(1, min(n, 4)))
        idx = np.array(draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k, unique=True)))
        vals = np.array(draw(st.lists(st.floats(-2, 2, allow_nan=False), min_size=k, max_size=k)))
        steps.insert(0, FaceStep(idx, vals, draw(st.integers(1, p)), "combination"))
        return dataclasses.replace(cert, steps=tuple(steps))
    if kind == "witness":
        f = cert.face.shape[1] if cert.face is not None else p
        face = cert.face if cert.face is not None else np.eye(p)
        rng = np.random.default_rng(draw(st.integers(0, 10 ** 6)))
        A = rng.standard_normal((f, f))
        W1 = A @ A.T + draw(st.sampled_from([0.0, 1e-6, 1.0])) * np.eye(f)
        W2 = draw(st.sampled_from(["copy", "identity", "zero"]))
        W2 = {"copy": 2 * W1, "identity": np.eye(f), "zero": np.zeros((f, f))}[W2]
        return dataclasses.replace(cert, verdict="not identified", face=face, witnesses=(W1, W2))
    if kind == "face" and cert.face is not None:
        rng = np.random.default_rng(draw(st.integers(0, 10 ** 6)))
        Q, _ = np.linalg.qr(rng.standard_normal(cert.face.shape))
        return dataclasses.replace(cert, face=Q)
    return cert


@needs_cvxpy
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_forged_certificates_never_verify_for_false_claims(data):
    draw = data.draw
    p = draw(st.integers(2, 5))
    r = draw(st.integers(1, p))
    exact = draw(st.booleans())  # the teachers' exact (integer) output: verify's exact path decides
    tseed = draw(st.integers(0, 10 ** 4))
    D = fl.datasets.integer_factor(p, r, seed=tseed) if exact else None
    phi = (D.T @ D).astype(float) if exact else target(p, r, seed=tseed)
    teacher = draw(st.sampled_from(["eigen", "gaussian", "compact", "sparse"]))
    P = p * (p + 1) // 2
    kw = {"n": draw(st.integers(max(1, P - 4), P + 1)), "seed": draw(st.integers(0, 100))} if teacher == "gaussian" else {}
    if exact:
        fb = fl.teach(fl.Factored(D.astype(float)) if teacher == "compact" else phi, teacher, exact=True, **kw)
    else:
        fb = fl.teach(phi, teacher, **kw)
    if draw(st.booleans()):  # an inconsistent set: one pair's z rescaled
        Y, Z = fb.dense_y(), fb.dense_z().copy()
        k = draw(st.integers(0, len(Y) - 1))
        Z[k] *= 1.5
        fb = fl.PairFeedback(Y, Z)
    try:
        sol = fl.solve(fb, "exact")
    except fl.FeatlibError:
        sol = None
    if sol is not None and sol.certificate is not None:
        cert = sol.certificate
    else:
        cert = Certificate("identified", face_dim=p)
    forged = _tamper(cert, draw, p, len(fb))
    scale = draw(st.sampled_from([1.0, 1e-150, 1e150]))
    if scale != 1.0:
        fb = fl.PairFeedback(fb.dense_y() * scale, fb.dense_z() * scale)
    try:
        check = fl.verify(fb, forged)
    except fl.CertificateError:
        return
    if not check.valid:
        return
    spread = _oracle_spread(fb)
    if spread == "failed":
        return
    if forged.verdict == "identified":
        assert spread is not None, "verify said identified, but no non-zero PSD matrix satisfies the pairs"
        assert spread < 1e-4 + (check.margin or 0.0), (spread, check)
    else:
        assert spread is not None and spread > 1e-7, (spread, check)


def test_not_identified_at_larger_p_is_proved_in_floating_point_and_false_claims_fail():
    phi = target(9, 4, seed=1)
    fb = fl.teach(phi, "gaussian", n=28, seed=1)
    sol = fl.solve(fb, "exact")
    assert sol.decided and not sol.identified
    check = fl.verify(fb, sol)
    assert check.valid and not check.exact  # a proof of two exact PSD solutions, by certified bounds
    cert = sol.certificate
    W1, W2 = cert.witnesses
    # the claim is true here, so other witnesses may prove it too (verify corrects them onto the exact
    # solutions); a zero or parallel pair proves nothing
    for forged in [(np.zeros_like(W1), W2), (W1, 2 * W1)]:
        assert not fl.verify(fb, dataclasses.replace(cert, witnesses=forged), exact=False), forged
    # the false claim "identified" never verifies, whatever it carries
    for steps in [(), cert.steps]:
        assert not fl.verify(fb, dataclasses.replace(cert, verdict="identified", steps=steps))
    if __import__("importlib").util.find_spec("cvxpy"):
        spread = _oracle_spread(fb)
        assert spread not in (None, "failed") and spread > 1e-6  # the oracle agrees: not identified


def test_the_modular_rank_shortcut_agrees_with_rational_elimination():
    from fractions import Fraction

    from featlib import certificates as C

    rng = np.random.default_rng(3)
    for trial in range(40):
        n, m = int(rng.integers(1, 7)), int(rng.integers(1, 6))
        A = rng.standard_normal((n, m))
        if trial % 3 == 0 and n > 1:
            A[-1] = A[0] * 0.5 + (A[1] if n > 2 else 0)  # an exact dependence (dyadic floats)
        if trial % 4 == 0:
            A = np.round(A * 3)  # small integers: ranks below full happen
        M = C._q(A)
        full = C._rank(M) == m
        # the shortcut never claims full rank when it is not; it agrees on these matrices
        assert C._full_column_rank_mod_prime(M, m) == full
    M = np.array([[Fraction(1, 3), Fraction(2, 3)], [Fraction(1, 6), Fraction(1, 3)]], dtype=object)
    assert not C._full_column_rank_mod_prime(M, 2) and C._rank(M) == 1


def test_exact_snapping_is_bounded_on_large_steps():
    # a p = 12 certificate whose step combines 198 sampled float pairs: snapping its multipliers to exact
    # ones by rational elimination ran for over 10 minutes (18 s on FLINT); above SNAP_MAX_WORK it is not
    # tried and the floating-point check decides, as checks says (valid since the step's combination is
    # computed exactly and the final system solves for the face-to-removed block: a bound of about 1e-10;
    # inconclusive before, at about 1e-3)
    phi = fl.datasets.random_feature_matrix(12, 6, seed=0)
    fb = fl.teach(phi, "sparse-sampled", seed=0, n=234, mu=1 - 2 / 12, s=3)
    sol = fl.solve(fb, "exact")
    step = sol.certificate.steps[0]
    C = fl.certificates
    Yq = C._q(fb.dense_y()[step.indices])
    Zq = C._q(fb.dense_z()[step.indices])
    kernel = C._numeric_kernel(Yq, Zq, np.asarray(step.values), step.rank)
    assert C.snap_work(Yq, Zq, kernel) > C.SNAP_MAX_WORK
    v = fl.verify(fb, sol)
    assert "cannot be made exact" in v.checks[0] and not v.exact
    assert v.status == "valid" and v.margin < 1e-8 and "face-to-removed block" in v.checks[-1]


def test_a_given_integer_face_proves_not_identified_only_with_two_exact_pd_solutions_on_it():
    # verify's exact path also takes a "not identified" certificate's own face as given (short rationals):
    # two independent positive definite W with B W B^T solving every pair exactly prove the claim
    D = fl.datasets.integer_factor(6, 2, seed=3)
    phi = (D.T @ D).astype(float)
    fb = fl.teach(fl.Factored(D.astype(float)), "compact", exact=True)  # identifies phi (proved minimal)
    R = D.T.astype(float)  # an integer basis of phi's range: the one PSD solution there is phi (a ray)
    W = np.linalg.lstsq(R, np.linalg.lstsq(R, phi, rcond=None)[0].T, rcond=None)[0]
    for witnesses in [(W, W + 1e-3 * np.eye(2)), (W, 2 * W)]:
        cert = Certificate("not identified", face_dim=2, face=R, witnesses=witnesses)
        for exact in (None, True):
            assert not fl.verify(fb, cert, exact=exact), (witnesses, exact)
    # a true claim: two coordinates that no pair touches
    Y = np.array([[1.0, 0, 0, 0], [0, 1, 1, 0]])
    Z = np.array([[0, 1.0, 0, 0], [1, 0, 1, 0]])
    fb = _fb(Y, Z)
    B = np.array([[0, 0], [0, 0], [0, 0], [1.0, 0]]), np.array([[0, 0], [0, 0], [1.0, 0], [0, 1.0]])
    good = Certificate("not identified", face_dim=2, face=B[1], witnesses=(np.eye(2), np.diag([1.0, 2.0])))
    check = fl.verify(fb, good, exact=True)
    assert check.valid and "taken exactly" in " ".join(check.checks)
    # (pair 2 touches e3, but with equal weight on both sides, so it vanishes on span(e3, e4)); a face with
    # a repeated column, one with entries beyond GIVEN_FACE_MAX_BITS, witnesses that are not PD, or parallel
    # witnesses: refused
    for face, wit in [(np.array([[0, 0], [0, 0], [0, 0], [1.0, 1.0]]), (np.eye(2), np.diag([1.0, 2.0]))),
                      (B[1] * 2.0 ** 80 + np.array([[0, 0], [0, 0], [0, 0], [1.0, 0]]), (np.eye(2), np.diag([1.0, 2.0]))),
                      (B[1], (np.diag([1.0, -1.0]), np.eye(2))),
                      (B[1], (np.eye(2), 2 * np.eye(2)))]:
        assert not fl.verify(fb, Certificate("not identified", face_dim=2, face=face, witnesses=wit), exact=True)

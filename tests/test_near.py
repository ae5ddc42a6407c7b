"""Near solutions (featlib.near, featlib.solvers.near): the search, the proof, and attacks on the proof."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import featlib as fl
from featlib import experiments
from featlib.near import NEAR_VERDICT, NearSolutions, verify_near_solutions

pytest.importorskip("cvxpy")


def _sparse_case(p, r, seed, n, ens="s2"):
    """The first n of the phase experiments' float pairs (as :func:`featlib.experiments.phase_thresholds`
    draws them) for one seed."""
    opts = {"s": 2, "sampler": "exact"} if ens == "s2" else {"s": None, "mu": 1 - 2 / p, "sampler": "bernoulli"}
    target = experiments._phase_target(p, r, seed, False)
    hi = fl.bounds.convex_phase_transition(p, r)["full_rank"]
    return fl.teach(target, "sparse-sampled", n=hi, seed=seed, **opts)[:n], target


@pytest.fixture(scope="module")
def undecided_case():
    # 2-sparse float pairs, p = 10, rank 1, seed 2, first 14 pairs: the exact solver leaves it undecided
    # (no positive definite solution, and no combination step polishes to a PSD one), and there are two
    # rank-1 solutions at trace distance 2 that satisfy every pair to about 1e-17
    fb, target = _sparse_case(10, 1, 2, 14)
    return fb, target


def test_the_solver_leaves_the_case_undecided_and_near_solutions_decide_it(undecided_case):
    fb, target = undecided_case
    sol = experiments._solve_quiet(fb)
    assert not sol.decided
    near = fl.solvers.near_solutions(fb)
    assert isinstance(near, NearSolutions)
    check = verify_near_solutions(fb, near)
    assert check.valid and check.verdict == NEAR_VERDICT and not check.exact
    assert check.distance >= 2e-2 and check.residual <= 1e-12
    # independently of the proof: both matrices are PSD, satisfy the pairs, and are far apart
    W1, W2 = near.matrices()
    for W in (W1, W2):
        assert np.linalg.eigvalsh(W)[0] >= -1e-12 * np.trace(W)
        assert fb.relative_residuals(W).max() <= 1e-12
    assert np.abs(np.linalg.eigvalsh(W1 / np.trace(W1) - W2 / np.trace(W2))).sum() >= 2e-2
    # the experiments label it, and do not count it as identified
    label, status = experiments._pair_outcome(fb, target, 1e-2)
    assert (label, status) == ("not identified (near solutions)", "valid")


def test_identified_pairs_have_no_near_solutions():
    target = fl.datasets.random_feature_matrix(5, 1, seed=0)
    fb = fl.teach(target, "gaussian", n=14, seed=0)  # one fewer than the unknowns, far above the threshold
    assert fl.solve(fb, "exact").identified
    assert fl.solvers.near_solutions(fb) is None


def test_forged_claims_are_refused(undecided_case):
    fb, _ = undecided_case
    near = fl.solvers.near_solutions(fb)
    L1, L2 = near.factors
    p = fb.p
    rng = np.random.default_rng(0)

    def status(factors, tol=1e-12, distance=2e-2):
        return verify_near_solutions(fb, NearSolutions(factors=factors, tol=tol, distance=distance)).status

    assert status((L1, L2)) == "valid"
    assert status((L1, L1)) == "invalid"  # the same matrix twice
    assert status((L1, 3.0 * L1)) == "invalid"  # a multiple: the same after scaling to trace 1
    assert status((L1, rng.standard_normal((p, 2)))) == "invalid"  # violates the pairs
    assert status((L1, L2 + 1e-6 * rng.standard_normal(L2.shape))) == "invalid"  # tampered by 1e-6
    assert status((L1, L2), distance=2.0) != "valid"  # farther than they are (trace distance 2 at most)
    assert status((L1, L2), tol=1e-30) != "valid"  # a residual below what floating point can prove
    for bad in ((L1,), (L1, L2, L1), (L1, np.full_like(L2, np.nan)), (L1, np.zeros_like(L2)),
                (L1, L2[:-1]), (L1, np.ones((p, p + 1))), (L1, L2.astype(complex)), (L1, [[1, 2], [3]])):
        with pytest.raises(fl.CertificateError):
            status(bad)
    for tol, distance in ((0.0, 2e-2), (1.0, 2e-2), (np.nan, 2e-2), (1e-12, 0.0), (1e-12, 3.0), ("1e-12", 2e-2)):
        with pytest.raises(fl.CertificateError):
            status((L1, L2), tol=tol, distance=distance)
    with pytest.raises(fl.CertificateError):
        verify_near_solutions(fb, fl.solve(fb, "exact", warn=False))
    with pytest.raises(fl.FeatlibError):
        verify_near_solutions("pairs", near)


@pytest.mark.parametrize("pair_scale, factor_scale", [(1e160, 1e150), (1e-160, 1e-150), (1e-160, 1e150)])
def test_the_proof_is_scale_free(undecided_case, pair_scale, factor_scale):
    fb, _ = undecided_case
    near = fl.solvers.near_solutions(fb)
    big = fl.PairFeedback(fb.dense_y() * pair_scale, fb.dense_z() * pair_scale)
    scaled = NearSolutions(factors=tuple(factor_scale * L for L in near.factors), tol=near.tol, distance=near.distance)
    assert verify_near_solutions(big, scaled).valid


def _exact_residual_ok(Y, Z, L, tol):
    """In rational arithmetic: every pair holds for L L^T to relative residual tol (trace-relative)."""
    Lq = [[Fraction(float(v)) for v in row] for row in L]
    tr = sum(v * v for row in Lq for v in row)
    for y, z in zip(Y, Z):
        yq, zq = [Fraction(float(v)) for v in y], [Fraction(float(v)) for v in z]
        k = len(Lq[0])
        uy = [sum(yq[i] * Lq[i][j] for i in range(len(yq))) for j in range(k)]
        uz = [sum(zq[i] * Lq[i][j] for i in range(len(zq))) for j in range(k)]
        r = sum(u * u for u in uy) - sum(u * u for u in uz)
        nu = sum(v * v for v in yq) + sum(v * v for v in zq)
        if nu and abs(r) > Fraction(tol) * nu * tr:
            return False
    return True


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), p=st.integers(2, 5), n=st.integers(1, 6), delta=st.integers(3, 17),
       edge=st.sampled_from([0.5, 0.999999, 1.0, 1.000001, 2.0]), dedge=st.sampled_from([0.5, 0.999999, 1.000001, 2.0]),
       expo=st.integers(-60, 60))
def test_a_valid_claim_is_true(seed, p, n, delta, edge, dedge, expo):
    """Forging at the edge.  Two diagonal matrices (given by rotated factors, so that nothing is exact in
    floating point) both satisfy pairs z = Q y + 10^-delta e (Q a diagonal sign matrix) only
    approximately; the claimed tol is set at a factor ``edge`` of their largest computed residual and the
    claimed distance at a factor ``dedge`` of their true distance.  Whenever the check says valid, the
    residual claim holds in rational arithmetic and the distance claim holds (to 1e-12); a residual it
    calls invalid is invalid in rational arithmetic."""
    rng = np.random.default_rng(seed)
    d1, d2 = rng.uniform(0.1, 2.0, p), rng.uniform(0.1, 2.0, p)
    L1 = (np.sqrt(d1)[:, None] * np.linalg.qr(rng.standard_normal((p, p)))[0]) * 2.0 ** expo
    L2 = np.sqrt(d2)[:, None] * np.linalg.qr(rng.standard_normal((p, p)))[0]
    Y = rng.standard_normal((n, p))
    Z = Y * rng.choice([-1.0, 1.0], p) + 10.0 ** -delta * rng.standard_normal((n, p))
    fb = fl.PairFeedback(Y, Z)
    nu = (Y ** 2).sum(1) + (Z ** 2).sum(1)
    res = max(float(np.max(np.abs(np.einsum("ij,jk,ik->i", Y, W, Y) - np.einsum("ij,jk,ik->i", Z, W, Z)) / nu)
                    / np.trace(W)) for W in (L1 @ L1.T, L2 @ L2.T))
    tol = min(max(res * edge, 1e-300), 0.5)
    W1, W2 = L1 @ L1.T, L2 @ L2.T
    true_dist = float(np.abs(np.linalg.eigvalsh(W1 / np.trace(W1) - W2 / np.trace(W2))).sum())
    dist = min(max(true_dist * dedge, 1e-300), 2.0)
    out = verify_near_solutions(fb, NearSolutions(factors=(L1, L2), tol=tol, distance=dist))
    if out.valid:
        assert _exact_residual_ok(Y, Z, L1, tol) and _exact_residual_ok(Y, Z, L2, tol)
        assert true_dist >= dist * (1 - 1e-12)
    if out.status == "invalid" and out.reason.startswith("matrix"):
        i = int(out.reason.split()[1])
        assert not _exact_residual_ok(Y, Z, (L1, L2)[i - 1], tol)
    if out.status == "invalid" and "closer" in out.reason:
        assert true_dist < dist * (1 + 1e-12)
    # a rotated, rescaled copy is the same matrix: never valid
    same = NearSolutions(factors=(L1, 3.0 * L1 @ np.linalg.qr(rng.standard_normal((p, p)))[0]), tol=0.5,
                         distance=1e-9)
    assert not verify_near_solutions(fb, same).valid


def test_near_solutions_arguments():
    fb = fl.teach(fl.datasets.random_feature_matrix(4, 1, seed=0), "gaussian", n=3, seed=0)
    for kw in ({"distance": 0.0}, {"distance": -1.0}, {"distance": 2.5}, {"tol": 0.0}, {"tol": 2.0}):
        with pytest.raises(fl.FeatlibError):
            fl.solvers.near_solutions(fb, **kw)
    with pytest.raises(fl.FeatlibError):
        fl.solvers.near_solutions("pairs")
    big = fl.PairFeedback(np.ones((1, 50)), np.ones((1, 50)))
    with pytest.raises(fl.FeatlibError):
        fl.solvers.near_solutions(big)


def test_a_certificate_built_around_a_polished_solution():
    # 2-sparse float pairs, p = 10, rank 4, seed 5, first 43 pairs: the facial reduction's own step was
    # too inexact to decide; one step vanishing on a polished solution's range, re-centred, is proved
    fb, target = _sparse_case(10, 4, 5, 43)
    sol = fl.solve(fb, "exact")
    assert sol.decided and sol.identified and sol.info["identified_by"] == "polished solution"
    assert "undecided_before" in sol.info
    check = fl.verify(fb, sol, margin=1e-2, exact=False)
    assert check.valid and check.margin <= 1e-2
    assert fl.relative_error(sol.phi, target) <= 1e-6
    assert experiments._pair_outcome(fb, target, 1e-2)[0] == "identified"
    # the search alone, and its certificate tampered with: verify refuses
    around = fl.solvers.near.identified_around(fb)
    assert around is not None and around.identified
    step = around.certificate.steps[0]
    bad = fl.Certificate(verdict="identified", steps=(fl.certificates.FaceStep(
        indices=step.indices, values=step.values * (1 + 1e-3 * np.arange(len(step.values))), rank=step.rank,
        kind="combination"),), face_dim=around.certificate.face_dim, reduced_rank=around.certificate.reduced_rank,
        unknowns=around.certificate.unknowns, face=around.certificate.face)
    assert not fl.verify(fb, bad, margin=1e-2, exact=False).valid


def test_where_the_solution_set_is_not_one_ray_nothing_is_built_around_it(undecided_case):
    fb, _ = undecided_case  # two rank-1 solutions far apart
    assert fl.solvers.near.identified_around(fb) is None
    with pytest.raises(fl.FeatlibError):
        fl.solvers.near.identified_around("pairs")

"""solve(): exact and SDP recovery, identification and the tightness the theorems state."""
import warnings

import numpy as np
import pytest

import featlib as fl
from featlib import bounds
from featlib.linalg import svec_dim
from conftest import needs_cuda, needs_cvxpy, needs_torch, target


def test_plain_least_squares_is_not_enough():
    """The trap: the linear system alone leaves 18 dimensions for p=10, r=8 (paper's 38 pairs)."""
    phi = target(10, 8, seed=0)
    fb = fl.teach(phi, "eigen")
    A = fb.constraints().toarray()
    assert len(fb) == 38
    assert svec_dim(10) - np.linalg.matrix_rank(A) == 18
    sol = fl.solve(fb, "exact")
    assert sol.identified and sol.version_space_dim == 1
    assert sol.info["null_space"].shape == (10, 2)


@pytest.mark.parametrize("p,r", [(4, 1), (6, 3), (10, 8), (9, 9)])
def test_eigen_tightness(p, r):
    phi = target(p, r, seed=p + r)
    fb = fl.teach(phi, "eigen")
    ker, null = fb.meta["kernel_rows"], fb.meta["null_rows"]
    full = fl.solve(fb, "exact")
    assert full.identified
    # dropping one (0, v) null-space pair loses identification
    for k in null:
        keep = np.setdiff1d(np.arange(len(fb)), [k])
        sol = fl.solve(fb[keep], "exact")
        assert not sol.identified and sol.decided, k
    # dropping one kernel pair does not (the theorem's "-1") ...
    droppable = [k for k in ker if fb.meta["kernel_pairs"][k][0] != fb.meta["kernel_pairs"][k][1] or r >= 3 or r == 1]
    for k in droppable:
        keep = np.setdiff1d(np.arange(len(fb)), [k])
        sol = fl.solve(fb[keep], "exact")
        assert sol.identified, k
        assert fl.relative_error(sol.phi, phi) < 1e-8
    # ... but dropping two does
    if r >= 2:
        keep = np.setdiff1d(np.arange(len(fb)), ker[:2])
        sol = fl.solve(fb[keep], "exact")
        assert not sol.identified and sol.decided and sol.version_space_dim == 2


def test_eigen_r2_redundant_pair_is_the_reference_itself():
    # for r = 2 the reference is v1 + v2, so the pair (v1+v2, y) is trivial and the only droppable one
    phi = target(5, 2, seed=3)
    fb = fl.teach(phi, "eigen")
    pairs = fb.meta["kernel_pairs"]
    for k, (i, j) in enumerate(pairs):
        keep = np.setdiff1d(np.arange(len(fb)), [k])
        assert fl.solve(fb[keep], "exact").identified == (i != j)


@pytest.mark.parametrize("p", [3, 6, 10])
def test_gaussian_tightness(p):
    phi = target(p, p, seed=p)
    P = svec_dim(p)
    fb = fl.teach(phi, "gaussian", n=P - 1, seed=1)
    assert fl.solve(fb, "exact").identified
    short = fl.solve(fb[: P - 2], "exact")
    assert not short.identified and short.decided and short.version_space_dim == 2


def test_version_space_dimension_counts_down(rng):
    phi = target(6, 6, seed=2)
    fb = fl.teach(phi, "gaussian", seed=0)
    dims = [fl.solve(fb[:k], "exact").version_space_dim for k in range(0, len(fb) + 1, 4)]
    assert dims == [svec_dim(6) - k for k in range(0, len(fb) + 1, 4)]


def test_proposition1_full_rank_needs_all(rng):
    phi = target(5, 5, seed=8)
    fb = fl.teach(phi, "sparse")
    # the reference pair (e_k, e_k) is trivial: P - 1 informative pairs, and every one is needed
    k = fb.meta["reference"]
    informative = [i for i, (a, b) in enumerate(fb.meta["pairs"]) if not (a == b == k)]
    assert len(informative) == bounds.full_rank_lower(5)
    for drop in informative[:5]:
        keep = np.setdiff1d(np.arange(len(fb)), [drop])
        assert not fl.solve(fb[keep], "exact").identified


def test_sparse_path_matches_dense():
    phi = target(50, 12, seed=4)
    fb = fl.teach(phi, "sparse")
    s1 = fl.solve(fb, "exact", sparse=True)
    assert s1.info["path"] == "sparse" and s1.info["peeled"]
    assert s1.identified and fl.relative_error(s1.phi, phi) < 1e-8
    # one pair fewer: back substitution cannot finish, and the answer falls back to the full logic
    # Without the pair (e_0, sqrt(c) e_k) the pair equalities have a second solution W = E_00 - (e_0 u^T + u e_0^T) / 2
    # (u = e_1 + ... + e_49), and W is indefinite on the kernel of the rank-12 target, so Phi* + t W is PSD only
    # for t = 0: identified, through the PSD constraint (a combination step). The solver used to leave it
    # undecided (this test said so); it now decides, and the independent argument is checked here.
    short = fl.solve(fb[1:], "exact", sparse=True, warn=False)
    W = np.zeros((50, 50))
    W[0, 0], W[0, 1:], W[1:, 0] = 1.0, -0.5, -0.5
    assert np.abs(fb[1:].constraints() @ fl.linalg.svec(W)).max() < 1e-12
    K = np.linalg.eigh(phi)[1][:, :38]
    ev = np.linalg.eigvalsh(K.T @ W @ K)
    assert ev[0] < -1 and ev[-1] > 1
    assert short.decided and short.identified and fl.relative_error(short.phi, phi) < 1e-8
    assert fl.verify(fb[1:], short).status != "invalid"
    # the same pairs in another order, with the reference no longer the most frequent unknown first
    perm = np.random.default_rng(0).permutation(len(fb))
    s3 = fl.solve(fb[perm], "exact", sparse=True)
    assert s3.identified and fl.relative_error(s3.phi, phi) < 1e-8
    # zero diagonal entries become null coordinates on the sparse path
    D = fl.datasets.random_dictionary(6, 20, seed=1)
    D[:, [3, 7]] = 0.0
    phi2 = D.T @ D
    s2 = fl.solve(fl.teach(phi2, "sparse"), "exact", sparse=True)
    assert s2.info["path"] == "sparse"
    assert set(s2.info["null_coordinates"]) == {3, 7}
    assert fl.relative_error(s2.phi, phi2) < 1e-8


def test_peeling_solves_sampled_sparse_feedback_or_falls_back():
    phi = target(30, 30, seed=6)
    fb = fl.teach(phi, "sparse-sampled", n=3000, mu=0.9, s=3, seed=0)
    sol = fl.solve(fb, "exact", sparse=True)
    assert sol.identified and fl.relative_error(sol.phi, phi) < 1e-8


@pytest.mark.parametrize("p,r", [(1, 1), (5, 1), (6, 2), (10, 8), (30, 8), (12, 12)])
def test_basis_path_matches_dense(p, r):
    phi = target(p, r, seed=p * r)
    fb = fl.teach(phi, "eigen")
    s_basis = fl.solve(fb, "exact")
    assert s_basis.info["path"] == "basis" and s_basis.identified
    assert fl.relative_error(s_basis.phi, phi) < 1e-8 and s_basis.residual < 1e-10
    s_dense = fl.solve(fb, "exact", basis_path=False)
    assert s_dense.info["path"] == "dense"
    assert fl.relative_error(s_basis.phi, s_dense.phi) < 1e-8
    # one null-space pair fewer: the basis path cannot finish and the dense path decides
    short = fl.solve(fb[:-1], "exact", warn=False)
    assert not short.identified if r < p else short.identified


def test_solution_normalisation_and_fields():
    phi = target(5, 3)
    sol = fl.solve(fl.teach(phi, "eigen"))
    assert np.isclose(np.trace(sol.phi), 1.0)
    assert np.allclose(sol.phi, sol.phi.T)
    assert np.linalg.eigvalsh(sol.phi)[0] >= -1e-14
    assert sol.residual < 1e-12 and sol.seconds >= 0 and sol.method == "exact"
    assert "identified=True" in repr(sol)


def test_inconsistent_feedback_is_reported():
    phi = target(4, 4, seed=1)
    fb = fl.teach(phi, "gaussian", n=30, seed=0)  # more pairs than unknowns: noise shows
    noisy = fl.PairFeedback(fb.y, fb.z * (1 + 1e-3 * np.random.default_rng(0).standard_normal((len(fb), 1))))
    with pytest.raises(fl.InconsistentFeedbackError, match="sdp"):
        fl.solve(noisy, "exact")


def test_exact_undecided_hidden_face_warns():
    # a rank-1 target from 12 generic pairs: identified only through a PSD *combination* of pairs;
    # without the combination search the exact solver cannot decide and says so
    phi = target(6, 1, seed=3)
    fb = fl.teach(phi, "gaussian", n=12, seed=0)
    with pytest.warns(fl.IdentifiabilityWarning, match="method='sdp'"):
        sol = fl.solve(fb, "exact", combinations=False)
    assert not sol.decided and not sol.identified and sol.certificate is None


@needs_cvxpy
def test_exact_decides_the_hidden_face_by_a_psd_combination():
    phi = target(6, 1, seed=3)
    fb = fl.teach(phi, "gaussian", n=12, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fl.IdentifiabilityWarning)
        sol = fl.solve(fb, "exact")
    assert sol.decided and sol.identified and fl.relative_error(sol.phi, phi) < 1e-5
    (step,) = [s for s in sol.certificate.steps if s.kind == "combination"]
    assert step.rank == 5 and sol.certificate.face_dim == 1
    # the combination now comes from the boundary point (projections onto its rank), without the SDP
    # whose multipliers were accurate to about 1e-7 (then floating point proved only 1e-3); the float
    # pairs are not exactly consistent, and floating point proves every PSD solution within 1e-9
    check = fl.verify(fb, sol)
    assert check.valid and check.margin < 1e-9


@needs_cvxpy
@pytest.mark.parametrize("method", fl.TEACHERS)
def test_sdp_recovers_each_teacher(method):
    phi = target(8, 5, seed=11)
    kw = {"mu": 0.4, "n": 120} if method == "sparse-sampled" else {}
    fb = fl.teach(phi, method, seed=2, **kw)
    sol = fl.solve(fb, "sdp")
    assert sol.method == "sdp" and sol.identified and sol.decided
    assert fl.relative_error(sol.phi, phi) < 1e-5


@needs_cvxpy
@pytest.mark.parametrize("p,r", [(1, 1), (2, 1), (2, 2), (5, 1), (6, 6), (9, 4)])
def test_sdp_many_shapes(p, r):
    phi = target(p, r, seed=3 * p + r)
    for method in ("eigen", "sparse", "gaussian"):
        sol = fl.solve(fl.teach(phi, method, seed=1), "sdp")
        assert sol.identified, (p, r, method)
        assert fl.relative_error(sol.phi, phi) < 1e-5


@needs_cvxpy
def test_sdp_uniqueness_test_both_ways():
    phi = target(7, 4, seed=5)
    fb = fl.teach(phi, "eigen")
    ker = fb.meta["kernel_rows"]
    keep = np.setdiff1d(np.arange(len(fb)), ker[:2])
    sol = fl.solve(fb[keep], "sdp")
    # the exact solver decides these pairs: its certificate backs the verdict, no probes run
    assert not sol.identified and sol.decided and sol.info["verdict_from"] == "exact solver's certificate"
    assert sol.info["probe_spreads"] == [] and fl.verify(fb[keep], sol).valid
    # hidden face: identified only through the PSD constraint
    phi1 = target(6, 1, seed=3)
    fb1 = fl.teach(phi1, "gaussian", n=12, seed=0)
    s1 = fl.solve(fb1, "sdp")
    # the SDP runs on the exact solver's face (its combination step, refined to rounding): one ray
    assert s1.identified and s1.info["complement"].shape[1] == 1
    assert fl.relative_error(s1.phi, phi1) < 1e-10


@needs_cvxpy
def test_sdp_probes_when_the_exact_solver_cannot_decide(monkeypatch):
    import featlib.solvers.sdp as sdp_mod

    def undecided(*a, **k):
        raise fl.FeatlibError("simulated: the exact solver could not decide")

    monkeypatch.setattr(sdp_mod, "solve_exact", undecided)
    fb = fl.teach(target(7, 4, seed=5), "eigen")
    keep = np.setdiff1d(np.arange(len(fb)), fb.meta["kernel_rows"][:2])
    sol = fl.solve(fb[keep], "sdp")
    assert not sol.identified and sol.decided and max(sol.info["probe_spreads"]) > 1e-2
    assert sol.certificate is None and "numerical evidence" in sol.info["verdict_from"]


@needs_cvxpy
def test_sdp_never_contradicts_a_proof():
    # the SDP's probes show spreads ~2e-4 (< spread_tol 1e-3) on this set, which is not a single point:
    # the exact solver proves two positive definite solutions, and the SDP back end now returns that proof
    fb = fl.teach(fl.datasets.random_feature_matrix(5, 4, seed=304), "gaussian", n=13, seed=3)
    exact, sol = fl.solve(fb, "exact"), fl.solve(fb, "sdp")
    assert exact.decided and not exact.identified
    assert sol.decided and not sol.identified and sol.certificate is not None
    assert fl.verify(fb, sol).valid


@needs_cvxpy
def test_auto_hands_undecided_and_noisy_problems_to_sdp():
    phi1 = target(6, 1, seed=3)
    fb1 = fl.teach(phi1, "gaussian", n=12, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fl.IdentifiabilityWarning)
        sol = fl.solve(fb1)
    assert sol.method == "exact" and sol.identified  # decided by a PSD combination of pairs
    with warnings.catch_warnings():
        warnings.simplefilter("error", fl.IdentifiabilityWarning)
        sol = fl.solve(fb1, combinations=False)
    assert sol.method == "sdp" and sol.identified
    phi = target(4, 4, seed=1)
    fb = fl.teach(phi, "gaussian", n=30, seed=0)
    noisy = fl.PairFeedback(fb.y, fb.z * (1 + 1e-4 * np.random.default_rng(0).standard_normal((len(fb), 1))))
    est = fl.solve(noisy)
    assert est.method == "sdp" and not est.identified and est.version_space_dim == 0
    assert fl.pcc(est.phi, phi) > 0.99
    assert fl.solve(fl.teach(phi, "eigen")).method == "exact"


@needs_torch
def test_gd_recovers_small_problem():
    phi = target(6, 6, seed=0)
    sol = fl.solve(fl.teach(phi, "sparse"), "gd", epochs=1500, lr=1e-2, device="cpu")
    assert sol.method == "gd" and not sol.decided and sol.info["device"] == "cpu"
    assert fl.pcc(sol.phi, phi) > 0.999
    assert sol.info["loss_history"][-1] < sol.info["loss_history"][0]


@needs_torch
@pytest.mark.parametrize("storage", ["sparse", "dense"])
def test_gd_recovers_p20_on_cpu(storage):
    phi = target(20, 20, seed=1)
    fb = fl.teach(phi, "sparse", storage=storage)
    sol = fl.solve(fb, "gd", epochs=3000, device="cpu")
    assert fl.pcc(sol.phi, phi) > 0.999


@needs_torch
def test_gd_sparse_batches_basis_storage_and_early_stop():
    phi = target(8, 3, seed=2)
    fb = fl.teach(phi, "eigen")  # basis storage: U^T y through B^T U
    assert fb.storage == "basis"
    sol = fl.solve(fb, "gd", epochs=4000, rank=3, device="cpu")
    assert fl.pcc(sol.phi, phi) > 0.999
    mini = fl.solve(fl.teach(phi, "sparse-sampled", n=400, mu=0.6, s=3, seed=0), "gd", batch_size=64,
                    epochs=400, patience=5, device="cpu", seed=1)
    assert mini.info["epochs_run"] <= 400 and fl.pcc(mini.phi, phi) > 0.99
    with pytest.raises(fl.ShapeError, match="init"):
        fl.solve(fb, "gd", init=np.ones((3, 3)), device="cpu")


@needs_torch
def test_gd_float32_cosine_schedule_and_sampled_pairs_above_the_degrees_of_freedom():
    # 3-sparse sampled pairs, twice the rank-d degrees of freedom, most entries touched:
    # the low-rank factorisation fills in what the pairs leave out
    D = fl.datasets.random_dictionary(4, 32, seed=0)
    phi = D.T @ D
    n = 12 * fl.bounds.low_rank_dof(32, 4)
    fb = fl.teach(phi, "sparse-sampled", n=n, sampler="exact", s=3, seed=1)
    assert fl.experiments.coverage(fb)["off_diagonal"] > 0.9
    sol = fl.solve(fb, "gd", rank=4, lr=3e-2, batch_size=128, epochs=150, schedule="cosine", dtype="float32",
                   device="cpu", seed=0)
    assert sol.info["dtype"] == "float32" and sol.phi.dtype == np.float64
    assert fl.pcc(sol.phi, phi) > 0.999
    hist = sol.info["loss_history"]
    assert hist[-1] < 1e-3 * hist[0]
    with pytest.raises(fl.UnknownMethodError, match="'constant', 'cosine'"):
        fl.solve(fb, "gd", schedule="step", device="cpu")
    with pytest.raises(fl.UnknownMethodError, match="'float64', 'float32'"):
        fl.solve(fb, "gd", dtype="float16", device="cpu")


@needs_cuda
def test_gd_on_cuda():
    phi = target(10, 10, seed=3)
    sol = fl.solve(fl.teach(phi, "sparse"), "gd", device="cuda", epochs=3000)
    assert sol.info["device"] == "cuda" and fl.pcc(sol.phi, phi) > 0.999
    assert fl.solve(fl.teach(phi, "sparse"), "gd", epochs=5).info["device"] == "cuda"  # "auto" picks the GPU


@needs_cuda
def test_gd_on_cuda_sampled_batches_float32():
    """The paper-scale path on a GPU: 3-sparse sampled pairs, mini-batches in a device-side order,
    float32, rank below p, cosine schedule."""
    D = fl.datasets.random_dictionary(6, 48, seed=2)
    phi = D.T @ D
    fb = fl.teach(phi, "sparse-sampled", n=4000, sampler="exact", s=3, seed=1)
    sol = fl.solve(fb, "gd", rank=6, lr=3e-2, batch_size=256, epochs=200, schedule="cosine", dtype="float32",
                   device="cuda", seed=0)
    assert sol.info["dtype"] == "float32" and len(sol.info["epoch_seconds"]) == sol.info["epochs_run"]
    assert fl.pcc(sol.phi, phi) > 0.999


def test_cholesky_psd_certificate(monkeypatch):
    from featlib.solvers import _result, exact

    rng = np.random.default_rng(0)
    F = rng.standard_normal((300, 40))
    psd = F @ F.T  # rank 40: singular, PSD
    assert _result.psd_certificate(psd, 1e-8) is not None
    oriented, top = _result.psd_certificate(-psd, 1e-8)
    assert np.allclose(oriented, psd) and np.isclose(top, np.linalg.norm(psd, 2))  # positive trace, lambda_max
    v = np.linalg.svd(F.T)[2][-1]  # outside the range of psd
    indefinite = psd - 1e-3 * np.linalg.norm(psd, 2) * np.outer(v, v)
    assert np.linalg.eigvalsh(indefinite)[0] < -1e-4 * np.linalg.norm(psd, 2)
    assert _result.psd_certificate(indefinite, 1e-8) is None
    # the sparse exact path with the Cholesky certificate (used above 1024 unknown coordinates)
    monkeypatch.setattr(exact, "CHOLESKY_CERTIFICATE_MIN", 0)
    phi = target(30, 7, seed=3)
    fb = fl.teach(phi, "sparse")
    sol = fl.solve(fb, "exact")
    assert sol.info["psd_certificate"] == "cholesky"
    assert sol.identified and fl.relative_error(sol.phi, phi) < 1e-10
    # the residual (lambda_max from the certificate, differences from the constraints): the same as
    # computing it afresh, to rounding
    assert abs(sol.residual - _result.max_relative_residual(fb, sol.phi)) < 1e-15


def test_sparse_exact_residual_read_off_the_constraints():
    """The sparse exact path computes its residual from the assembled constraints; it must equal
    max_relative_residual on the returned matrix, with dead coordinates (facial reduction), pairs
    whose constraint row vanishes (y = z, y = -z: dropped from M) and a trivial pair (0, 0)."""
    import scipy.sparse as sp

    from featlib.solvers import _result

    D = fl.datasets.random_dictionary(4, 12, seed=1)
    D[:, [2, 7]] = 0.0  # two dead latents: Phi* vanishes on those coordinates
    phi = D.T @ D
    fb = fl.teach(phi, "sparse")
    e = sp.identity(12, format="csr")
    odd = fl.PairFeedback(sp.vstack([e[3], e[5], sp.csr_matrix((1, 12))]),
                          sp.vstack([e[3], -e[5], sp.csr_matrix((1, 12))]))
    for feedback in (fb, fb + odd):
        sol = fl.solve(feedback, "exact")
        assert sol.identified and sol.info["path"] == "sparse" and fl.relative_error(sol.phi, phi) < 1e-10
        assert abs(sol.residual - _result.max_relative_residual(feedback, sol.phi)) < 1e-15


@needs_cvxpy
def test_exact_never_calls_consistent_pairs_inconsistent_and_certifies_inconsistency():
    # the case: consistent Gaussian pairs near the threshold were called "inconsistent"
    # after an inexact combination step; the step is now refined and the answer identified
    phi = fl.datasets.random_feature_matrix(8, 2, seed=502)
    fb = fl.teach(phi, "gaussian", n=23, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = fl.solve(fb, "exact")
    assert sol.identified and fl.relative_error(sol.phi, phi) < 1e-10
    assert fl.verify(fb, sol).status in ("valid", "inconclusive")
    # truly inconsistent pairs: the error carries a Farkas certificate that verify accepts, at the
    # caller's scale too
    for scale in (1.0, 1e-150):
        bad = fl.PairFeedback(np.array([[1.0, 0], [0, 1], [1, 1]]) * scale, np.array([[0, 2.0], [0, 0], [0, 0]]) * scale)
        with pytest.raises(fl.InconsistentFeedbackError) as err:
            fl.solve(bad, "exact")
        cert = err.value.certificate
        assert cert.verdict == "inconsistent" and fl.verify(bad, cert).valid
    one = fl.PairFeedback([[1.0]], [[2.0]])
    with pytest.raises(fl.InconsistentFeedbackError) as err:
        fl.solve(one, "exact")
    assert fl.verify(one, err.value.certificate).valid
    # a forged "inconsistent" certificate for consistent pairs never verifies
    forged = fl.Certificate("inconsistent", steps=sol.certificate.steps)
    assert not fl.verify(fb, forged)


# sampled pairs near the identification threshold that the exact solver left undecided: each needs a
# PSD combination whose SDP point is only accurate to the square root of the solver's tolerance (a
# hidden face), or (the 5-pair case) has positive definite solutions only within 2.5e-10 of the boundary;
# the last one was called "inconsistent" once the combination step was fixed (a pair that Phi* satisfies
# to 1e-17 removed the last ray by the sign of its rounding)
NEAR_THRESHOLD = [(6, 2, 15, 363126), (6, 4, 22, 971560), (9, 1, 11, 411516), (6, 1, 5, 20215),
                  (7, 5, 29, 825323), (8, 1, 10, 987871), (7, 2, 15, 969907), (10, 8, 56, 84757),
                  (10, 1, 12, 389798), (7, 5, 26, 421051), (10, 1, 14, 122892)]


@needs_cvxpy
@pytest.mark.parametrize("p,r,n,seed", NEAR_THRESHOLD)
def test_exact_decides_sampled_pairs_near_the_threshold(p, r, n, seed):
    phi = fl.datasets.random_feature_matrix(p, r, seed=seed)
    fb = fl.teach(phi, "sparse-sampled", n=n, seed=seed % 1000, s=3, sampler="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("error", fl.IdentifiabilityWarning)
        sol = fl.solve(fb, "exact")
    assert sol.decided and sol.certificate is not None
    if sol.identified:
        assert fl.relative_error(sol.phi, phi) < 1e-8
    check = fl.verify(fb, sol, margin=1e-2)
    # "not identified" after a combination step whose face is irrational (the range of a random
    # target) has no exact proof for the rounded pairs: verify may say inconclusive, never invalid
    assert check.status == "valid" if sol.identified or not sol.certificate.steps else check.status != "invalid", check.reason


def test_boundary_step_needs_no_sdp_and_its_certificate_verifies(monkeypatch):
    # sampled pairs of a rank-5 target at p = 10 have a hidden face: the step now comes from a boundary
    # point of the solutions (alternating projections), not from the auxiliary SDP
    from featlib.solvers import reduce

    def no_sdp(*a, **k):
        raise AssertionError("the auxiliary SDP was called")

    monkeypatch.setattr(reduce, "combination_step", no_sdp)
    phi = fl.datasets.random_feature_matrix(10, 5, seed=0)
    fb = fl.teach(phi, "sparse-sampled", seed=0, n=165, mu=0.8, s=3)
    sol = fl.solve(fb, "exact")
    assert sol.decided and sol.identified and fl.relative_error(sol.phi, phi) < 1e-10
    assert any(st.kind == "combination" for st in sol.certificate.steps)
    assert fl.verify(fb, sol, margin=1e-2).valid
    # the step alone: PSD in the span of the pairs, of the rank it claims
    from featlib.solvers.nullspace import constraint_rows, dense_null_space
    from featlib.solvers import decide
    Y, Z = fb.dense_y(), fb.dense_z()
    L, _ = dense_null_space(constraint_rows(Y, Z, np.einsum("ij,ij->i", Y, Y) + np.einsum("ij,ij->i", Z, Z)), 1e-10)
    step, K, acc = reduce.boundary_step(Y, Z, L, decide.psd_point(L, 10))
    S = reduce._combination(Y, Z, step.indices, step.values)
    w = np.linalg.eigvalsh(S)
    assert w[0] > -1e-12 * w[-1] and np.count_nonzero(w > 1e-7 * w[-1]) == step.rank == 10 - K.shape[1]
    # a point that is not on the boundary gives no step (T would have to be impossible)
    assert reduce.boundary_step(Y, Z, L, np.eye(10) / 10) is None


def test_a_clearly_positive_definite_solution_skips_the_combination_search(monkeypatch):
    # p = 20, rank 1, 31 exact Gaussian pairs: a positive definite solution exists, so no PSD combination
    # does; the combination SDP failed slowly there (Clarabel gave up, SCS ran 12 s of a 13 s solve). The
    # SDP's positive definite point (smallest eigenvalue 1.4e-5 at trace 1) now decides first.
    from featlib.solvers import reduce

    target = fl.experiments._phase_target(20, 1, 0, True)
    fb = fl.teach(target, "gaussian", n=31, seed=0, exact=True)

    def no_search(*a, **k):
        raise AssertionError("the combination SDP was searched although a clear PD solution exists")

    monkeypatch.setattr(reduce, "combination_step", no_search)
    sol = fl.solve(fb, "exact")
    assert sol.decided and not sol.identified and sol.info["pd_certificate_lambda_min"] > 1e-6
    assert fl.verify(fb, sol).valid


def test_a_contradiction_after_an_inexact_step_is_refined_from_the_least_squares_candidate(monkeypatch):
    # p = 20 exact pairs: after an inexact combination step the reduction removed every direction
    # (Gaussian, rank 10) or left a single wrong ray (3-sparse, rank 2), with no usable candidate answer
    # to refine the step from; both were undecided. The least-squares solution on the face just after the
    # inexact step is now tried as well, and both are identified with certificates verify proves exactly.
    # (The float refinement is what float pairs get; integer pairs now have their 3-sparse step snapped to
    # its exact face first, so snapping is switched off here to test the refinement, and checked below.)
    from featlib.solvers import exact

    cases = (("gaussian", 10, 3, 195, {}), ("sparse-sampled", 2, 2, 86, {"s": 3, "sampler": "exact"}))
    fbs = [fl.teach(fl.experiments._phase_target(20, r, seed, True), ensemble, n=209, seed=seed, exact=True,
                    **kw)[:n] for ensemble, r, seed, n, kw in cases]
    snapped = fl.solve(fbs[1], "exact")
    assert snapped.identified and snapped.info.get("snapped_steps") == 1 and fl.verify(fbs[1], snapped, exact=True)
    monkeypatch.setattr(exact, "_snapped_step", lambda *a, **k: None)
    for (ensemble, r, seed, n, kw), fb in zip(cases, fbs):
        target = fl.experiments._phase_target(20, r, seed, True)
        sol = fl.solve(fb, "exact")
        assert sol.identified and sol.info.get("refined_step") is True, (ensemble, sol.info.get("contradiction"))
        assert fl.relative_error(sol.phi, target) < 1e-10
        v = fl.verify(fb, sol)
        assert v.valid and v.exact


def test_interior_point_rank_reads_the_largest_gap_not_a_fixed_threshold():
    from featlib.solvers.reduce import interior_point_rank

    # Clarabel's dual point on 2-sparse pairs at p = 10 (measured): the zero eigenvalues come back up to
    # 9.7e-7 of the top, which a fixed 1e-6 cut counted as non-zero (and then gave up: "no clear rank")
    w = np.array([-2.771e-09, -1.902e-09, 5.424e-19, 4.583e-09, 5.712e-09, 5.395e-08, 4.213e-07, 9.666e-07,
                  3.452e-01, 6.548e-01])
    assert interior_point_rank(w) == 2
    assert interior_point_rank(np.array([1e-9, 2e-9, 0.3, 0.7])) == 2
    assert interior_point_rank(np.array([0.2, 0.3, 0.5])) == 3  # clearly definite
    assert interior_point_rank(np.array([1e-3, 0.3, 0.7])) == 3  # 1e-3 of the top is not solver noise
    # no clear gap below 1e-4 of the top, or nothing positive: no guess
    assert interior_point_rank(np.logspace(-8, 0, 9)) is None
    assert interior_point_rank(np.array([-1.0, 0.0])) is None


@needs_cvxpy
def test_a_combination_sdp_with_loose_zero_eigenvalues_still_reduces():
    # 13 2-sparse pairs of a rank-1 target at p = 10: the auxiliary SDP finds a rank-2 PSD combination, but
    # six of its zero eigenvalues came back between 5e-9 and 9.7e-7 of the top; the fixed 1e-6 cut read
    # that as "no clear rank", no step was taken and the solve was undecided
    phi = fl.datasets.random_feature_matrix(10, 1, seed=0)
    fb = fl.teach(phi, "sparse-sampled", n=54, seed=0, s=2, sampler="exact")[:13]
    with warnings.catch_warnings():
        warnings.simplefilter("error", fl.IdentifiabilityWarning)
        sol = fl.solve(fb, "exact")
    assert sol.decided and not sol.identified
    assert sol.info["facial_steps"] == 1 and sol.certificate.steps[0].kind == "combination"
    assert fl.verify(fb, sol, margin=1e-2).status != "invalid"


def test_gap_rank_reads_the_largest_gap_against_every_magnitude_below():
    from featlib.solvers.decide import gap_rank

    assert gap_rank(np.array([-7e-4, 1e-3, 1.3e-2, 0.52, 0.6, 1.0])) == 3  # 0.52 / 1.3e-2 = 40
    assert gap_rank(np.array([-0.2, 1e-3, 0.5, 1.0])) is None  # -0.2 below: 0.5 / 0.2 is no gap
    assert gap_rank(np.array([1e-3, 2e-3, 3e-3])) is None
    assert gap_rank(np.array([-1.0, -0.5])) is None  # no positive top
    assert gap_rank(np.array([1e-12, 1.0, 2.0])) == 2


def _gaussian_p30(n, seed):
    p = 30
    phi = fl.datasets.random_feature_matrix(p, 1, seed=seed)
    return phi, fl.teach(phi, "gaussian", n=n, seed=seed)


@needs_cvxpy
def test_span_member_forms_solve_the_same_sdp():
    """The free-coefficient and the constrained form of an SDP over X in span(L) reach the same optimum
    (the largest smallest eigenvalue of a trace-1 member), and the constrained form's answer is read back
    as coefficients of L."""
    import cvxpy as cp
    from featlib.linalg import smat
    from featlib.solvers import reduce

    rng = np.random.default_rng(0)
    q = 5
    P = svec_dim(q)
    L = np.linalg.qr(rng.standard_normal((P, 11)))[0]  # 11 columns against 4 constraints
    lam = []
    for constrained in (False, True):
        t = cp.Variable()
        X, cons, coefficients = reduce.span_member(cp, L, q, constrained=constrained)
        prob = cp.Problem(cp.Maximize(t), [cp.trace(X) == 1, X - t * np.eye(q) >> 0, *cons])
        prob.solve(solver="CLARABEL")
        c = coefficients()
        assert c.shape == (11,)
        lam.append(np.linalg.eigvalsh(smat(L @ c, q))[0])
    assert lam[0] > 1e-3 and abs(lam[0] - lam[1]) < 1e-6


@needs_cvxpy
def test_solve_in_span_tries_the_constrained_form_before_the_fallback_solver(monkeypatch):
    """Where the preferred solver fails on the free-coefficient form and the span has more columns than
    its complement, the constrained form goes to the preferred solver before SCS; with fewer columns it
    does not, and SCS comes last either way."""
    import cvxpy as cp
    from featlib.solvers import reduce

    calls = []

    def fake(cp_, prob, kwargs=None, *, ok=lambda prob: True, fallback=True, only_fallback=False):
        calls.append(("scs" if only_fallback else "preferred", any(c.size > 1 for c in prob.constraints
                                                                   if isinstance(c, cp.constraints.Equality))))
        return False

    monkeypatch.setattr(reduce, "solve_with_fallback", fake)
    problem = lambda X, cons: cp.Problem(cp.Minimize(0), [cp.trace(X) == 1, X >> 0, *cons])  # noqa: E731
    rng = np.random.default_rng(1)
    wide = np.linalg.qr(rng.standard_normal((10, 8)))[0]
    assert reduce.solve_in_span(cp, wide, 4, problem) is None
    assert calls == [("preferred", False), ("preferred", True), ("scs", False)]
    calls.clear()
    narrow = np.linalg.qr(rng.standard_normal((10, 3)))[0]
    assert reduce.solve_in_span(cp, narrow, 4, problem) is None
    assert calls == [("preferred", False), ("scs", False)]


@needs_cvxpy
@pytest.mark.parametrize("n, identified", [(50, False), (60, True)])
def test_gaussian_pairs_at_p30_need_no_scs(monkeypatch, n, identified):
    """Gaussian pairs at p = 30, rank 1, below and at the threshold: Clarabel fails on the free-coefficient
    form of the positive definite search (n = 50: no thick interior, largest smallest eigenvalue 7.6e-6)
    and of the primal point (n = 60: the solutions are a single ray), where SCS ran 70-77 s a solve;
    the constrained form decides both with the preferred solver alone (SCS forbidden here)."""
    from featlib.solvers import reduce

    real = reduce.solve_with_fallback

    def no_scs(cp_, prob, kwargs=None, *, ok=lambda prob: True, fallback=True, only_fallback=False):
        if only_fallback:
            raise AssertionError("SCS called")
        return real(cp_, prob, kwargs, ok=ok, fallback=False)

    monkeypatch.setattr(reduce, "solve_with_fallback", no_scs)
    phi, fb = _gaussian_p30(n, seed=0 if n == 50 else 1)
    sol = fl.solve(fb, "exact", warn=False)
    assert sol.decided and sol.identified == identified
    if identified:
        assert fl.relative_error(sol.phi, phi) < 1e-8
        assert fl.verify(fb, sol).valid
    else:
        assert sol.version_space_dim == 415 and sol.info["pd_certificate_lambda_min"] > 1e-6


@needs_cvxpy
def test_an_inexact_step_on_integer_pairs_is_snapped_to_its_exact_face():
    # exact 2-sparse pairs at p = 10 (integer targets): the combination SDP's faces were accurate only to
    # 1e-2 ... 4 (eigenvalues graded down to 1e-7 of the top), and the reduction after them ended in a
    # contradiction that the float refinement could not repair (rank 2, 30 pairs) or in an unprovable
    # "not identified" (rank 4, 39 pairs): undecided, with Phi* satisfying every pair exactly.  The step
    # is now snapped in rational arithmetic (verify's snapping) to the exact face it points at.
    for r, seed, n, identified in ((2, 0, 30, False), (2, 5, 36, True), (4, 2, 39, False)):
        target = fl.experiments._phase_target(10, r, seed, True)
        fb = fl.teach(target, "sparse-sampled", n=n, seed=seed, exact=True, s=2, sampler="exact")
        sol = fl.solve(fb, "exact", warn=False)
        assert sol.decided and sol.identified is identified and sol.info.get("snapped_steps", 0) >= 1, (r, seed, n)
        v = fl.verify(fb, sol, exact=True)
        assert v.valid and v.exact, v.reason
        if identified:
            assert fl.relative_error(sol.phi, target) < 1e-10
    # float pairs are never snapped (their exact version space is not the one a user asks about)
    phi = fl.datasets.random_feature_matrix(10, 2, seed=0)
    fb = fl.teach(phi, "sparse-sampled", n=30, seed=0, s=2, sampler="exact")
    assert "snapped_steps" not in fl.solve(fb, "exact", warn=False).info


@needs_cvxpy
def test_snapping_takes_only_a_combination_that_is_exactly_psd_of_its_rank():
    from featlib.certificates import exact_face
    from featlib.solvers.exact import _gap_ranks, _snapped_step

    target = fl.experiments._phase_target(10, 2, 0, True)
    fb = fl.teach(target, "sparse-sampled", n=30, seed=0, exact=True, s=2, sampler="exact")
    Y, Z = fb.dense_y(), fb.dense_z()
    sol = fl.solve(fb, "exact", warn=False)
    step = sol.certificate.steps[0]
    G, alphas = exact_face(Y, Z, [step])
    assert G.shape == (10, 10 - step.rank)
    # every PSD solution lies on the exact face: the target does, exactly
    Gf = np.array(G, dtype=float)
    R = np.linalg.qr(Gf)[0]
    assert np.abs(target - R @ R.T @ target @ R @ R.T).max() < 1e-12 * np.abs(target).max()
    # the same multipliers at another rank, random multipliers, or one multiplier flipped: not exact steps
    bad = [(step.indices, step.values, step.rank + 1), (step.indices, step.values, step.rank - 1),
           (np.arange(30), np.random.default_rng(0).standard_normal(30), step.rank)]
    flipped = np.array(step.values, dtype=float)
    flipped[np.argmax(np.abs(flipped))] *= -1
    bad.append((step.indices, flipped, step.rank))
    assert _snapped_step(Y, Z, [], bad) is None
    cache = {}
    out = _snapped_step(Y, Z, [], bad + [(step.indices, step.values, step.rank)], cache=cache)
    assert out is not None and out[0].rank == step.rank and np.allclose(out[1] @ out[1].T, R @ R.T, atol=1e-12)
    # the exact face after the snapped step is kept for the next snap of the same solve: the same face exactly
    assert cache["k"] == 1 and (cache["G"] == G).all()
    assert _gap_ranks(np.array([-1e-10, 1e-14, 1e-7, 6e-5, 2e-2, 0.1, 0.5])) == [5, 4, 3]
    assert _gap_ranks(np.array([0.1, 0.2, 0.7])) == [] and _gap_ranks(np.array([-1.0, 0.0])) == []


@needs_cvxpy
def test_undecided_integer_pairs_are_proved_not_identified_on_an_integer_face(monkeypatch):
    # exact 2-sparse pairs at p = 10 that snapping with verify's tolerance left undecided (the SDP's
    # eigenvalues graded down to 1e-7 of the top): the SDP's solution of largest rank, its range rounded to
    # short integer vectors by LLL, and two positive definite solutions on that face, proved in rational
    # arithmetic.  Rank 1, 9 pairs: three coordinates no pair touches; rank 3, 38 pairs and rank 4, 35
    # pairs: a face of dimension 4 and 5 holding the target's range.  (Snapping onto rough kernels now
    # decides these first, as "not identified" too; switched off here to test the fallback.)
    from featlib.solvers import exact

    cases = ((1, 6, 9), (3, 6, 38), (4, 0, 35))
    fbs = [fl.teach(fl.experiments._phase_target(10, r, seed, True), "sparse-sampled", n=n, seed=seed, exact=True,
                    s=2, sampler="exact") for r, seed, n in cases]
    for fb in fbs:
        sol = fl.solve(fb, "exact", warn=False)
        assert sol.decided and not sol.identified and fl.verify(fb, sol, exact=True).valid
    monkeypatch.setattr(exact, "_snapped_step", lambda *a, **k: None)
    for (r, seed, n), fb in zip(cases, fbs):
        target = fl.experiments._phase_target(10, r, seed, True)
        sol = fl.solve(fb, "exact", warn=False)
        assert sol.decided and not sol.identified and sol.info["not_identified_by"] == "rational face", (r, seed, n)
        cert = sol.certificate
        assert cert.steps == () and np.array_equal(cert.face, np.round(cert.face))
        v = fl.verify(fb, sol, exact=True)
        assert v.valid and v.exact
        # the face holds the target's range (the solutions' smallest face contains every PSD solution)
        B = cert.face
        P = B @ np.linalg.pinv(B)
        assert np.abs(P @ target @ P - target).max() < 1e-9 * np.abs(target).max()


@needs_cvxpy
def test_a_rough_interior_point_kernel_is_snapped_onto_short_integer_vectors():
    # exact 2-sparse bisection probes at p = 10 (the first n of 54 pairs) whose SDP kernels hold the exact
    # face only to about 1e-3: verify's own snapping (RREF to denominators 1e6, LLL within 1e-9) cannot
    # recover it; LLL accepting vectors within 3e-2 ... 3e-7 does, and the exact check decides
    for r, seed, n, identified in ((2, 8, 28, True), (4, 9, 43, False), (5, 7, 54, True)):
        target = fl.experiments._phase_target(10, r, seed, True)
        fb = fl.teach(target, "sparse-sampled", n=54, seed=seed, exact=True, s=2, sampler="exact")[:n]
        sol = fl.solve(fb, "exact", warn=False)
        assert sol.decided and sol.identified is identified and sol.info.get("snapped_steps", 0) >= 1, (r, seed, n)
        v = fl.verify(fb, sol, exact=True)
        assert v.valid and v.exact
        if identified:
            assert fl.relative_error(sol.phi, target) < 1e-10


@needs_cvxpy
def test_a_solve_left_undecided_by_the_snapping_limit_is_retried_with_a_larger_one():
    # exact 2-sparse pairs at p = 20, rank 7, the first 184 of 209 pairs: snapping the SDP's step needs an
    # elimination of size 489,440, above the first pass's SOLVER_SNAP_MAX_WORK, and the solve was undecided
    from featlib.solvers import exact

    target = fl.experiments._phase_target(20, 7, 1, True)
    fb = fl.teach(target, "sparse-sampled", n=209, seed=1, exact=True, s=2, sampler="exact")[:184]
    assert exact.SOLVER_SNAP_MAX_WORK < 489_440 <= exact.SOLVER_SNAP_RETRY_MAX_WORK
    sol = fl.solve(fb, "exact", warn=False)
    assert sol.decided and sol.identified and sol.info.get("snap_retry") is True
    assert fl.relative_error(sol.phi, target) < 1e-10
    v = fl.verify(fb, sol, exact=True)
    assert v.valid and v.exact


@needs_cvxpy
def test_identified_on_an_unrefined_inexact_face_needs_a_small_residual_and_a_proof(monkeypatch):
    # exact 2-sparse pairs at p = 20, rank 6, the first 136 of 209 pairs: an SDP step accurate to 1.7e-2,
    # then two single-pair steps on its face left one ray, and solve() said "identified" with an answer that
    # violated the pairs by 1.6e-2 (relative error 0.96 from the target).  With snapping switched off (as
    # for float pairs) and no rational-face fallback that is now undecided; with snapping, the retry snaps the
    # step and proves "not identified".
    from featlib.solvers import exact

    target = fl.experiments._phase_target(20, 6, 2, True)
    fb = fl.teach(target, "sparse-sampled", n=209, seed=2, exact=True, s=2, sampler="exact")[:136]
    sol = fl.solve(fb, "exact", warn=False)
    assert sol.decided and not sol.identified and fl.verify(fb, sol, exact=True).valid
    monkeypatch.setattr(exact, "_snapped_step", lambda *a, **k: None)
    sol = fl.solve(fb, "exact", warn=False)  # (the rational-face fallback proves "not identified" too)
    assert sol.decided and not sol.identified and sol.info["not_identified_by"] == "rational face"
    monkeypatch.setattr(exact, "_rational_face_not_identified", lambda *a, **k: None)
    sol = fl.solve(fb, "exact", warn=False)
    assert not sol.decided and not sol.identified and sol.certificate is None
    assert "could not be refined" in sol.info["undecided_reason"]


@needs_cvxpy
def test_a_snap_whose_nearest_exact_multipliers_are_not_psd_is_decided_two_ways():
    # exact 2-sparse pairs at p = 20, rank 5, the first 114 of 209 pairs (undecided at both snapping limits):
    # the SDP's combination has eigenvalues 1.3e-5 ... 0.38 above a kernel of 5 that LLL finds exactly, but
    # the point of the exact space nearest to the *rationalised* multipliers (denominators up to 1e6) is
    # not PSD; the point nearest to the stored floats themselves is, and verify re-derives the step
    from featlib import certificates

    target = fl.experiments._phase_target(20, 5, 0, True)
    fb = fl.teach(target, "sparse-sampled", n=209, seed=0, exact=True, s=2, sampler="exact")[:114]
    sol = fl.solve(fb, "exact", warn=False)
    assert sol.decided and sol.identified and sol.info.get("snapped_steps") == 1
    assert fl.relative_error(sol.phi, target) < 1e-10
    v = fl.verify(fb, sol, exact=True)
    assert v.valid and v.exact
    # from the rationalised multipliers only, the SDP's step is not snapped, and a step re-centred inside
    # the exact space of multipliers (a second small SDP: the smallest eigenvalue against the weighted sum
    # of |multipliers|) decides it instead; without both the solve is undecided (what this test guards)
    from featlib.solvers import exact

    # (the other ranks that the SDP's eigenvalues allow, _fallback_ranks, would decide it too: off here)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(certificates, "_snap_starts", lambda alpha, values: ((alpha, "exact"),))
        mp.setattr(exact, "_fallback_ranks", lambda *a, **k: [])
        sol = fl.solve(fb, "exact", warn=False)
        assert sol.decided and sol.identified and sol.info.get("recentred_steps") == 1
        assert fl.relative_error(sol.phi, target) < 1e-10
        mp.setattr(exact, "_recentred_step", lambda *a, **k: None)
        assert not fl.solve(fb, "exact", warn=False).decided


@needs_cvxpy
def test_a_snap_tries_the_other_ranks_the_eigenvalues_allow():
    # exact mu-model pairs at p = 20, rank 2, seed 2, the first 58 of 209 pairs: the SDP's combination has
    # eigenvalues graded from 1e-9 to 1.75e-4 of the top and then 6.8e-3, so its one clear gap says rank 8,
    # which does not snap; ranks 9 to 12 and 15 do (each an exact PSD combination, so each a valid step)
    from featlib.solvers import exact
    from featlib.solvers.exact import _fallback_ranks

    target = fl.experiments._phase_target(20, 2, 2, True)
    fb = fl.teach(target, "sparse-sampled", n=209, seed=2, exact=True, s=None, mu=1 - 2 / 20,
                  sampler="bernoulli")[:58]
    sol = fl.solve(fb, "exact", warn=False)
    assert sol.decided and not sol.identified and sol.info.get("fallback_rank_steps", 0) >= 1
    v = fl.verify(fb, sol, exact=True)
    assert v.valid and v.exact
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(exact, "_fallback_ranks", lambda *a, **k: [])
        assert not fl.solve(fb, "exact", warn=False).decided
    w = np.array([-1e-9, 2e-9, 2e-8, 2e-7, 1e-6, 1e-5, 2e-4, 7e-3, 0.1, 0.3])
    # largest first; not the ranks tried already; the kept eigenvalues above 1e-10 and the dropped below 1e-2
    # of the top; at most `most`
    assert _fallback_ranks(w, {9}) == [8, 7, 6, 5, 4, 3]
    assert _fallback_ranks(w, set(), most=2) == [9, 8]
    assert _fallback_ranks(np.array([-1.0, 0.0]), set()) == []


@needs_cvxpy
def test_psd_in_span_finds_a_positive_definite_combination_or_none():
    from featlib.solvers.reduce import psd_in_span

    M = np.array([np.diag([1.0, 0.0]), np.diag([0.0, 1.0]), -np.eye(2)])
    c = psd_in_span(M)
    S = np.einsum("j,jab->ab", c, M)
    assert np.linalg.eigvalsh(S)[0] > 0.49 and abs(np.trace(S) - 1) < 1e-6
    # against an l1 bound on B c instead of the trace
    c = psd_in_span(M, np.eye(3))
    S = np.einsum("j,jab->ab", c, M)
    assert np.linalg.eigvalsh(S)[0] > 0.49 and np.abs(c).sum() < 1 + 1e-6
    # no positive definite combination: diag(1, -1) and its negative only
    assert psd_in_span(np.array([np.diag([1.0, -1.0])])) is None
    assert psd_in_span(np.zeros((0, 2, 2))) is None

"""The Gaussian-surrogate prediction (featlib.surrogate): moments, projections, brackets, refusals."""

import numpy as np
import pytest

import featlib as fl
from featlib import surrogate


def _svec_rows(X, p):
    i, j, f = surrogate.svec_indices(p)
    return X[:, i] * X[:, j] * f


@pytest.mark.parametrize("kind, options", [
    ("gaussian", {}),
    ("sparse-sampled", {"s": 3, "sampler": "exact"}),
    ("sparse-sampled", {"s": None, "mu": 0.6, "sampler": "bernoulli"}),
    ("sparse-sampled", {"s": 2, "mu": 0.5, "sampler": "bernoulli"}),
])
def test_second_moment_is_the_teachers_law(kind, options):
    """The closed form against the empirical second moment of the teacher's own activations."""
    p, n = 5, 200_000
    phi = fl.datasets.random_feature_matrix(p, 2, seed=0)
    if kind == "gaussian":
        fb = fl.teach(phi, "gaussian", n=n, seed=1)
    else:
        fb = fl.teach(phi, "sparse-sampled", n=n, seed=1, **options)
    Y = fb.y_coef
    Y = Y.toarray() if hasattr(Y, "toarray") else np.asarray(Y)
    V = _svec_rows(Y, p)
    empirical = V.T @ V / n
    S = surrogate.second_moment(p, kind, **options)
    assert S.shape == (15, 15)
    np.testing.assert_allclose(S, S.T)
    # entries are means of n i.i.d. products with bounded variance: 6 standard errors
    se = np.sqrt(np.maximum((V ** 2).T @ (V ** 2) / n - empirical ** 2, 0) / n)
    assert np.all(np.abs(empirical - S) <= 6 * se + 1e-12)


def _cvxpy_value(phi, S, b, g):
    cp = pytest.importorskip("cvxpy")
    p = phi.shape[0]
    D = p * (p + 1) // 2
    i, j, f = surrogate.svec_indices(p)
    w, V = np.linalg.eigh(S)
    R = (V * np.sqrt(w)) @ V.T
    Smat = np.zeros((D, p * p))
    for a in range(D):
        if i[a] == j[a]:
            Smat[a, i[a] * p + i[a]] = 1
        else:
            Smat[a, i[a] * p + j[a]] = Smat[a, j[a] * p + i[a]] = 1 / np.sqrt(2)
    lam, vec = np.linalg.eigh(phi)
    K = vec[:, lam <= 1e-10 * lam.max()]
    X = cp.Variable((p, p), symmetric=True)
    sv = Smat @ cp.vec(X, order="C")
    cons = [b @ X @ b == 0]
    if K.shape[1]:
        M = K.T @ X @ K
        cons.append((M + M.T) / 2 >> 0)
    cp.Problem(cp.Minimize(cp.sum_squares(g - R @ sv)), cons).solve(solver=cp.CLARABEL)
    x = Smat @ X.value.reshape(-1)
    return float(np.sum((R @ x) ** 2))


@pytest.mark.parametrize("kind, r, ref", [("gaussian", 1, "gaussian"), ("gaussian", 3, "gaussian"),
                                          ("sparse-sampled", 2, "index")])
def test_projection_matches_an_interior_point_solver(kind, r, ref):
    p, samples, seed = 6, 8, 3
    phi = fl.datasets.random_feature_matrix(p, r, seed=11)
    S = surrogate.second_moment(p, kind, s=2) if kind == "sparse-sampled" else surrogate.second_moment(p, kind)
    reference = int(np.argmax(np.diag(phi))) if ref == "index" else "gaussian"
    out = surrogate.statistical_dimension(phi, S, reference=reference, samples=samples, seed=seed)
    rng = np.random.default_rng(seed)  # the same draws, in the documented order: references, then g
    B = rng.standard_normal((p, samples)) if ref == "gaussian" else np.eye(p)[:, [reference] * samples]
    G = rng.standard_normal((p * (p + 1) // 2, samples))
    for k in range(samples):
        want = _cvxpy_value(phi, S, B[:, k], G[:, k])
        assert out["values"][k] == pytest.approx(want, rel=2e-4, abs=1e-6)
    lo, hi = out["bracket"]
    assert lo <= out["delta"] <= hi and hi - lo <= 1e-2 * hi
    assert out["rank"] == r


@pytest.mark.parametrize("kind", ["gaussian", "sparse-sampled"])
def test_full_rank_value_is_the_projection_onto_a_hyperplane(kind):
    """At full rank K is the hyperplane b^T Delta b = 0 and C = S^(1/2) K is a subspace: every sample's
    value is ||g||^2 - (c^T g)^2 / |c|^2 with c = S^(-1/2) svec(b b^T), exactly."""
    p, samples = 5, 12
    phi = fl.datasets.random_feature_matrix(p, p, seed=2)
    S = surrogate.second_moment(p, kind)
    out = surrogate.statistical_dimension(phi, S, reference=1, samples=samples, seed=4)
    rng = np.random.default_rng(4)
    G = rng.standard_normal((p * (p + 1) // 2, samples))
    i, j, f = surrogate.svec_indices(p)
    b = np.eye(p)[1]
    a = b[i] * b[j] * f
    w, V = np.linalg.eigh(S)
    c = V @ ((V.T @ a) / np.sqrt(w))
    want = np.sum(G * G, axis=0) - (c @ G) ** 2 / (c @ c)
    np.testing.assert_allclose(out["values"], want, rtol=1e-4)


def test_gaussian_surrogate_reproduces_its_own_simulation():
    """The surrogate's claim, checked where it is exact: Gaussian constraint vectors S^(1/2) g acting
    on K (p = 4, rank 1, Gaussian pairs' S).  The fraction of draws of n such constraints whose null
    space meets K beyond 0 (decided by an SDP feasibility problem) falls through 1/2 near delta, as
    ALMT's theorem says; with a fixed seed this is deterministic, and it would fail if the
    projection or the cone were wrong by more than about a constraint."""
    cp = pytest.importorskip("cvxpy")
    p, r = 4, 1
    D = p * (p + 1) // 2
    phi = fl.datasets.random_feature_matrix(p, r, seed=5)
    S = surrogate.second_moment(p, "gaussian")
    delta = surrogate.statistical_dimension(phi, S, samples=400, seed=0)["delta"]
    i, j, f = surrogate.svec_indices(p)
    lam, vec = np.linalg.eigh(phi)
    K = vec[:, lam <= 1e-10 * lam.max()]
    w, V = np.linalg.eigh(S)
    R = (V * np.sqrt(w)) @ V.T
    rng = np.random.default_rng(1)

    def meets(n):
        b = rng.standard_normal(p)
        G = rng.standard_normal((n, D)) @ R  # rows S^(1/2) g
        X = cp.Variable((p, p), symmetric=True)
        sv = cp.hstack([X[a, c] * (1.0 if a == c else np.sqrt(2)) for a, c in zip(i, j)])
        M = K.T @ X @ K
        t = cp.Variable()
        # (a null direction with a zero kernel block would lie in K's lineality cut by b, of dimension
        # D - (p - r)(p - r + 1)/2 - 1 = 3 here: a random subspace of codimension n >= 4 misses it)
        # the largest smallest eigenvalue of the kernel block over null-space directions with block
        # trace 1: positive when the null space meets K's interior (the boundary has measure zero)
        cons = [b @ X @ b == 0, G @ sv == 0, (M + M.T) / 2 - t * np.eye(p - r) >> 0, cp.trace(M) == 1]
        prob = cp.Problem(cp.Maximize(t), cons)
        prob.solve(solver=cp.CLARABEL)
        if prob.status == "infeasible":
            return False
        assert prob.status == "optimal", prob.status
        return t.value > 1e-9

    lo, hi = int(np.floor(delta - 2)), int(np.ceil(delta + 2))
    assert np.mean([meets(lo) for _ in range(30)]) > 0.5
    assert np.mean([meets(hi) for _ in range(30)]) < 0.5


def test_surrogate_prediction_sits_between_the_counting_bound_and_full_rank():
    for ensemble in ("gaussian", "sparse-sampled"):
        res = fl.experiments.surrogate_prediction(6, 2, range(3), ensemble=ensemble, samples=30, seed=1)
        pred = res["prediction"]
        assert pred["dof"] <= res["n_star"] <= pred["full_rank"]
        assert res["samples"] == 90 and len(res["per_seed"]) == 3
        assert res["bracket"][0] <= res["n_star"] <= res["bracket"][1]


def test_surrogate_refuses_what_it_cannot_estimate():
    p = 4
    phi = fl.datasets.random_feature_matrix(p, 2, seed=0)
    S = surrogate.second_moment(p, "gaussian")
    # a 1-sparse ensemble never measures an off-diagonal entry: its second moment is singular
    with pytest.raises(fl.ArgumentError, match="positive definite"):
        surrogate.statistical_dimension(phi, surrogate.second_moment(p, "sparse-sampled", s=1), reference=0)
    with pytest.raises(fl.ShapeError):
        surrogate.statistical_dimension(phi, np.eye(5))
    bad = phi.copy()
    bad[0, 0] = np.nan
    with pytest.raises(fl.NonFiniteError):
        surrogate.statistical_dimension(bad, S)
    with pytest.raises(fl.ArgumentError, match="PSD"):
        surrogate.statistical_dimension(-phi, S)
    # a reference in the kernel of Phi* cannot normalise a pair (b^T Phi* b = 0)
    rank1 = np.zeros((p, p))
    rank1[0, 0] = 1.0
    with pytest.raises(fl.ArgumentError, match="kernel"):
        surrogate.statistical_dimension(rank1, S, reference=2)
    with pytest.raises(fl.ArgumentError):
        surrogate.statistical_dimension(phi, S, reference=7)
    with pytest.raises(fl.ArgumentError):
        surrogate.statistical_dimension(phi, S, tol=0.0)
    # too few iterations to bracket the mean: refused, not returned
    with pytest.raises(fl.ConvergenceError):
        surrogate.statistical_dimension(phi, S, samples=4, max_iter=1)
    with pytest.raises(fl.UnknownMethodError):
        surrogate.second_moment(p, "bernoulli")
    with pytest.raises(fl.ArgumentTypeError):
        surrogate.second_moment(p, "sparse-sampled", s=None, sampler="exact")


def test_phase_benchmark_prints_the_surrogate_column():
    lines = []
    rows = fl.benchmarks.phase_transitions((3,), ensembles=("gaussian", "isotropic"), seeds=2, surrogate=5,
                                           out=lines.append)
    assert lines[0].split()[-2:] == ["surrogate", "n50-sur"]
    gauss = [r for r in rows if r["ensemble"] == "gaussian"]
    assert [r["r"] for r in gauss] == [1, 2, 3]
    assert all(0 < r["surrogate"] <= 6 for r in gauss)  # a mean of squared projections of g in R^6
    assert all(r["surrogate"] is None for r in rows if r["ensemble"] == "isotropic")
    assert lines[-1].split()[-2:] == ["-", "-"]
    with pytest.raises(fl.ArgumentError):
        fl.benchmarks.phase_transitions((3,), ensembles=("gaussian",), seeds=2, surrogate=-1, out=lines.append)


@pytest.mark.parametrize("phi_scale, s_scale", [(1e-160, 1.0), (1e150, 1e150), (1.0, 1e-150), (1e-100, 1e160)])
def test_surrogate_is_scale_free(phi_scale, s_scale):
    """delta(S^(1/2) K) depends on neither the target's scale nor the second moment's: the same draws
    give the same value at 1e+-150 (it was NaN at S x 1e150 before S was normalised)."""
    phi = fl.datasets.random_feature_matrix(5, 2, seed=0)
    S = surrogate.second_moment(5, "gaussian")
    base = surrogate.statistical_dimension(phi, S, samples=10, seed=1)["values"]
    scaled = surrogate.statistical_dimension(phi * phi_scale, S * s_scale, samples=10, seed=1)["values"]
    np.testing.assert_allclose(scaled, base, rtol=1e-9)


def test_svec_order_is_linalgs():
    M = fl.datasets.random_feature_matrix(6, 6, seed=3)
    i, j, f = surrogate.svec_indices(6)
    np.testing.assert_array_equal(M[i, j] * f, fl.linalg.svec(M))

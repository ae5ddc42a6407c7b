"""Recursive Feature Machines: kernels, AGOP against closed-form gradients, feature recovery."""
import numpy as np
import pytest

import featlib as fl
from featlib import rfm


def _fd_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = h
        g[k] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@pytest.mark.parametrize("kernel", ["laplace", "gaussian"])
def test_agop_matches_closed_form_and_finite_difference_gradients(kernel):
    rng = np.random.default_rng(0)
    d, n, m, L = 4, 6, 9, 2.0
    C = rng.standard_normal((n, d))
    alpha = rng.standard_normal(n)
    B = rng.standard_normal((d, d))
    M = B @ B.T + 0.1 * np.eye(d)
    E = rng.standard_normal((m, d))

    def f(x):
        return float(rfm.kernel_matrix(C, x[None, :], M, kernel=kernel, bandwidth=L)[:, 0] @ alpha)

    def closed_form(x):  # sum_i alpha_i dK/dx
        diff = x - C
        dist2 = np.einsum("ij,jk,ik->i", diff, M, diff)
        if kernel == "laplace":
            dist = np.sqrt(dist2)
            w = -alpha * np.exp(-dist / L) / (L * dist)
        else:
            w = -alpha * np.exp(-dist2 / (2 * L**2)) / L**2
        return (w[:, None] * diff).sum(0) @ M

    grads = np.array([closed_form(x) for x in E])
    assert np.allclose(grads, np.array([_fd_grad(f, x) for x in E]), atol=1e-6)
    want = grads.T @ grads / m
    got = rfm.agop(C, alpha, E, M, kernel=kernel, bandwidth=L, chunk=4)  # several chunks
    assert np.allclose(got, want, rtol=1e-10, atol=1e-12)
    # several outputs: the outer products are summed over outputs
    two = rfm.agop(C, np.c_[alpha, 2 * alpha], E, M, kernel=kernel, bandwidth=L)
    assert np.allclose(two, 5 * want)


def test_laplace_agop_skips_coincident_points():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((5, 3))
    out = rfm.agop(X, rng.standard_normal(5), X, np.eye(3))  # evaluation points are the centres
    assert np.all(np.isfinite(out)) and np.allclose(out, out.T)


def test_rfm_finds_the_relevant_coordinates():
    X, y = fl.datasets.monomial_task("z0z1", 800, seed=0)
    Xt, yt = fl.datasets.monomial_task("z0z1", 400, seed=1)
    model = rfm.RFM(iters=3).fit(X, y)
    top = set(np.argsort(np.diag(model.M_))[-3:])
    assert top == {0, 1, 5}  # the two factors and the gate
    assert np.diag(model.M_)[[0, 1, 5]].sum() > 0.9 * np.trace(model.M_)
    base = rfm.RFM(iters=0).fit(X, y)
    assert model.mse(Xt, yt) < 0.7 * base.mse(Xt, yt)  # learning the features helps
    assert len(model.history_) == 4 and len(model.train_mse_) == 4
    assert model.score(Xt, yt) > 0.5
    assert np.allclose(model.M_, model.M_.T) and np.linalg.eigvalsh(model.M_)[0] > -1e-12 * model.M_.max()


def test_iters_zero_is_kernel_ridge_with_a_fixed_matrix():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((40, 3)), rng.standard_normal(40)
    Xt = rng.standard_normal((7, 3))
    M = np.diag([2.0, 1.0, 0.5])
    model = rfm.RFM(iters=0, M=M, bandwidth=3.0, reg=1e-2).fit(X, y)
    K = rfm.kernel_matrix(X, X, M, bandwidth=3.0)
    a = np.linalg.solve(K + 1e-2 * np.eye(40), y)
    assert np.allclose(model.predict(Xt), rfm.kernel_matrix(Xt, X, M, bandwidth=3.0) @ a)
    assert np.allclose(model.M_, M)


def test_feature_matrix_mse_matches_scale_and_recovery_table():
    X, y = fl.datasets.monomial_task("z0z1", 300, seed=3)
    Xt, yt = fl.datasets.monomial_task("z0z1", 200, seed=4)
    phi = rfm.RFM(iters=2).fit(X, y).M_
    data = (X, y, Xt, yt)
    base = rfm.feature_matrix_mse(phi, *data, scale_to=phi)
    assert rfm.feature_matrix_mse(1e-3 * phi, *data, scale_to=phi) == pytest.approx(base, rel=1e-7)  # a kernel solve: ~1e-9 rounding
    assert rfm.feature_matrix_mse(1e-3 * phi, *data) != pytest.approx(base, rel=1e-3)  # the kernel is not scale-free
    r = fl.linalg.numerical_rank(phi, rtol=1e-7)
    bound = fl.bounds.constructive_low_rank(10, r)
    rows = rfm.recovery_table(phi, "eigen", [bound - 2, bound], data, rank=r)  # tight count: bound - 1
    assert [row["identified"] for row in rows] == [False, True]
    rows = rfm.recovery_table(phi, "sparse", [55], data)
    assert rows[0]["identified"] and rows[0]["mse"] == pytest.approx(base, rel=1e-6)


def test_rfm_errors():
    X, y = np.ones((5, 3)), np.ones(5)
    with pytest.raises(fl.FeatlibError, match="not fitted"):
        rfm.RFM().predict(X)
    with pytest.raises(fl.ShapeError, match="2-D"):
        rfm.RFM().fit(np.ones(5), y)
    with pytest.raises(fl.ShapeError, match="y must have shape"):
        rfm.RFM().fit(X, np.ones(4))
    with pytest.raises(fl.ShapeError, match="M must be 3 x 3"):
        rfm.RFM(M=np.eye(2)).fit(X, y)
    with pytest.raises(fl.UnknownMethodError, match="'laplace', 'gaussian'"):
        rfm.RFM(kernel="cosine").fit(X, y)
    with pytest.raises(ValueError, match="bandwidth must be a finite number > 0"):
        rfm.RFM(bandwidth=0).fit(X, y)
    with pytest.raises(fl.NonFiniteError):
        rfm.RFM().fit(np.full((5, 3), np.nan), y)
    fitted = rfm.RFM(iters=1).fit(np.random.default_rng(0).standard_normal((5, 3)), y)
    with pytest.raises(fl.ShapeError, match="fitted with 3"):
        fitted.predict(np.ones((2, 4)))


def test_monomial_tasks():
    X, y = fl.datasets.monomial_task("x1x2x3x4", 50, sigma=0.7, seed=0)
    assert X.shape == (50, 10)
    assert np.allclose(y, X[:, 0] * X[:, 1] * X[:, 2] * X[:, 3] * (X[:, 4] > 0))
    X, y = fl.datasets.monomial_task("z0z1z3", 20000, sigma=0.5, seed=1)
    assert np.allclose(y, X[:, 0] * X[:, 1] * X[:, 3] * (X[:, 5] > 0))
    assert abs(X.std() - 0.5) < 0.01  # sigma is the standard deviation
    with pytest.raises(fl.UnknownMethodError, match="z0z1"):
        fl.datasets.monomial_task("x0", 5)
    with pytest.raises(ValueError, match="too small"):
        fl.datasets.monomial_task("z0z1", 5, p=4)
    with pytest.raises(ValueError, match="sigma"):
        fl.datasets.monomial_task("z0z1", 5, sigma=0)


def test_agop_scale_max_makes_the_fit_independent_of_the_scale_of_y():
    from featlib import rfm

    X, y = fl.datasets.monomial_task("z0z1", 300, sigma=0.5, seed=0)
    Xt, yt = fl.datasets.monomial_task("z0z1", 200, sigma=0.5, seed=1)
    rel = {}
    for scale in ("none", "max"):
        m1 = rfm.RFM(iters=2, agop_scale=scale).fit(X, y)
        m100 = rfm.RFM(iters=2, agop_scale=scale).fit(X, 100 * y)
        rel[scale] = abs(m100.mse(Xt, 100 * yt) / 100**2 - m1.mse(Xt, yt)) / m1.mse(Xt, yt)
    assert rel["max"] < 1e-6 < rel["none"]  # the reference's plain AGOP depends on the scale of y
    with pytest.raises(fl.UnknownMethodError):
        rfm.RFM(agop_scale="trace").fit(X, y)

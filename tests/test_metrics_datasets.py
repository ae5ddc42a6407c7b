import numpy as np
import pytest

import featlib as fl


def test_metrics_are_scale_invariant(rng):
    a = fl.datasets.random_feature_matrix(5, 3, seed=1)
    assert fl.pcc(3 * a, a) == pytest.approx(1.0)
    assert fl.relative_error(3 * a, a) == pytest.approx(0.0, abs=1e-15)
    assert fl.relative_error(a, 5 * a) == pytest.approx(0.0, abs=1e-15)
    assert fl.equivalent(2 * a, a) and not fl.equivalent(-a, a)
    assert fl.relative_error(-a, a) == pytest.approx(1.0)
    b = fl.datasets.random_feature_matrix(5, 3, seed=2)
    e = fl.relative_error(b, a)
    assert 0 < e < 1 and not fl.equivalent(b, a)
    assert fl.pcc(a, b) < 0.99
    with pytest.raises(ValueError, match="zero variance"):
        fl.pcc(np.ones((2, 2)), a[:2, :2])


def test_equivalent_tolerance():
    a = np.eye(3)
    assert fl.equivalent(a + 1e-9 * np.diag([1, 0, 0]), a)
    assert not fl.equivalent(a + 1e-3 * np.diag([1, 0, 0]), a)
    assert fl.equivalent(a + 1e-3 * np.diag([1, 0, 0]), a, rtol=1e-2)


def test_random_feature_matrix():
    phi = fl.datasets.random_feature_matrix(8, 3, seed=0)
    assert phi.shape == (8, 8) and np.allclose(phi, phi.T)
    w = np.linalg.eigvalsh(phi)
    assert np.sum(w > 1e-10) == 3 and w[0] > -1e-12
    np.testing.assert_array_equal(phi, fl.datasets.random_feature_matrix(8, 3, seed=0))
    rep = fl.datasets.random_feature_matrix(4, eigenvalues=[2, 2, 1], seed=0)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(rep)), [0, 1, 2, 2], atol=1e-12)
    with pytest.raises(ValueError):
        fl.datasets.random_feature_matrix(3, 4)


def test_random_dictionary():
    D = fl.datasets.random_dictionary(4, 10, seed=0)
    assert D.shape == (4, 10)
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0)
    phi = D.T @ D
    assert np.linalg.matrix_rank(phi) == 4
    np.testing.assert_allclose(np.diag(phi), 1.0)
    fb = fl.teach(phi, "eigen")
    assert len(fb) == fl.bounds.constructive_low_rank(10, 4)
    assert fl.relative_error(fl.solve(fb).phi, phi) < 1e-8

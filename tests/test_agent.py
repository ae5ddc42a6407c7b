"""Lemma 2: triplet answers and the rescaling to equality pairs."""
import numpy as np
import pytest

import featlib as fl
from conftest import target


def test_distance_and_compare_agree(rng):
    phi = target(6, 3, seed=1)
    agent = fl.Agent(phi)
    X, Yv, Z = (rng.standard_normal((200, 6)) for _ in range(3))
    d1 = np.einsum("ij,jk,ik->i", X - Yv, phi, X - Yv)
    d2 = np.einsum("ij,jk,ik->i", X - Z, phi, X - Z)
    np.testing.assert_allclose(agent.distance(X, Yv), d1)
    np.testing.assert_array_equal(agent.compare(X, Yv, Z), np.sign(d1 - d2).astype(int))
    # single triplet
    assert agent.compare(X[0], Yv[0], Z[0]) == int(np.sign(d1[0] - d2[0]))
    # a tie
    assert agent.compare(X[0], Yv[0], Yv[0]) == 0


def test_equalize_gives_equalities_both_orders(rng):
    phi = target(5, 5, seed=2)
    agent = fl.Agent(phi)
    X, Yv, Z = (rng.standard_normal((300, 5)) for _ in range(3))
    y, z = agent.equalize(X, Yv, Z)
    fb = fl.PairFeedback(y, z)
    assert np.max(fb.relative_residuals(phi)) < 1e-12
    # the paper's case (ii): d(x,y) >= d(x,z) gives (x - y, sqrt(1+lam)(x - z))
    k = int(np.flatnonzero(agent.compare(X, Yv, Z) > 0)[0])
    yk, zk = agent.equalize(X[k], Yv[k], Z[k])
    np.testing.assert_allclose(yk, X[k] - Yv[k])
    lam = agent.distance(X[k], Yv[k]) / agent.distance(X[k], Z[k]) - 1
    assert lam > 0
    np.testing.assert_allclose(zk, np.sqrt(1 + lam) * (X[k] - Z[k]))


def test_equalize_case_i_no_rescaling():
    agent = fl.Agent(np.eye(2))
    x, y, z = np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0])
    yy, zz = agent.equalize(x, y, z)
    np.testing.assert_allclose(yy, -y)
    np.testing.assert_allclose(zz, -z)


def test_equalize_null_space_error():
    phi = np.diag([1.0, 0.0])
    agent = fl.Agent(phi)
    with pytest.raises(fl.FeedbackError, match="null space"):
        agent.equalize(np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    # both sides in the null space is a valid (trivial) equality
    y, z = agent.equalize(np.zeros(2), np.array([0.0, 2.0]), np.array([0.0, 1.0]))
    np.testing.assert_allclose(z, [0.0, -1.0])


def test_agent_hides_a_read_only_copy():
    phi = target(4, 2)
    agent = fl.Agent(phi)
    with pytest.raises(ValueError):
        agent.phi_star[0, 0] = 5.0
    assert agent.p == 4 and "p=4" in repr(agent)

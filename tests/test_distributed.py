"""Gradient descent across processes on PyTorch's own engine (torchrun, DistributedDataParallel,
gloo on the CPU): two processes reach the answer one process reaches on the same pairs."""
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

import featlib as fl

torch = pytest.importorskip("torch")
ROOT = pathlib.Path(__file__).resolve().parents[1]
ARGS = ["recover", "--p", "24", "--d", "6", "--teacher", "sparse-sampled", "--sampler", "exact", "--s", "3",
        "--n", "600", "--method", "gd", "--epochs", "300", "--seed", "0", "--device", "cpu"]


def test_two_processes_match_one_on_the_same_pairs(tmp_path):
    torchrun = pathlib.Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this Python")
    from featlib.cli import main

    one = tmp_path / "one.npy"
    t = time.perf_counter()
    assert main(ARGS + ["--output", str(one)]) == 0
    t_one = time.perf_counter() - t
    two = tmp_path / "two.npy"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t = time.perf_counter()
    run = subprocess.run([str(torchrun), "--nproc_per_node=2", "-m", "featlib", "--", *ARGS, "--distributed",
                          "--output", str(two)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    t_two = time.perf_counter() - t
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("PCC") == 1  # only rank 0 reports
    D = fl.datasets.random_dictionary(6, 24, seed=0)
    phi = D.T @ D
    a, b = np.load(one), np.load(two)
    pcc_one, pcc_two = fl.pcc(a, phi), fl.pcc(b, phi)
    print(f"1 process: PCC {pcc_one:.6f} in {t_one:.1f} s; 2 processes (torchrun, gloo): PCC {pcc_two:.6f} in "
          f"{t_two:.1f} s (start-up included)")
    assert abs(pcc_one - pcc_two) < 1e-3 and pcc_one > 0.99  # measured: equal to 1e-9 (full batches)
    assert fl.relative_error(b, a) < 1e-6


def test_distributed_outside_torchrun_says_how_to_launch(capsys):
    from featlib.cli import main

    assert main(ARGS + ["--distributed"]) == 2
    assert "torchrun --nproc_per_node=2 -m featlib -- recover" in capsys.readouterr().err
    fb = fl.teach(fl.datasets.random_feature_matrix(4, seed=0), "gaussian", n=10, seed=0)
    if "WORLD_SIZE" not in os.environ:
        with pytest.raises(fl.FeatlibError, match="torchrun"):
            fl.solve(fb, "gd", epochs=2, distributed=True)


def test_unequal_shards_with_batches_take_the_same_number_of_steps(tmp_path):
    # 601 pairs on 2 processes are shards of 301 and 300; with batches of 100 the second would take
    # 3 steps to the first's 4, and the collectives would mismatch (before: gloo "collective mismatch"): every
    # process now takes ceil(301 / 100) = 4 near-equal steps
    torchrun = pathlib.Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this Python")
    args = [a if a not in ("600", "300") else {"600": "601", "300": "60"}[a] for a in ARGS]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run([str(torchrun), "--nproc_per_node=2", "-m", "featlib", "--", *args, "--batch-size", "100",
                          "--distributed", "--output", str(tmp_path / "out.npy")], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert np.load(tmp_path / "out.npy").shape == (24, 24)
    # full batches (the default): shards of 301 and 300 pairs, one step each
    run = subprocess.run([str(torchrun), "--nproc_per_node=2", "-m", "featlib", "--", *args, "--distributed",
                          "--output", str(tmp_path / "full.npy")], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]

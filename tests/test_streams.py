"""Pairs that are never all in memory: SampledPairs (drawn per batch from the seed), ShardedPairs
(read from disk), gradient descent over them, checkpoints, and hostile shard folders."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import featlib as fl

torch = pytest.importorskip("torch")
GD = dict(rank=3, epochs=150, lr=2e-2, seed=0, device="cpu", schedule="cosine", tol=0.0, patience=10**6)


def dictionary(p=16, d=3, seed=0):
    return fl.datasets.random_dictionary(d, p, seed=seed)


def test_a_sampled_batch_is_the_same_every_time_and_satisfies_the_agent():
    D = dictionary()
    phi = D.T @ D
    stream = fl.SampledPairs(phi, 1000, batch_size=128, seed=3)
    assert stream.n_batches == 8 and stream.batch_length(7) == 1000 - 7 * 128 and len(stream) == 1000
    a, b = stream.batch(5), stream.batch(5)
    assert (a.y != b.y).nnz == 0 and (a.z != b.z).nnz == 0
    assert (stream.batch(4).y != a.y).nnz > 0
    assert np.max(a.relative_residuals(phi)) < 1e-13
    assert np.all(np.diff(a.y.tocsr().indptr) == 3)  # exactly 3-sparse by default
    other = fl.SampledPairs(phi, 1000, batch_size=128, seed=4)
    assert (other.batch(5).y != a.y).nnz > 0
    # a decoder alone gives the same pairs, without forming Phi*
    via_factor = fl.SampledPairs(fl.Factored(D), 1000, batch_size=128, seed=3)
    assert np.abs((via_factor.batch(5).z - a.z).toarray()).max() < 1e-12
    assert len(stream.to_feedback()) == 1000


def test_gd_on_a_stream_recovers_the_target_and_returns_a_factor():
    D = dictionary()
    phi = D.T @ D
    stream = fl.SampledPairs(phi, 2048, batch_size=256, seed=1)
    sol = fl.solve(stream, "gd", **GD)
    assert sol.factor.shape == (16, 3) and np.isclose(np.sum(sol.factor ** 2), 1.0)
    assert sol.info["steps_per_epoch"] == 8 and not sol.identified
    assert fl.pcc(sol.as_factored(), fl.Factored(D)) > 0.999
    assert fl.pcc(sol.phi, phi) > 0.999 and np.isclose(np.trace(sol.phi), 1.0)  # formed on demand
    assert sol.residual < 1e-2 and "batch 0" in sol.info["residual_over"]
    assert "rank=3" in repr(sol)
    # the same pairs in memory, one batch per step, learn the same thing
    mem = fl.solve(stream.to_feedback(), "gd", batch_size=256, **GD)
    assert fl.pcc(mem.phi, phi) > 0.999


def test_shards_on_disk_read_back_the_same_pairs_and_the_same_run(tmp_path):
    D = dictionary()
    stream = fl.SampledPairs(D.T @ D, 700, batch_size=200, seed=2)
    shards = stream.save(tmp_path / "pairs")
    assert isinstance(shards, fl.ShardedPairs) and shards.n_batches == 4 and shards.batch_length(3) == 100
    for b in range(4):
        assert (shards.batch(b).y != stream.batch(b).y).nnz == 0
    opts = {**GD, "epochs": 20}
    a, b = fl.solve(stream, "gd", **opts), fl.solve(fl.ShardedPairs(tmp_path / "pairs"), "gd", **opts)
    assert np.array_equal(a.factor, b.factor)
    with pytest.raises(fl.ArgumentError, match="force=True"):
        stream.save(tmp_path / "pairs")
    stream.save(tmp_path / "pairs", force=True)
    # dense pairs too
    dense = fl.SampledPairs(D.T @ D, 50, batch_size=20, seed=2)
    dense.batch = lambda b, _orig=dense.batch: _orig(b).to_dense()
    back = dense.save(tmp_path / "dense")
    assert np.array_equal(back.batch(2).dense_y(), dense.batch(2).dense_y())


def test_hostile_shard_folders_are_refused(tmp_path):
    stream = fl.SampledPairs(dictionary().T @ dictionary(), 300, batch_size=100, seed=0)
    folder = tmp_path / "pairs"
    stream.save(folder)
    with pytest.raises(fl.MissingFileError, match="manifest.json"):
        fl.ShardedPairs(tmp_path)
    shard = folder / "shard-000001.npz"
    data = bytearray(shard.read_bytes())
    data[-30] ^= 0xFF
    shard.write_bytes(bytes(data))
    s = fl.ShardedPairs(folder)
    s.batch(0)
    with pytest.raises(fl.FeatlibError, match="SHA-256"):
        s.batch(1)
    shard.unlink()
    with pytest.raises(fl.MissingFileError, match="shard 1"):
        s.batch(1)
    with pytest.raises(fl.IndexOutOfRangeError):
        s.batch(3)
    m = json.loads((folder / "manifest.json").read_text())
    m["shards"][0]["file"] = "../../etc/passwd"
    (folder / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(fl.MissingFileError):
        fl.ShardedPairs(folder).batch(0)
    m["n"] = 10**6
    (folder / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(fl.FeatlibError, match="do not add up"):
        fl.ShardedPairs(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(fl.FeatlibError, match="cannot read"):
        fl.ShardedPairs(folder)
    (folder / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(fl.FeatlibError, match="not a featlib pair-shard manifest"):
        fl.ShardedPairs(folder)


def test_stream_arguments_are_checked():
    phi = dictionary().T @ dictionary()
    with pytest.raises(fl.ArgumentTypeError, match="seed"):
        fl.SampledPairs(phi, 10, seed=-1)
    with pytest.raises(fl.ArgumentError):
        fl.SampledPairs(phi, 0)
    with pytest.raises(fl.ArgumentTypeError, match="pass s and not mu"):
        fl.SampledPairs(phi, 10, mu=0.5, sampler="exact")
    stream = fl.SampledPairs(phi, 10, batch_size=4)
    with pytest.raises(fl.ArgumentError, match="leave batch_size unset"):
        fl.solve(stream, "gd", batch_size=2)
    with pytest.raises(fl.UnknownMethodError, match="to_feedback"):
        fl.solve(stream, "exact")
    with pytest.raises(fl.ArgumentTypeError, match="takes no option"):
        fl.solve(stream, "gd", warn=False)
    with pytest.raises(fl.ArgumentTypeError):
        stream.batch("1")


def test_a_stream_run_resumes_from_its_checkpoint_exactly(tmp_path, monkeypatch):
    stream = fl.SampledPairs(dictionary().T @ dictionary(), 600, batch_size=200, seed=0)
    opts = {**GD, "epochs": 12}
    full = fl.solve(stream, "gd", **opts)
    ck = tmp_path / "run.pt"
    steps = {"n": 0}
    real_step = torch.optim.Adam.step

    def interrupting_step(self, *a, **k):
        steps["n"] += 1
        if steps["n"] == 20:  # epoch 7 of 12 (3 steps per epoch)
            raise KeyboardInterrupt
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", interrupting_step)
    with pytest.raises(KeyboardInterrupt):
        fl.solve(stream, "gd", checkpoint=ck, checkpoint_every=3, **opts)
    monkeypatch.setattr(torch.optim.Adam, "step", real_step)
    resumed = fl.solve(stream, "gd", checkpoint=ck, checkpoint_every=3, **opts)
    assert resumed.info["resumed_from"] == 6
    assert np.abs(resumed.factor - full.factor).max() < 1e-12
    other = fl.SampledPairs(dictionary().T @ dictionary(), 600, batch_size=200, seed=1)
    with pytest.raises(fl.FeatlibError, match="differs in: stream"):
        fl.solve(other, "gd", checkpoint=ck, **opts)


SCRIPT = """
import sys, numpy as np, featlib as fl
D = fl.datasets.random_dictionary(3, 16, seed=0)
stream = fl.SampledPairs(fl.Factored(D), int(sys.argv[2]), batch_size=256, seed=1)
sol = fl.solve(stream, "gd", rank=3, epochs=150, lr=2e-2, seed=0, device="cpu", schedule="cosine", tol=0.0,
               patience=10**6, distributed=True)
import torch.distributed as dist
if dist.get_rank() == 0:
    np.save(sys.argv[1], sol.factor)
"""


def test_two_processes_share_a_stream_by_batches(tmp_path):
    torchrun = pathlib.Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this Python")
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = tmp_path / "two.npy"
    run = subprocess.run([str(torchrun), "--nproc_per_node=2", str(script), str(out), "2048"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    D = dictionary()
    F = np.load(out)

    class Merged(fl.PairStream):  # one step of the 2-process run: batches 2j (rank 0) and 2j + 1 (rank 1)
        def __init__(self, inner):
            super().__init__(inner.p, inner.n, 2 * inner.batch_size)
            self.inner = inner

        def batch(self, j):
            return fl.PairFeedback.concat([self.inner.batch(2 * j), self.inner.batch(2 * j + 1)])

        def key(self):
            return {"merged": self.inner.key()}

    # the averaged gradient of two equal batches is the gradient of their union, and both processes
    # permute their 4 batches with the same generator: one process on the merged batches follows the
    # same trajectory, up to the order of floating-point sums
    one = fl.solve(Merged(fl.SampledPairs(fl.Factored(D), 2048, batch_size=256, seed=1)), "gd", **GD)
    print(f"2 processes: PCC {fl.pcc(fl.Factored(F.T), fl.Factored(D)):.6f}; 1 process on the merged batches: "
          f"PCC {fl.pcc(one.as_factored(), fl.Factored(D)):.6f}")
    assert np.abs(F - one.factor).max() < 1e-6
    assert fl.pcc(fl.Factored(F.T), fl.Factored(D)) > 0.99
    odd = subprocess.run([str(torchrun), "--nproc_per_node=2", str(script), str(out), "1700"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=600)
    assert odd.returncode != 0 and "cannot be shared equally among 2 processes" in odd.stderr


def test_cli_recover_stream(tmp_path, capsys):
    from featlib.cli import main

    out = tmp_path / "F.npy"
    assert main(["recover", "--p", "16", "--d", "3", "--teacher", "sparse-sampled", "--sampler", "exact", "--n", "2048",
                 "--batch-size", "256", "--method", "gd", "--rank", "3", "--epochs", "150", "--lr", "2e-2",
                 "--schedule", "cosine", "--device", "cpu", "--stream", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "never stored" in text and "(not formed)" in text
    pcc = float(text.split("PCC ")[1].split()[0])
    assert pcc > 0.99 and np.load(out).shape == (16, 3)
    assert main(["recover", "--p", "16", "--d", "3", "--teacher", "sparse", "--stream"]) == 2
    assert "--teacher sparse-sampled --method gd" in capsys.readouterr().err
    assert main(["recover", "--p", "16", "--d", "3", "--teacher", "sparse-sampled", "--method", "gd", "--stream"]) == 2
    assert "needs --n" in capsys.readouterr().err

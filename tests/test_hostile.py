"""Hostile input and faults: no silent wrong answer, no raw traceback, no stale cache.

Property tests (hypothesis) for scale invariance and garbage input, and one test per class of
failure found by the held-out probes of the issue "A newcomer's set-up, and hostile input".
"""
import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import featlib as fl
from featlib import rfm, sae
from featlib.cli import main
from conftest import needs_torch, target

# ---------------------------------------------------------------------------------------------
# silent wrong answers


@settings(max_examples=25, deadline=None)
@given(exponent=st.integers(min_value=-150, max_value=150), teacher=st.sampled_from(["eigen", "sparse", "gaussian"]),
       seed=st.integers(0, 5))
def test_solve_is_invariant_to_the_scale_of_the_pairs(exponent, teacher, seed):
    phi = target(5, 3, seed=seed)
    fb = fl.teach(phi, teacher, seed=seed)
    c = 10.0 ** exponent
    scaled = (fl.PairFeedback(fb.y_coef * c, fb.z_coef * c, basis=fb.basis) if fb.storage == "basis"
              else fl.PairFeedback(fb.y * c, fb.z * c))
    sol = fl.solve(scaled, "exact")
    assert sol.identified and sol.decided and fl.relative_error(sol.phi, phi) < 1e-8
    assert fl.verify(scaled, sol).valid  # the certificate refers to the caller's pairs, at their scale


@settings(max_examples=20, deadline=None)
@given(bad=st.sampled_from([float("nan"), float("inf"), 0.0, -1e-9, 1.0, 5.0, "1e-9", None]))
def test_nonsense_tolerances_are_refused(bad):
    fb = fl.teach(target(4, 2), "eigen")
    with pytest.raises((ValueError, TypeError)):
        fl.solve(fb, "exact", rtol=bad)


def test_identified_is_never_true_for_a_wrong_matrix():
    rng = np.random.default_rng(0)
    for trial in range(20):
        phi = target(5, int(rng.integers(1, 6)), seed=trial)
        fb = fl.teach(phi, "gaussian", n=int(rng.integers(3, 16)), seed=trial)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fl.IdentifiabilityWarning)
            sol = fl.solve(fb, "exact")
        if sol.identified:
            assert fl.relative_error(sol.phi, phi) < 1e-8


def test_overflowing_distances_are_refused_not_answered():
    agent = fl.Agent(target(4, 4))
    big = np.full(4, 1e160)
    with pytest.raises(fl.NonFiniteError, match="overflowed"):
        agent.compare(big, np.zeros(4), np.ones(4))
    with pytest.raises(fl.NonFiniteError, match="overflowed"):
        agent.equalize(big, np.zeros(4), np.ones(4))


def test_feedback_arrays_handed_out_cannot_change_the_feedback():
    phi = target(4, 2)
    for fb in (fl.teach(phi, "gaussian", seed=0), fl.teach(phi, "sparse"), fl.teach(phi, "eigen")):
        before = fb.dense_y().copy()
        for arr in (fb.y, fb.y_coef, fb.z, fb.z_coef):
            try:
                (arr.data if hasattr(arr, "tocsr") else arr)[...] = np.nan
            except ValueError:
                pass  # read-only view
        assert np.array_equal(fb.dense_y(), before)
        assert fl.solve(fb, "exact").identified


def test_complex_input_is_refused():
    with pytest.raises(TypeError, match="complex"):
        fl.PairFeedback(np.ones((2, 3)) * (1 + 1j), np.ones((2, 3)))
    with pytest.raises(TypeError, match="complex"):
        fl.Agent(np.eye(3) * (1 + 0j) + 0j)


def test_metrics_are_scale_free_at_extreme_scales():
    phi = target(5, 3, seed=1)
    assert fl.pcc(phi, 1e200 * phi) == pytest.approx(1.0)
    assert fl.relative_error(phi, 1e200 * phi) < 1e-14 and fl.relative_error(1e-200 * phi, phi) < 1e-14
    assert fl.metrics.best_scale(phi, 3e150 * phi) == pytest.approx(3e150)


def test_rfm_refuses_what_it_cannot_fit():
    X = np.random.default_rng(0).standard_normal((40, 4))
    y = X[:, 0] * X[:, 1]
    with pytest.raises(fl.ShapeError):
        rfm.RFM(iters=1).fit(X[:0], y[:0])
    with pytest.raises(ValueError):
        rfm.RFM(iters=1, agop_samples=0).fit(X, y)
    with pytest.raises(fl.NonFiniteError, match="standardise"):
        rfm.RFM(iters=1).fit(X * 1e160, y)


def test_sparse_sampling_with_no_usable_activation_says_why():
    with pytest.raises(fl.FeedbackError, match="raise mu or s"):
        fl.teach(target(6, 3), "sparse-sampled", n=5, mu=0.0, s=2)


def test_empty_feedback_is_a_certified_non_identification():
    for p in (6, 120):
        fb = fl.teach(target(p, 3), "sparse")[:0]
        sol = fl.solve(fb, "exact")
        assert sol.decided and not sol.identified
        if p == 6:
            assert fl.verify(fb, sol).valid


@needs_torch
def test_gd_refuses_missing_cuda_and_nonsense_learning_rates():
    import torch

    fb = fl.teach(target(4, 2), "sparse")
    if not torch.cuda.is_available():
        with pytest.raises(fl.FeatlibError, match="no CUDA device"):
            fl.solve(fb, "gd", device="cuda", epochs=1)
    for lr in (float("inf"), 0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="lr"):
            fl.solve(fb, "gd", lr=lr, epochs=1)


# ---------------------------------------------------------------------------------------------
# hostile files


def test_loader_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "D.npy"
    os.mkfifo(fifo)
    with pytest.raises(fl.FeatlibError, match="not a regular file"):
        sae.load_dictionary(fifo)


def test_loader_refuses_an_npy_header_that_lies(tmp_path):
    path = tmp_path / "D.npy"
    with open(path, "wb") as f:  # declares 160 GB, holds 160 bytes
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (400000, 50000)})
        f.write(np.ones(20).tobytes())
    with pytest.raises(fl.FeatlibError, match="declares"):
        sae.load_dictionary(path)


def test_loader_refuses_a_zip_bomb(tmp_path):
    path = tmp_path / "D.npz"
    np.savez_compressed(path, D=np.zeros((2000, 2000)))  # 32 MB of zeros, a few KB on disk
    assert path.stat().st_size < 200_000
    with pytest.raises(fl.FeatlibError, match="decompress"):
        sae.load_dictionary(path, max_bytes=1_000_000)
    assert sae.load_dictionary(path).shape == (2000, 2000)  # below the default limit it is read


def test_loader_reads_bfloat16_saelens_weights(tmp_path):
    pytest.importorskip("safetensors")
    import json

    W = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    bf16 = (W.view(np.uint32) >> 16).astype("<u2")  # truncation to bfloat16
    header = {"W_dec": {"dtype": "BF16", "shape": [6, 4], "data_offsets": [0, bf16.nbytes]}}
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    folder = tmp_path / "sae"
    folder.mkdir()
    (folder / "cfg.json").write_text("{}")
    (folder / "sae_weights.safetensors").write_bytes(len(blob).to_bytes(8, "little") + blob + bf16.tobytes())
    D = sae.load_dictionary(folder)
    expected = (bf16.astype(np.uint32) << 16).view(np.float32).astype(np.float64).T
    assert D.shape == (4, 6) and np.array_equal(D, expected)
    assert np.abs(D - W.T).max() < 0.02 * np.abs(W).max()
    # truncated: refused with a clear message, not a raw error
    data = (folder / "sae_weights.safetensors").read_bytes()
    (folder / "sae_weights.safetensors").write_bytes(data[:-10])
    with pytest.raises(fl.FeatlibError, match="truncated"):
        sae.load_dictionary(folder)


def test_ambiguous_folder_is_refused_and_layout_chooses(tmp_path):
    pytest.importorskip("safetensors")
    torch = pytest.importorskip("torch")
    D = np.random.default_rng(1).standard_normal((3, 7))
    sae.save_saelens(tmp_path, D.T)
    torch.save({"decoder.weight": torch.tensor(2 * D)}, tmp_path / "ae.pt")
    with pytest.raises(fl.FeatlibError, match="both"):
        sae.load_dictionary(tmp_path)
    assert np.allclose(sae.load_dictionary(tmp_path, layout="saelens"), D, atol=1e-6)
    assert np.allclose(sae.load_dictionary(tmp_path, layout="dictionary_learning"), 2 * D)


def test_truncated_torch_file_is_a_clear_error(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "ae.pt"
    torch.save({"decoder.weight": torch.ones(3, 4)}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(fl.FeatlibError, match="cannot be loaded safely"):
        sae.load_dictionary(path)


# ---------------------------------------------------------------------------------------------
# the command line: one line, exit 2


@pytest.mark.parametrize("args", [
    ["recover", "--p", "0"], ["recover", "--n", "-1", "--teacher", "gaussian"], ["recover", "--mu", "1.5"],
    ["recover", "--s", "0"], ["demo", "--rank", "20"], ["recover", "--latents", "3"],
    ["recover", "--lr", "0", "--method", "gd"], ["recover", "--rank", "0", "--method", "gd"],
    ["benchmark", "sampling", "--pairs", "abc"], ["recover", "--output", "/no/such/folder/x"],
    ["benchmark", "exact-vs-sdp", "--pairs", "inf"], ["benchmark", "triplets", "--eps", "0.5"],  # found by test_fuzz
])
def test_cli_usage_errors_exit_2_without_traceback(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err


def test_cli_featlib_errors_are_one_line(tmp_path, capsys):
    np.save(tmp_path / "zero.npy", np.zeros((3, 5)))
    assert main(["recover", "--dictionary", str(tmp_path / "zero.npy"), "--method", "exact"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("featlib: error:") and "zero matrix" in err[0]


def test_cli_output_names_and_overwrites(tmp_path, capsys):
    target_file = tmp_path / "phi"
    assert main(["recover", "--p", "8", "--d", "3", "--teacher", "eigen", "--method", "exact",
                 "--output", str(target_file)]) == 0
    assert (tmp_path / "phi.npy").exists() and "phi.npy" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:  # exists: refused without --force
        main(["recover", "--p", "8", "--d", "3", "--output", str(target_file)])
    assert info.value.code == 2 and "--force" in capsys.readouterr().err
    assert main(["recover", "--p", "8", "--d", "3", "--teacher", "eigen", "--method", "exact",
                 "--output", str(target_file), "--force"]) == 0
    assert not list(tmp_path.glob(".phi.npy.*"))  # no temporary file left behind
    for folder in (".", str(tmp_path)):  # a folder is not a file name (found by tests/test_fuzz.py)
        with pytest.raises(SystemExit) as info:
            main(["recover", "--p", "8", "--d", "3", "--output", folder])
        assert info.value.code == 2 and "must name a file" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# faults: checkpoints and resume


@needs_torch
def test_gd_resumes_from_a_checkpoint_exactly_after_an_interruption(tmp_path, monkeypatch):
    import torch

    fb = fl.teach(target(8, 3), "sparse")
    opts = dict(epochs=40, seed=1, device="cpu", patience=10**6, tol=0.0, batch_size=12, schedule="cosine")
    full = fl.solve(fb, "gd", **opts)
    ck = tmp_path / "run.pt"
    steps = {"n": 0}
    real_step = torch.optim.Adam.step

    def interrupting_step(self, *a, **k):
        steps["n"] += 1
        if steps["n"] == 47:  # in the middle of an epoch (3 steps per epoch)
            raise KeyboardInterrupt
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", interrupting_step)
    with pytest.raises(KeyboardInterrupt):
        fl.solve(fb, "gd", checkpoint=ck, checkpoint_every=5, **opts)
    monkeypatch.setattr(torch.optim.Adam, "step", real_step)
    assert ck.exists() and not list(tmp_path.glob(".run.pt.*"))
    resumed = fl.solve(fb, "gd", checkpoint=ck, checkpoint_every=5, **opts)
    assert resumed.info["resumed_from"] == 15  # the last completed checkpoint before step 47
    assert np.abs(resumed.phi - full.phi).max() < 1e-12  # as if never interrupted
    with pytest.raises(fl.FeatlibError, match="differs in: lr"):
        fl.solve(fb, "gd", checkpoint=ck, **{**opts, "lr": 0.02})
    ck.write_bytes(b"not a checkpoint")
    with pytest.raises(fl.FeatlibError, match="cannot read the checkpoint"):
        fl.solve(fb, "gd", checkpoint=ck, **opts)

"""Files from elsewhere are data, never code: checkpoints, shards, SAE weights (issue: soundness and
security, part 3), and the options that used to be ignored silently."""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import featlib as fl
from featlib import cli
from conftest import needs_torch, target

GD = dict(epochs=6, seed=1, device="cpu", patience=10**6, tol=0.0, batch_size=12)


class _Payload:
    """Unpickling this runs code: it creates the file named in ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@needs_torch
def test_a_poisoned_checkpoint_never_runs_code(tmp_path):
    import torch

    fb = fl.teach(target(6, 2), "sparse")
    ck = tmp_path / "run.pt"
    marker = tmp_path / "pwned"
    torch.save({"key": None, "evil": _Payload(marker)}, ck)  # a pickle that names a callable
    with pytest.raises(fl.FeatlibError, match="cannot read the checkpoint"):
        fl.solve(fb, "gd", checkpoint=ck, **GD)
    assert not marker.exists()
    # the same through the CLI
    ck2 = tmp_path / "cli.pt"
    with open(ck2, "wb") as f:
        pickle.dump(_Payload(marker), f)
    assert cli.main(["recover", "--p", "6", "--d", "3", "--method", "gd", "--epochs", "2", "--checkpoint", str(ck2)]) == 2
    assert not marker.exists()


@needs_torch
def test_a_checkpoint_with_the_right_key_but_a_truncated_factor_is_refused(tmp_path):
    import torch

    fb = fl.teach(target(6, 2), "sparse")
    ck = tmp_path / "run.pt"
    fl.solve(fb, "gd", checkpoint=ck, checkpoint_every=2, **GD)
    state = torch.load(ck, weights_only=True)
    assert isinstance(state["U"], torch.Tensor)
    state["U"] = state["U"][:, :1]  # one column: would broadcast silently into U
    torch.save(state, ck)
    with pytest.raises(fl.FeatlibError, match="shape"):
        fl.solve(fb, "gd", checkpoint=ck, **GD)
    state["U"] = torch.full((6, state["U"].shape[0]), float("nan"))[:6, :6]
    torch.save(state, ck)
    with pytest.raises(fl.FeatlibError, match="damaged"):
        fl.solve(fb, "gd", checkpoint=ck, **GD)


def test_the_checkpoint_key_tells_sparse_sets_with_other_row_pointers_apart():
    from featlib.solvers.gd import _run_key

    data = np.array([1.0, 2.0, 3.0, 4.0])
    idx = np.array([0, 1, 2, 3])
    A = sp.csr_matrix((data, idx, np.array([0, 1, 2, 4])), shape=(3, 4))
    B = sp.csr_matrix((data, idx, np.array([0, 2, 3, 4])), shape=(3, 4))  # same data and columns
    Z = sp.csr_matrix((3, 4))
    ka = _run_key(4, 3, 2, fl.PairFeedback(A, Z), {})
    kb = _run_key(4, 3, 2, fl.PairFeedback(B, Z), {})
    assert ka["pairs_sha256"] != kb["pairs_sha256"]
    # Y and Z are not interchangeable either
    kc = _run_key(4, 3, 2, fl.PairFeedback(Z, A), {})
    assert kc["pairs_sha256"] != ka["pairs_sha256"]


def test_a_shard_swapped_after_its_first_read_is_refused(tmp_path):
    D = fl.datasets.random_dictionary(3, 8, seed=0)
    stream = fl.SampledPairs(D.T @ D, 200, batch_size=100, seed=0)
    shards = stream.save(tmp_path / "pairs")
    first = shards.batch(1)
    other = fl.SampledPairs(D.T @ D, 200, batch_size=100, seed=1)
    other.save(tmp_path / "other")
    (tmp_path / "pairs" / "shard-000001.npz").write_bytes((tmp_path / "other" / "shard-000001.npz").read_bytes())
    with pytest.raises(fl.FeatlibError, match="SHA-256"):
        shards.batch(1)
    assert len(first) == 100


@needs_torch
def test_an_ae_pt_whose_decoder_weight_is_not_a_tensor_is_refused(tmp_path):
    import torch

    f = tmp_path / "ae.pt"
    torch.save({"decoder.weight": [[1.0, 2.0], [3.0, 4.0]]}, f)
    with pytest.raises(fl.FeatlibError, match="not a real 2-D tensor"):
        fl.sae.load_dictionary(f)
    torch.save({"W_dec": torch.zeros(3)}, f)
    with pytest.raises(fl.FeatlibError, match="not a real 2-D tensor"):
        fl.sae.load_dictionary(f)


def test_checkpoint_options_are_never_ignored_silently(capsys):
    assert cli.main(["recover", "--p", "6", "--d", "3", "--method", "exact", "--checkpoint", "x.pt"]) == 2
    assert "--checkpoint is for --method gd" in capsys.readouterr().err
    assert cli.main(["recover", "--p", "6", "--d", "3", "--method", "gd", "--checkpoint", ""]) == 2
    assert "needs a file name" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# solver panics are contained


class _Panic(BaseException):
    """Like pyo3_runtime.PanicException: not an Exception, so `except Exception` misses it."""


def test_a_solver_panic_never_escapes_solve(monkeypatch):
    cp = pytest.importorskip("cvxpy")

    calls = []

    def panicking(self, *a, **k):
        calls.append(1)
        raise _Panic("Eigval error: Eigen(1)")

    monkeypatch.setattr(cp.Problem, "solve", panicking)
    # a rank-1 target from 8 Gaussian pairs at p = 5: decided only with the auxiliary SDP (the
    # boundary-point step does not find its combination; the earlier p = 6 example no longer needs it)
    phi = target(5, 1, seed=1)
    fb = fl.teach(phi, "gaussian", n=8, seed=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = fl.solve(fb, "exact")
    assert calls  # the SDP was tried, and its panic contained
    assert not sol.decided  # no answer from the SDP: undecided, said so
    with pytest.raises(fl.FeatlibError, match="SDP solver failed"):
        fl.solve(fl.PairFeedback(fb.dense_y(), fb.dense_z() * 1.5), "sdp")


def test_the_issues_clarabel_panic_case_is_decided_and_certified():
    pytest.importorskip("cvxpy")
    fb = fl.teach(fl.datasets.random_feature_matrix(5, 4, seed=304), "gaussian", n=13, seed=3)
    sol = fl.solve(fb, "exact")  # Clarabel panics inside; the exact solver goes on
    assert sol.decided and not sol.identified
    assert fl.verify(fb, sol).valid  # two exact positive definite solutions

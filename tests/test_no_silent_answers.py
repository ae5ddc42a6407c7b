"""No silent wrong answer at extreme scales or with odd options, and clear errors instead of raw
tracebacks (issue: soundness and security, parts 4 and 5)."""
import numpy as np
import pytest

import featlib as fl
from featlib.factored import Factored


def test_factored_metrics_at_extreme_scales_and_on_constant_matrices():
    L = np.random.default_rng(0).standard_normal((3, 8))
    with pytest.raises(fl.FeatlibError, match="undefined"):
        fl.pcc(Factored(np.ones((1, 8))), L.T @ L)  # a constant matrix (the dense call refuses too)
    with pytest.raises(fl.FeatlibError, match="undefined"):
        fl.pcc(Factored(np.ones((1, 8))), Factored(L))
    assert fl.pcc(Factored(1e200 * L), L.T @ L) == pytest.approx(1.0, abs=1e-12)
    assert fl.relative_error(Factored(1e-200 * L), L.T @ L) < 1e-12
    assert fl.relative_error(Factored(1e200 * L), Factored(L)) < 1e-12


def test_teach_refuses_a_noisy_agent_instead_of_ignoring_its_noise():
    agent = fl.Agent(np.eye(4), noise=fl.noise.LambdaNoise(0.3))
    for teacher, kw in (("gaussian", {"n": 5}), ("sparse", {}), ("sparse-sampled", {"mu": 0.5, "n": 5})):
        with pytest.raises(fl.ArgumentError, match="noise"):
            fl.teach(agent, teacher, seed=0, **kw)


def test_sparsity_above_p_is_refused():
    with pytest.raises(fl.ArgumentError, match="cannot exceed p"):
        fl.SampledPairs(np.eye(6), 10, s=7, seed=0).batch(0)
    with pytest.raises(fl.ArgumentError, match="cannot exceed p"):
        fl.teach(np.eye(6), "sparse-sampled", s=7, sampler="exact", n=4, seed=0)


def test_raw_errors_of_the_issue_are_featlib_errors():
    cases = [
        lambda: fl.PairFeedback([], []),
        lambda: fl.PairFeedback.empty(0),
        lambda: fl.PairFeedback.empty(-1),
        lambda: fl.PairFeedback.concat(["x"]),
        lambda: fl.Agent(np.eye(3)).equalize(np.zeros((2, 2, 3)), np.ones((2, 2, 3)), np.ones((2, 2, 3))),
        lambda: fl.Agent(np.eye(3)).equalize(np.zeros((2, 3)), np.ones((3, 3)), np.ones((2, 3))),
    ]
    for case in cases:
        with pytest.raises(fl.FeatlibError):
            case()
    agent = fl.Agent(np.diag([1.7e308, 1.0]))  # the largest floats: no LinAlgError, no overflow warning
    assert agent.p == 2


def test_more_raw_errors_are_featlib_errors(tmp_path):
    import featlib.rfm
    import featlib.sae
    from featlib.solvers.exact import solve_exact

    sol = solve_exact(fl.PairFeedback(np.eye(5), np.eye(5)).to_sparse(), sparse=True)  # all pairs trivial
    assert not sol.identified
    with pytest.raises(fl.FeatlibError, match="singular"):
        featlib.rfm.RFM(reg=0).fit(np.ones((6, 3)), np.arange(6.0))
    f = tmp_path / "d.npz"
    np.savez(f, D=np.array([object()], dtype=object))
    with pytest.raises(fl.FeatlibError, match="unpickling"):
        featlib.sae.load_dictionary(f)
    with pytest.raises(fl.ArgumentError, match="beyond any run"):
        fl.SampledPairs(np.eye(4), 10**19, seed=0)


def test_distributed_environment_is_checked_and_rendezvous_gives_up(monkeypatch):
    torch = pytest.importorskip("torch")
    import socket

    from featlib.solvers import _trainer

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("MASTER_PORT", str(s.getsockname()[1]))
    for world, rank, match in (("abc", "0", "integers"), ("2", "5", "0..WORLD_SIZE-1")):
        monkeypatch.setenv("WORLD_SIZE", world)
        monkeypatch.setenv("RANK", rank)
        with pytest.raises(fl.FeatlibError, match=match):
            _trainer.init_distributed(torch, "cpu")
    # a peer that never comes: a clear error after the stated timeout, not a wait forever
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(_trainer, "RENDEZVOUS_TIMEOUT_S", 3)
    with pytest.raises(fl.FeatlibError, match="could not meet its peers"):
        _trainer.init_distributed(torch, "cpu")
    assert not torch.distributed.is_initialized()


def test_triplets_at_extreme_scales_agree_and_train_like_at_scale_one():
    phi = fl.datasets.random_feature_matrix(5, 2, seed=0)
    tr = fl.triplets.sample_triplets(fl.Agent(phi), 300, seed=0)
    base = fl.solve(tr, "gd", epochs=60, seed=0, device="cpu")
    for sc in (1e-170, 1e160):
        t2 = fl.triplets.TripletFeedback(tr.x * sc, tr.y * sc, tr.z * sc, tr.answers)
        assert t2.agreement(phi) == tr.agreement(phi) == 1.0
        assert t2.agreement(phi * 1e200) == 1.0
        sol = fl.solve(t2, "gd", epochs=60, seed=0, device="cpu")
        assert fl.pcc(sol.phi, phi) == pytest.approx(fl.pcc(base.phi, phi), abs=1e-9)


def test_normalize_atoms_at_extreme_scales(tmp_path):
    import featlib.sae

    D = np.array([[1e200, 1e-170, 1.0], [1e200, 0.0, 2.0], [0.0, 1e-170, 0.0]])
    f = tmp_path / "D.npy"
    np.save(f, D)
    out = featlib.sae.load_dictionary(f, normalize_atoms=True)
    np.testing.assert_allclose(np.linalg.norm(out, axis=0), 1.0, rtol=1e-15)
    np.testing.assert_allclose(out[:, 0], [np.sqrt(0.5), np.sqrt(0.5), 0.0], rtol=1e-15)
    np.testing.assert_allclose(out[:, 1], [np.sqrt(0.5), 0.0, np.sqrt(0.5)], rtol=1e-15)
    np.save(f, np.array([[1.0, 0.0], [2.0, 0.0]]))
    with pytest.raises(fl.FeatlibError, match="dead latents"):
        featlib.sae.load_dictionary(f, normalize_atoms=True)


def test_allocation_guard_respects_the_address_space_limit():
    import subprocess
    import sys

    code = ("import resource, featlib as fl\n"
            "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))\n"
            "import numpy as np\n"
            "try:\n    fl.triplets.sample_triplets(fl.Agent(np.eye(4)), 50_000_000)\n"
            "except fl.ResourceError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "refused:" in out.stdout and "address-space" in out.stdout, out.stdout + out.stderr[-500:]

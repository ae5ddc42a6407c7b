"""Round trips against the real SAELens (skipped unless ``pip install 'featlib[interop]'``).

Checked in a separate environment with sae-lens 6.54.12 on torch 2.13.0 (CPU): SAELens'
``SAE.load_from_disk`` reads a folder written by ``featlib.sae.save_saelens`` as a TopK SAE with
featlib's k, and encodes and decodes exactly as featlib's trained SAE does.  CI does not install
sae-lens (about a hundred packages, among them transformer-lens, which could move versions the
rest of the suite relies on)."""
import numpy as np
import pytest

from featlib import sae

sae_lens = pytest.importorskip("sae_lens")
torch = pytest.importorskip("torch")


def test_saelens_loads_featlib_topk_sae_and_encodes_the_same(tmp_path):
    X = np.random.default_rng(1).standard_normal((400, 8)).astype(np.float32)
    res = sae.train_topk_sae(X, d_sae=24, k=3, epochs=2, batch_size=64, seed=0)
    folder = res.save(tmp_path / "sae", hook="test")
    loaded = sae_lens.SAE.load_from_disk(str(folder), device="cpu")
    assert type(loaded).__name__ == "TopKSAE" and loaded.cfg.k == 3
    assert np.allclose(loaded.W_dec.detach().numpy(), res.W_dec, atol=1e-7)
    z = loaded.encode(torch.tensor(X[:50])).detach().numpy()
    assert np.array_equal(z, res.encode(X[:50]))
    assert np.allclose(loaded.decode(torch.tensor(z)).detach().numpy(), res.reconstruct(X[:50]), atol=1e-6)
    # and featlib reads back what SAELens saves
    loaded.save_model(str(tmp_path / "saved_by_saelens"))
    assert np.allclose(sae.load_dictionary(tmp_path / "saved_by_saelens"), res.W_dec.T, atol=1e-7)

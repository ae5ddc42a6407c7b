"""Round trips against the real SAELens and xRFM (``pip install 'featlib[interop]'``; CI installs it).

SAELens' ``SAE.load_from_disk`` reads a folder written by ``featlib.sae.save_saelens`` as a TopK SAE
with featlib's k, and encodes and decodes exactly as featlib's trained SAE does; featlib reads what
SAELens saves.  xRFM's Laplace-kernel AGOP equals featlib's (passed 2026-11-29 with sae-lens 6.54.12,
xrfm 0.4.5, torch 2.13.0 CPU).  dictionary_learning is not installed (its CUDA torchvision breaks a
CPU torch); its layout is tested in tests/test_sae.py on files written with torch itself."""
import numpy as np
import pytest

import featlib as fl
from featlib import rfm, sae

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def sae_lens():
    return pytest.importorskip("sae_lens")


@pytest.fixture(scope="module")
def xrfm_kernels():
    pytest.importorskip("xrfm")
    from xrfm.rfm_src import kernels

    return kernels


def test_saelens_loads_featlib_topk_sae_and_encodes_the_same(tmp_path, sae_lens):
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


def test_agop_matches_xrfm_laplace_kernel(xrfm_kernels):
    """xRFM parametrises the kernel by a square root S of M (distance ||(x - z) S||, its use_sqrtM),
    sums over the evaluation points and scales M by its maximum; featlib takes M itself and averages.
    With S = M^{1/2} the two AGOPs agree up to that positive scale, and exactly at M = I."""
    import scipy.linalg

    rng = np.random.default_rng(0)
    X, E, alpha = rng.standard_normal((40, 5)), rng.standard_normal((30, 5)), rng.standard_normal(40)
    A = rng.standard_normal((5, 5))
    kernel = xrfm_kernels.LaplaceKernel(bandwidth=10.0, exponent=1.0)
    for M in (np.eye(5), A @ A.T / 5 + np.eye(5)):
        S = np.real(scipy.linalg.sqrtm(M))
        theirs = kernel.get_agop(x=torch.tensor(X), z=torch.tensor(E), coefs=torch.tensor(alpha)[None, :],
                                 mat=torch.tensor(S), center_grads=False).numpy()
        ours = rfm.agop(X, alpha, E, M, bandwidth=10.0)
        assert np.allclose(ours / ours.max(), theirs / theirs.max(), rtol=0, atol=1e-12)
        assert fl.pcc(ours, theirs) > 1 - 1e-12
    summed = kernel.get_agop(x=torch.tensor(X), z=torch.tensor(E), coefs=torch.tensor(alpha)[None, :],
                             mat=torch.eye(5, dtype=torch.float64), center_grads=False).numpy()
    assert np.allclose(rfm.agop(X, alpha, E, np.eye(5), bandwidth=10.0) * len(E), summed, rtol=1e-12, atol=0)


def test_agop_scale_max_makes_the_fit_independent_of_the_scale_of_y():
    """The issue's finding: with the unnormalised AGOP the test MSE / c^2 changes with the scale c of y;
    with agop_scale="max" (xRFM's choice) it does not."""
    X, y = fl.datasets.monomial_task("z0z1", 200, p=6, seed=0)
    Xt, yt = fl.datasets.monomial_task("z0z1", 100, p=6, seed=1)
    rel = {}
    for scale in ("none", "max"):
        mses = [rfm.RFM(iters=2, agop_scale=scale).fit(X, c * y).mse(Xt, c * yt) / c**2 for c in (1.0, 100.0)]
        rel[scale] = abs(mses[1] - mses[0]) / mses[0]
    assert rel["max"] < 1e-6 < rel["none"]

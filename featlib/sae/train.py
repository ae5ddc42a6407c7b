"""A TopK sparse autoencoder, trained here and saved in the SAELens layout."""

from __future__ import annotations

import numpy as np

from .. import _checks
from .io import save_saelens
from ..solvers._trainer import resolve_device as _resolve_device

__all__ = ["TopKSAEResult", "fvu", "train_topk_sae"]


class TopKSAEResult:
    """A trained TopK SAE: ``W_enc`` (d_in, d_sae), ``b_enc``, ``W_dec`` (d_sae, d_in; unit-norm rows),
    ``b_dec``, ``k``; ``history`` (training FVU per epoch), ``fvu`` (held-out fraction of variance
    unexplained), ``frequency`` (how often each latent fires on the held-out data)."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    @property
    def dictionary(self):
        """D = W_dec^T (d_in x d_sae, atoms as columns)."""
        return np.ascontiguousarray(self.W_dec.T.astype(np.float64))

    @property
    def alive(self):
        """Latents that fired at least once on the held-out data."""
        return self.frequency > 0

    def encode(self, X):
        pre = (np.asarray(X, np.float32) - self.b_dec) @ self.W_enc + self.b_enc
        pre = np.maximum(pre, 0.0)
        idx = np.argpartition(-pre, self.k - 1, axis=1)[:, :self.k]
        z = np.zeros_like(pre)
        np.put_along_axis(z, idx, np.take_along_axis(pre, idx, axis=1), axis=1)
        return z

    def reconstruct(self, X):
        return self.encode(X) @ self.W_dec + self.b_dec

    def save(self, folder, **cfg):
        """SAELens layout (:func:`save_saelens`); :func:`load_dictionary` reads it back."""
        return save_saelens(folder, self.W_dec, W_enc=self.W_enc, b_enc=self.b_enc, b_dec=self.b_dec,
                            cfg={"k": self.k, "fvu": self.fvu, **cfg})


def fvu(X, X_hat) -> float:
    """Fraction of variance unexplained: ``||X - X_hat||^2 / ||X - mean(X)||^2``."""
    X, X_hat = _checks.finite_array(X, "X"), _checks.finite_array(X_hat, "X_hat")
    if X.ndim != 2 or X.shape != X_hat.shape:
        raise _checks.ShapeError(f"X and X_hat must be 2-D arrays of the same shape; got {X.shape} and {X_hat.shape}.")
    total = np.sum((X - X.mean(axis=0)) ** 2)
    if not total > 0:
        raise _checks.ArgumentError("X has no variance (every row is the same); the FVU is undefined.")
    return float(np.sum((X - X_hat) ** 2) / total)


def train_topk_sae(X, *, d_sae: int = 4096, k: int = 32, epochs: int = 10, batch_size: int = 4096,
                   lr: float = 1e-3, holdout: float = 0.1, seed=0, device: str = "cpu",
                   progress: bool = False) -> TopKSAEResult:
    """Train a TopK sparse autoencoder (Gao et al. 2024) on activations X (n, d_in).

    ``z = TopK_k(ReLU((x - b_dec) W_enc + b_enc))``, ``x_hat = z W_dec + b_dec``; loss mean squared
    error; Adam; decoder rows renormalised to unit norm after every step (so ``Phi* = W_dec W_dec^T``
    has unit diagonal); ``b_dec`` starts at the data mean and ``W_enc`` at ``W_dec^T``.  A random
    ``holdout`` fraction of the rows is kept out of training and gives ``fvu`` and ``frequency``.
    """
    torch = _checks.require("torch", "torch", "training an SAE")
    X = _checks.finite_array(X, "X").astype(np.float32)
    if X.ndim != 2:
        raise _checks.ShapeError(f"X must be (n tokens, d_in); got shape {X.shape}.")
    d_sae = _checks.check_positive_int(d_sae, "d_sae")
    k = _checks.check_positive_int(k, "k")
    if k > d_sae:
        raise _checks.ArgumentError(f"k = {k} cannot exceed d_sae = {d_sae}.")
    epochs = _checks.check_positive_int(epochs, "epochs", minimum=0)
    batch_size = _checks.check_positive_int(batch_size, "batch_size")
    lr = _checks.check_real(lr, "lr", low=0, low_open=True)
    if lr > 1e6:
        raise _checks.ArgumentError(f"lr = {lr:g} is not a usable Adam learning rate (typical: 1e-4 to 1e-2).")
    progress = _checks.check_bool(progress, "progress")
    holdout = _checks.check_probability(holdout, "holdout", closed_high=False)

    device = _resolve_device(torch, device)
    _checks.check_allocation(4 * 8 * d_sae * X.shape[1], f"an SAE with {d_sae:,} latents on width {X.shape[1]}")
    rng = _checks.as_generator(seed)
    n, d_in = X.shape
    order = rng.permutation(n)
    n_hold = max(2, int(round(holdout * n)))  # the FVU needs the variance of at least two rows
    X_hold, X_train = X[order[:n_hold]], X[order[n_hold:]]
    if X_train.shape[0] == 0:
        raise _checks.ArgumentError("no rows left to train on; pass more activations or a smaller holdout.")
    torch.manual_seed(int(rng.integers(2**31)))
    W_dec = torch.randn(d_sae, d_in, device=device)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    params = {
        "W_dec": W_dec.clone().requires_grad_(True),
        "W_enc": W_dec.T.clone().contiguous().requires_grad_(True),
        "b_enc": torch.zeros(d_sae, device=device, requires_grad=True),
        "b_dec": torch.tensor(X_train.mean(axis=0), device=device, requires_grad=True),
    }
    opt = torch.optim.Adam(params.values(), lr=lr)
    Xt = torch.tensor(X_train, device=device)
    var = float(((Xt - Xt.mean(0)) ** 2).sum(1).mean())
    if not var > 0:
        raise _checks.ArgumentError("the training rows have no variance (every row is the same); an SAE cannot "
                                    "be trained on them.")

    def forward(xb):
        pre = torch.relu((xb - params["b_dec"]) @ params["W_enc"] + params["b_enc"])
        vals, idx = pre.topk(k, dim=1)
        z = torch.zeros_like(pre).scatter_(1, idx, vals)
        return z @ params["W_dec"] + params["b_dec"]

    history = []
    it = range(epochs)
    if progress:
        it = _checks.require("tqdm", "torch", "progress bars").tqdm(it, desc="TopK SAE", unit="epoch")
    for _ in it:
        perm = torch.as_tensor(rng.permutation(Xt.shape[0]), device=device)
        total = 0.0
        for start in range(0, Xt.shape[0], batch_size):
            xb = Xt[perm[start:start + batch_size]]
            loss = ((forward(xb) - xb) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                params["W_dec"].div_(params["W_dec"].norm(dim=1, keepdim=True))
            total += float(loss.detach()) * xb.shape[0]
        history.append(total / Xt.shape[0] / var)
    out = {name: p.detach().cpu().numpy() for name, p in params.items()}
    result = TopKSAEResult(k=k, history=np.array(history), fvu=float("nan"),
                           frequency=np.zeros(d_sae), n_train=X_train.shape[0], n_holdout=n_hold, **out)
    Z = result.encode(X_hold)
    result.fvu = fvu(X_hold, Z @ result.W_dec + result.b_dec)
    result.frequency = (Z > 0).mean(axis=0)
    return result

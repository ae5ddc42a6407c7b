"""Learning a feature matrix from sign-only triplet answers (:class:`featlib.TripletFeedback`).

No finite set of sign answers identifies ``Phi*`` (see :mod:`featlib.triplets`), so these learners
return an *estimate*, up to scale, and never claim identification.  Two back ends:

``"gd"``
    Logistic loss over a trace-normalised PSD matrix: ``Phi = U U^T / ||U||_F^2`` (U of shape
    p x rank) and a learned inverse temperature ``beta``; the loss of triplet k with answer ``a_k``
    is ``log(1 + exp(-beta * a_k * (u_k^T Phi u_k - w_k^T Phi w_k) / (|u_k|^2 + |w_k|^2)))`` with
    ``u = x - y``, ``w = x - z``.  Adam in PyTorch (CPU or GPU); ties are left out of the loss.  The
    learned ``beta`` also fits noisy answers: a Bradley-Terry agent is this model's own likelihood.
``"sdp"``
    The soft-margin problem ``max t - C mean(xi)`` subject to
    ``a_k <Phi, u u^T - w w^T> / (|u|^2 + |w|^2) >= t - xi_k``, ``xi >= 0``, ``Phi`` PSD with unit
    trace (cvxpy); for small p (it forms an n x p^2 matrix).

Both return a :class:`~featlib.Solution` with ``identified=False``, ``version_space_dim`` the full
``p(p+1)/2`` (the consistent set is open), ``residual`` the fraction of answers the estimate gets
wrong, and ``info["agreement"]``.
"""

from __future__ import annotations

import time

import numpy as np

from .. import _checks
from ..triplets import balanced_differences
from ._result import Solution, normalise
from .reduce import quiet_solve
from ._trainer import FactorTrainer
from ..triplets import TripletFeedback
from ._trainer import resolve_device as _resolve_device

__all__ = ["solve_triplets"]

#: "auto" uses the SDP up to this p (and SDP_MAX_N triplets), gradient descent beyond
SDP_MAX_P = 15
SDP_MAX_N = 20000


def _fit_rows(tf):
    keep = tf.answers != 0
    u, w = balanced_differences(tf)  # scale-free: 1e-170 activations train like 1
    u, w, a = u[keep], w[keep], tf.answers[keep].astype(float)
    scale = np.einsum("ij,ij->i", u, u) + np.einsum("ij,ij->i", w, w)
    scale[scale == 0] = 1.0
    return u, w, a, scale


def _solution(tf, phi, method, t0, info):
    phi = normalise(phi)
    agreement = tf.agreement(phi)
    info = dict(info, agreement=agreement)
    p = tf.p
    return Solution(phi=phi, identified=False, version_space_dim=p * (p + 1) // 2, residual=1.0 - agreement,
                    method=method, seconds=time.perf_counter() - t0, decided=True, info=info)


def _gd(tf, *, rank, epochs, lr, batch_size, seed, device, progress):
    torch = _checks.require("torch", "torch", "solve(triplets, method='gd')")

    t0 = time.perf_counter()
    p = tf.p
    k = p if rank is None else _checks.check_positive_int(rank, "rank")
    epochs = _checks.check_positive_int(epochs, "epochs")
    lr = _checks.check_real(lr, "lr", low=0, low_open=True)
    rng = _checks.as_generator(seed)
    dev = _resolve_device(torch, device)
    u, w, a, scale = _fit_rows(tf)
    m = len(a)
    if m == 0:
        raise _checks.FeedbackError("no non-tie answers to learn from.")
    bs = m if batch_size is None else _checks.check_positive_int(batch_size, "batch_size")
    T = {name: torch.as_tensor(arr, dtype=torch.float64, device=dev)
         for name, arr in (("u", u), ("w", w), ("a", a), ("s", scale))}
    torch.manual_seed(int(rng.integers(2**31)))
    U0 = torch.randn(p, k, dtype=torch.float64).numpy()
    # the loss is of U / ||U||: scale-free by itself, so no scale fix; log(beta) learned with U
    trainer = FactorTrainer(torch, U0, device=dev, dtype=torch.float64, lr=lr, normalization=None,
                            extra=[np.log(10.0)])

    def loss_of(U, log_beta, idx):
        Un = U / U.norm()
        gap = ((T["u"][idx] @ Un) ** 2).sum(1) - ((T["w"][idx] @ Un) ** 2).sum(1)
        return torch.nn.functional.softplus(-log_beta.exp() * T["a"][idx] * gap / T["s"][idx]).mean()

    bar = None
    if progress:
        bar = _checks.require("tqdm", "torch", "progress bars").tqdm(total=epochs, desc="triplets gd", unit="epoch")

    def one_pass(epoch):
        perm = torch.as_tensor(rng.permutation(m), device=dev)
        for start in range(0, m, bs):
            loss = trainer.step(loss_of, perm[start:start + bs])
        return float(loss)  # the last batch's loss, as before

    trainer.fit(epochs, one_pass, tol=0.0, patience=epochs + 1, bar=bar)
    U, log_beta = trainer.U, trainer.extra[0]
    history = trainer.history
    Un = (U / U.norm()).detach().cpu().numpy()
    return _solution(tf, Un @ Un.T, "gd", t0, {"loss": history, "beta": float(log_beta.detach().exp()), "rank": k,
                                               "device": dev})


def _sdp(tf, *, C, solver):
    cp = _checks.require("cvxpy", "sdp", "solve(triplets, method='sdp')")
    t0 = time.perf_counter()
    C = _checks.check_real(C, "C", low=0, low_open=True)
    if C > 1e6:
        raise _checks.ArgumentError(f"C = {C:g} is outside the range the SDP solvers handle (use at most 1e6).")
    p = tf.p
    u, w, a, scale = _fit_rows(tf)
    if len(a) == 0:
        raise _checks.FeedbackError("no non-tie answers to learn from.")
    _checks.check_allocation(8 * len(a) * p * p * 3, f"the SDP's {len(a):,} x {p * p} constraint matrix")
    # <Phi, u u^T - w w^T> = vec(u u^T - w w^T) . vec(Phi)
    A = (np.einsum("ki,kj->kij", u, u) - np.einsum("ki,kj->kij", w, w)).reshape(len(a), p * p)
    A *= (a / scale)[:, None]
    Phi = cp.Variable((p, p), PSD=True)
    t = cp.Variable()
    xi = cp.Variable(len(a), nonneg=True)
    cons = [A @ cp.vec(Phi, order="C") >= t - xi, cp.trace(Phi) == 1]
    prob = cp.Problem(cp.Maximize(t - C * cp.sum(xi) / len(a)), cons)
    kwargs = {}
    if solver is not None:
        kwargs["solver"] = _checks.check_method(solver, tuple(cp.installed_solvers()), "cvxpy solver (installed)")
    elif "CLARABEL" in cp.installed_solvers():
        kwargs["solver"] = "CLARABEL"
    try:
        quiet_solve(prob, kwargs)  # "may be inaccurate" is recorded in info["status"], not warned
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - cvxpy's errors, and Clarabel's Rust panics (a BaseException)
        raise _checks.FeatlibError(f"the SDP solver failed ({type(exc).__name__}: {exc}); try solver='SCS'.") from None
    if Phi.value is None:
        raise _checks.FeatlibError(f"the SDP solver returned no solution (status {prob.status!r}).")
    return _solution(tf, Phi.value, "sdp", t0, {"margin": float(t.value), "status": prob.status})


def solve_triplets(triplets, method: str = "auto", *, rank=None, epochs: int = 300, lr: float = 0.05,
                   batch_size=None, seed=0, device: str = "auto", progress: bool = False, C: float = 10.0,
                   solver=None) -> Solution:
    """Estimate ``Phi*`` (up to scale) from sign-only triplets; see the module docstring.

    Parameters
    ----------
    triplets : TripletFeedback
    method : {"auto", "gd", "sdp"}
        ``"auto"``: the SDP when cvxpy is installed, ``p <= 15`` and at most 20,000 triplets, else
        gradient descent.
    rank, epochs, lr, batch_size, seed, device, progress
        Gradient descent: columns of U (default p), Adam epochs, learning rate, batch size (default:
        all), seed, torch device ("auto": CUDA when available), tqdm bar.
    C, solver
        SDP: weight of the slack (soft margin; 10 by default: at p = 5 and 2,000 triplets, C = 1 leaves
        a degenerate linear program (PCC 0.57), C = 10 gives PCC 0.999 on exact answers and 0.997 with
        5 % flipped ones, C = 100 overfits the flips) and the cvxpy solver (default Clarabel).
    """
    if not isinstance(triplets, TripletFeedback):
        raise _checks.ArgumentTypeError(f"solve_triplets expects a TripletFeedback; got {type(triplets).__name__}.")
    _checks.check_method(method, ("auto", "gd", "sdp"), "method for triplets")
    progress = _checks.check_bool(progress, "progress")
    if method == "auto":
        import importlib.util

        small = triplets.p <= SDP_MAX_P and len(triplets) <= SDP_MAX_N
        method = "sdp" if small and importlib.util.find_spec("cvxpy") is not None else "gd"
    if method == "sdp":
        return _sdp(triplets, C=C, solver=solver)
    return _gd(triplets, rank=rank, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, device=device,
               progress=progress)

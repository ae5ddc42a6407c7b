"""Gradient descent on ``Phi = U U^T`` with torch: the paper's Algorithm 3.

Loss over a batch B of pairs, each pair scaled by ``s_k = ||y_k||^2 + ||z_k||^2`` so that the loss
is scale-free (the paper's pairs ``(u_i, sqrt(c_i) y)`` all have comparable norms, ours need not)::

    mean_B ((||U^T y_k||^2 - ||U^T z_k||^2) / s_k)^2  +  reg * ||U||_F^2

optimised with Adam and gradient-norm clipping.  The scale is fixed after every step:
``normalization="trace"`` (default) rescales ``U`` to ``||U||_F^2 = p`` (trace(Phi) = p, valid for
every non-zero Phi*; entries of U stay of order one at every p, so one learning rate serves every
size; the reported loss is that of trace(Phi) = 1); ``normalization="entry"`` is the paper's choice
``U[0, 0] = 1`` (needs ``Phi*_11 > 0``).  Gradient descent gives an estimate, not a proof: ``identified`` and ``decided``
are False; use ``method="exact"`` or ``"sdp"`` to decide identifiability.

**Sparse batches** (the paper's memory trick).  Pairs are never materialised densely: each side
of each pair is kept as padded ``(indices, values)`` over "atoms", which are the coordinates for
sparse storage, the shared basis vectors for basis storage (then ``U^T y = (B^T U)^T c``), and all
coordinates for dense storage.  ``U^T y`` is a gather and a weighted sum, so memory is
proportional to the non-zeros and millions of 2- or 3-sparse pairs fit on a laptop or a GPU.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from .. import _checks
from ..feedback import PairFeedback, padded_rows
from ._result import Solution, max_relative_residual, normalise

__all__ = ["solve_gd"]


def _padded(C):
    """Rows of a dense or CSR matrix as padded (indices, values) arrays of shape (n, kmax)."""
    if not sp.issparse(C):
        C = np.asarray(C)
        n, m = C.shape
        return np.broadcast_to(np.arange(m), (n, m)).copy(), C.copy()
    return padded_rows(C)  # explicit zeros become zero-weight slots: harmless in the gather


def _resolve_device(torch, device):
    if not isinstance(device, str):
        raise _checks.ArgumentTypeError(f"device must be a string such as 'cpu', 'cuda' or 'auto'; got {device!r}.")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise _checks.FeatlibError(
            f"device={device!r} but this torch has no CUDA device ({torch.__version__}); use device='cpu' or "
            f"'auto', or install a CUDA build of torch on a machine with a GPU.")
    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError, ValueError) as exc:
        raise _checks.FeatlibError(f"torch cannot use device={device!r}: {exc}") from None
    return device


def solve_gd(
    feedback: PairFeedback,
    *,
    rank: int | None = None,
    lr: float = 1e-2,
    epochs: int = 3000,
    batch_size: int | None = None,
    reg: float | None = None,
    clip: float = 1.0,
    normalization: str = "trace",
    tol: float = 1e-14,
    patience: int = 200,
    seed=0,
    device: str = "auto",
    dtype: str | None = None,
    schedule: str = "constant",
    progress: bool = False,
    init=None,
    checkpoint=None,
    checkpoint_every: int = 10,
    distributed: bool = False,
) -> Solution:
    """Algorithm 3 (see the module docstring).

    Parameters
    ----------
    rank : int, optional
        Columns k of U (default p; the paper uses the dictionary width, 512 for its SAEs).
    lr : float
        Adam learning rate.  1e-2 with full batches recovers p <= 30 targets to PCC > 0.9999 in a
        few hundred to a few thousand epochs (tests and the solvers chapter).
    epochs : int
        Maximum passes over the pairs.
    batch_size : int, optional
        Pairs per Adam step (default: all, i.e. full-batch gradient descent).  Large problems need
        large batches: at p = 4096, rank 512, lr 1e-2, 3-sparse pairs, batches of 32768 stalled
        near PCC 0.75 while 65536 and 131072 converged (measured on an H200, README Performance).
    reg : float, optional
        Weight of ``||U||_F^2``.  Defaults to the paper's 1e-4 with ``normalization="entry"`` and
        to 0 with ``"trace"``: on the sphere ``||U||_F = 1`` the penalty is constant, and through
        Adam's per-coordinate scaling it only biases the result (measured: relative error 6e-2
        with 1e-4 against 7e-6 with 0, p = 8).
    clip : float
        Gradient-norm clipping threshold (``torch.nn.utils.clip_grad_norm_``).
    normalization : {"trace", "entry"}
    tol : float
        Stop when the full-data loss (without the regulariser) falls below ``tol``.
    patience : int
        Stop when the full-data loss has not improved by 0.1 % for this many epochs.
    seed : int or Generator
        Initialisation and batch order.
    device : str
        "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:1", ...
    dtype : {"float64", "float32"}, optional
        Precision of U and of the pairs on the device.  Default: float64 for p <= 1024 (small
        problems converge to PCC 0.99999+), float32 above (about 3x faster on CPU and the natural
        choice on a GPU; the paper-scale runs are limited by information, not by rounding).
    schedule : {"constant", "cosine"}
        Learning rate over the epochs: constant, or cosine decay from ``lr`` to 0 at ``epochs``
        (what the paper-scale runs use: a large early rate finds the basin, the decay settles in
        it; measured in the solvers chapter and ``featlib benchmark sampling``).
    progress : bool
        Show a tqdm progress bar over epochs.
    init : array (p, k), optional
        Initial U (default: Gaussian, scaled to the normalisation).
    checkpoint : str or Path, optional
        A file to save the run in (U, the optimiser and schedule, the random state, the loss history),
        written atomically every ``checkpoint_every`` epochs and at the end (an interrupted run,
        Ctrl-C, keeps the last one: a checkpoint is only ever of a completed epoch).  If the file
        exists, the run resumes from it and continues exactly as the uninterrupted run would have,
        after checking that it was made by the same pairs and settings (else a FeatlibError: delete
        the file or choose another).
    checkpoint_every : int
        Epochs between checkpoints.
    distributed : bool
        Run as one process of a ``torchrun`` job (PyTorch's DistributedDataParallel; gloo on CPUs,
        NCCL on GPUs): every process builds the same pairs, keeps the shard ``rank, rank + world, ...``,
        and the gradients of ``U`` are averaged across processes after every backward pass, so with
        full batches (the default) and equal shards the run follows the one-process trajectory up to
        floating-point summation order.  Losses (for the tolerance and patience) are reduced across
        processes; only rank 0 writes the checkpoint; every process returns the same answer.  Launch:
        ``torchrun --nproc_per_node=2 -m featlib -- recover --method gd --distributed ...``.
    """
    torch = _checks.require("torch", "torch", "solve(..., method='gd')")
    if not isinstance(feedback, PairFeedback):
        raise _checks.ArgumentTypeError(f"solve expects a PairFeedback; got {type(feedback).__name__}.")
    _checks.check_method(normalization, ("trace", "entry"), "normalization")
    t0 = time.perf_counter()
    if reg is None:
        reg = 0.0 if normalization == "trace" else 1e-4
    reg = _checks.check_real(reg, "reg", low=0)
    clip = _checks.check_real(clip, "clip", low=0, low_open=True)
    tol = _checks.check_real(tol, "tol", low=0)
    patience = _checks.check_positive_int(patience, "patience")
    progress = _checks.check_bool(progress, "progress")
    p, n = feedback.p, len(feedback)
    if n == 0:
        raise _checks.FeedbackError("no pairs to learn from.")
    k = p if rank is None else _checks.check_positive_int(rank, "rank")
    _checks.check_allocation(8 * p * k * 4, f"a {p} x {k} factor U with its gradient and Adam's moments")
    epochs = _checks.check_positive_int(epochs, "epochs")
    lr = _checks.check_real(lr, "lr", low=0, low_open=True)
    bs = n if batch_size is None else _checks.check_positive_int(batch_size, "batch_size")
    rng = _checks.as_generator(seed)
    dev = _resolve_device(torch, device)
    if dtype is None:
        dtype = "float64" if p <= 1024 else "float32"
    _checks.check_method(dtype, ("float64", "float32"), "dtype")
    _checks.check_method(schedule, ("constant", "cosine"), "schedule")
    fdt = getattr(torch, dtype)
    distributed = _checks.check_bool(distributed, "distributed")
    world, rank_id, dist = 1, 0, None
    if distributed:
        dist = _init_distributed(torch, dev)
        world, rank_id = dist.get_world_size(), dist.get_rank()

    dense = feedback.storage == "dense"
    if dense:  # a plain matrix product beats the gather when every coordinate is used
        Ys, Zs = feedback._stored_rows()
        yi, yv = np.zeros((n, 1), dtype=np.int64), np.asarray(Ys)
        zi, zv = np.zeros((n, 1), dtype=np.int64), np.asarray(Zs)
    else:
        Ys, Zs = feedback._stored_rows()
        yi, yv = _padded(Ys)
        zi, zv = _padded(Zs)
    sy, sz = feedback.sq_norms()
    s = sy + sz
    s[s == 0] = 1.0
    if world > 1:  # this process's shard of the pairs
        if n < world:
            raise _checks.FeedbackError(f"{n} pairs cannot be shared among {world} processes.")
        shard = np.arange(rank_id, n, world)
        yi, yv, zi, zv, s = yi[shard], yv[shard], zi[shard], zv[shard], s[shard]
    n_total, n = n, len(s)
    if batch_size is None:
        bs = n
    T = {name: torch.as_tensor(a, device=dev) for name, a in (("yi", yi), ("zi", zi))}
    T.update({name: torch.as_tensor(a, dtype=fdt, device=dev) for name, a in
              (("yv", yv), ("zv", zv), ("s", s))})
    basis = None if feedback.basis is None else torch.tensor(np.array(feedback.basis), dtype=fdt, device=dev)
    # trace normalisation keeps ||U||_F^2 = p: entries of U of order one whatever p is (one learning
    # rate suits every size) and gradients well above Adam's epsilon (with trace(Phi) = 1 the loss
    # at p = 4096 is ~1e-11 and Adam's steps stall); the reported loss is that of trace(Phi) = 1.
    scale = float(p) if normalization == "trace" else 1.0

    if init is None:
        U0 = rng.standard_normal((p, k)) / np.sqrt(k)
    else:
        U0 = _checks.finite_array(init, "init")
        if U0.shape != (p, k):
            raise _checks.ShapeError(f"init must have shape ({p}, {k}); got {U0.shape}.")
    U = torch.tensor(U0, dtype=fdt, device=dev, requires_grad=True)
    ddp = None
    if dist is not None:  # PyTorch's DistributedDataParallel averages U's gradient across processes
        holder = _FactorModule(torch, U)
        U = holder.U
        ddp = torch.nn.parallel.DistributedDataParallel(holder, device_ids=None)
    root_scale = float(np.sqrt(scale))

    def fix_scale():
        with torch.no_grad():
            if normalization == "trace":
                U.mul_(root_scale / torch.linalg.norm(U))
            else:
                U[0, 0] = 1.0

    def project(vals, inds, atoms):
        if dense:
            return vals @ atoms
        # a gather and a weighted sum; embedding_bag's backward accumulates rows that many pairs
        # share (every sampled pair has the same reference e_k) far faster than indexing does
        return torch.nn.functional.embedding_bag(inds, atoms, per_sample_weights=vals, mode="sum")

    def residual_loss(Uc, idx):
        atoms = Uc if basis is None else basis.T @ Uc  # (atoms, k)
        uy = project(T["yv"][idx], T["yi"][idx], atoms)
        uz = project(T["zv"][idx], T["zi"][idx], atoms)
        r = (uy.pow(2).sum(1) - uz.pow(2).sum(1)) / T["s"][idx]
        return r.pow(2).mean()

    def loss_of(idx):
        return residual_loss(U, idx)

    def train_loss(idx):  # through DDP when distributed, so that backward averages the gradients
        return residual_loss(U, idx) if ddp is None else ddp(residual_loss, idx)

    def full_loss():
        with torch.no_grad():
            total = 0.0
            for start in range(0, n, max(bs, 65536)):
                idx = torch.arange(start, min(n, start + max(bs, 65536)), device=dev)
                total += float(loss_of(idx)) * idx.numel()
            if dist is not None:  # the loss over every process's pairs
                t = torch.tensor([total], dtype=torch.float64, device=dev)
                dist.all_reduce(t)
                total = float(t)
            return total / n_total / scale**2  # in the units of trace(Phi) = 1

    fix_scale()
    opt = torch.optim.Adam([U], lr=lr)
    steps_per_epoch = -(-n // bs)
    sched = None
    if schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    history, epoch_seconds, best, stale = [], [], np.inf, 0
    bar = None
    if progress:
        tqdm = _checks.require("tqdm", "torch", "progress bars")
        bar = tqdm.tqdm(total=epochs, desc="gd", unit="epoch")
    # batch order: numpy on the CPU; on a GPU a device generator seeded from ``rng`` (a host
    # permutation of 10M pairs and its copy cost more than the epoch's steps there)
    on_gpu = torch.device(dev).type != "cpu"
    gen = torch.Generator(device=dev).manual_seed(int(rng.integers(2**62))) if on_gpu else None

    def one_epoch():
        """One pass over the pairs; True when the run should stop (tolerance or patience)."""
        nonlocal best, stale
        t_epoch = time.perf_counter()
        if on_gpu:
            order = torch.randperm(n, generator=gen, device=dev)
        else:
            order = torch.as_tensor(rng.permutation(n), device=dev)
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            opt.zero_grad()
            loss = train_loss(idx) + reg * U.pow(2).sum()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([U], clip)
            opt.step()
            if sched is not None:
                sched.step()
            fix_scale()
        current = full_loss()  # a float: the device has finished the epoch
        history.append(current)
        epoch_seconds.append(time.perf_counter() - t_epoch)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{current:.2e}")
        if current < tol:
            return True
        if current < best * (1 - 1e-3):
            best, stale = current, 0
        else:
            stale += 1
            if stale >= patience:
                return True
        return False

    ck, key, start_epoch = None, None, 0
    if checkpoint is not None:
        import pathlib

        checkpoint_every = _checks.check_positive_int(checkpoint_every, "checkpoint_every")
        if not isinstance(checkpoint, (str, pathlib.PurePath)):
            raise _checks.ArgumentTypeError(f"checkpoint must be a path (str or pathlib.Path); got {type(checkpoint).__name__}.")
        ck = pathlib.Path(checkpoint)
        key = _run_key(p, n_total, k, feedback, dict(lr=lr, epochs=epochs, batch_size=bs, reg=reg, clip=clip,
                                               normalization=normalization, schedule=schedule, dtype=dtype,
                                               seed=None if isinstance(seed, np.random.Generator) else seed))
        if ck.exists():
            state = _load_checkpoint(torch, ck, key)
            with torch.no_grad():
                U.copy_(torch.as_tensor(state["U"], dtype=fdt, device=dev))
            opt.load_state_dict(state["opt"])
            if sched is not None and state.get("sched") is not None:
                sched.load_state_dict(state["sched"])
            rng.bit_generator.state = state["rng"]
            if gen is not None and state.get("gen") is not None:
                gen.set_state(state["gen"])
            history, epoch_seconds = list(state["history"]), list(state["epoch_seconds"])
            best, stale, start_epoch = state["best"], state["stale"], state["epoch"]
            if bar is not None:
                bar.update(start_epoch)

    def save_checkpoint(epoch):
        from .._io import atomic_path

        state = {"key": key, "U": U.detach().cpu().numpy(), "opt": opt.state_dict(),
                 "sched": None if sched is None else sched.state_dict(), "rng": rng.bit_generator.state,
                 "gen": None if gen is None else gen.get_state(), "history": history,
                 "epoch_seconds": epoch_seconds, "best": best, "stale": stale, "epoch": epoch}
        with atomic_path(ck) as tmp:
            torch.save(state, tmp)

    try:
        for epoch in range(start_epoch, epochs):
            stop = one_epoch()
            if ck is not None and rank_id == 0 and ((epoch + 1) % checkpoint_every == 0 or stop or epoch + 1 == epochs):
                save_checkpoint(len(history))
            if stop:
                break
    finally:
        if bar is not None:
            bar.close()
    Uf = U.detach().cpu().numpy().astype(np.float64)
    phi = normalise(Uf @ Uf.T)
    return Solution(
        phi=phi,
        identified=False,
        version_space_dim=-1,
        residual=max_relative_residual(feedback, phi),
        method="gd",
        seconds=time.perf_counter() - t0,
        decided=False,
        info={"loss_history": np.array(history), "epoch_seconds": np.array(epoch_seconds), "U": Uf,
              "epochs_run": len(history), "device": dev, "world_size": world,
              "dtype": dtype, "resumed_from": start_epoch},
    )


def _FactorModule(torch, U):
    """U as the one parameter of a module, for DistributedDataParallel; ``forward(fn, idx)`` is
    ``fn(U, idx)``, so the loss code is the one of the single-process run."""

    class FactorModule(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.U = torch.nn.Parameter(U.detach().clone())

        def forward(self, fn, idx):
            return fn(self.U, idx)

    return FactorModule()


def _init_distributed(torch, dev):
    """The process group of a torchrun job (gloo on CPUs, NCCL on GPUs), initialised from the
    environment torchrun sets; a clear error outside torchrun."""
    import os

    dist = torch.distributed
    if not dist.is_available():
        raise _checks.FeatlibError("this torch build has no torch.distributed.")
    if not dist.is_initialized():
        if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
            raise _checks.FeatlibError(
                "distributed=True runs under torchrun, which sets RANK and WORLD_SIZE: e.g. "
                "torchrun --nproc_per_node=2 -m featlib -- recover --method gd --distributed ...")
        backend = "nccl" if str(dev).startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
    return dist


def _run_key(p, n, k, feedback, settings):
    """What made a gradient-descent run: the pairs (their sizes and a hash of their values) and the
    settings; a checkpoint is resumed only under the same key."""
    import hashlib

    h = hashlib.sha256()
    for C in feedback._stored_rows():
        data = C.data if hasattr(C, "tocsr") else np.asarray(C)
        h.update(np.ascontiguousarray(data, dtype=np.float64).tobytes())
        if hasattr(C, "tocsr"):
            h.update(np.ascontiguousarray(C.indices).tobytes())
    if feedback.basis is not None:
        h.update(np.ascontiguousarray(feedback.basis, dtype=np.float64).tobytes())
    return {"p": p, "n": n, "k": k, "pairs_sha256": h.hexdigest(), **settings}


def _load_checkpoint(torch, path, key):
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - a damaged checkpoint is refused with its cause
        raise _checks.FeatlibError(f"cannot read the checkpoint {str(path)!r} ({type(exc).__name__}: {exc}); "
                                   f"delete it to start afresh.") from None
    if not isinstance(state, dict) or state.get("key") != key:
        old = state.get("key") if isinstance(state, dict) else None
        diff = sorted(k for k in key if not isinstance(old, dict) or old.get(k) != key[k])
        raise _checks.FeatlibError(
            f"the checkpoint {str(path)!r} was made by other pairs or settings (differs in: {', '.join(diff)}); "
            f"delete it or choose another file.")
    return state

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
from ._trainer import FactorTrainer, init_distributed, resolve_device
from .._io import atomic_path
from ..streams import PairStream

__all__ = ["solve_gd"]


def _padded(C):
    """Rows of a dense or CSR matrix as padded (indices, values) arrays of shape (n, kmax)."""
    if not sp.issparse(C):
        C = np.asarray(C)
        n, m = C.shape
        return np.broadcast_to(np.arange(m), (n, m)).copy(), C.copy()
    return padded_rows(C)  # explicit zeros become zero-weight slots: harmless in the gather


def _tensors(torch, feedback, dev, fdt, rows=None):
    """A PairFeedback as device tensors: padded (indices, values) of both sides, the scale ``s``,
    the shared basis (or None) and whether the storage is dense."""
    Ys, Zs = feedback._stored_rows()
    dense = feedback.storage == "dense"
    if dense:  # a plain matrix product beats the gather when every coordinate is used
        n = Ys.shape[0]
        yi, yv = np.zeros((n, 1), dtype=np.int64), np.asarray(Ys)
        zi, zv = np.zeros((n, 1), dtype=np.int64), np.asarray(Zs)
    else:
        yi, yv = _padded(Ys)
        zi, zv = _padded(Zs)
    sy, sz = feedback.sq_norms()
    s = sy + sz
    s[s == 0] = 1.0
    if rows is not None:
        yi, yv, zi, zv, s = yi[rows], yv[rows], zi[rows], zv[rows], s[rows]
    T = {name: torch.as_tensor(a, device=dev) for name, a in (("yi", yi), ("zi", zi))}
    T.update({name: torch.as_tensor(a, dtype=fdt, device=dev) for name, a in (("yv", yv), ("zv", zv), ("s", s))})
    basis = None if feedback.basis is None else torch.tensor(np.array(feedback.basis), dtype=fdt, device=dev)
    return T, basis, dense


def _pair_loss(torch, T, basis, dense):
    """The loss of a batch (index tensor ``idx`` into ``T``, or None for all of it) at ``U``."""

    def project(vals, inds, atoms):
        if dense:
            return vals @ atoms
        # a gather and a weighted sum; embedding_bag's backward accumulates rows that many pairs
        # share (every sampled pair has the same reference e_k) far faster than indexing does
        return torch.nn.functional.embedding_bag(inds, atoms, per_sample_weights=vals, mode="sum")

    def loss(U, idx=None):
        atoms = U if basis is None else basis.T @ U  # (atoms, k)
        pick = (lambda a: a) if idx is None else (lambda a: a[idx])
        uy = project(pick(T["yv"]), pick(T["yi"]), atoms)
        uz = project(pick(T["zv"]), pick(T["zi"]), atoms)
        r = (uy.pow(2).sum(1) - uz.pow(2).sum(1)) / pick(T["s"])
        return r.pow(2).mean()

    return loss


def solve_gd(
    feedback,
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
    feedback : PairFeedback or PairStream
        The pairs; a :class:`featlib.PairStream` (:class:`~featlib.SampledPairs`,
        :class:`~featlib.ShardedPairs`) is read one batch at a time and never held whole: each of its
        batches is one Adam step, the epoch's loss is the mean of its batch losses (measured before
        each step), and the answer is returned as a factor (``Solution.factor``; ``.phi`` is formed
        on demand), with ``residual`` measured on the stream's first batch.
    rank : int, optional
        Columns k of U (default p; the paper uses the dictionary width, 512 for its SAEs).
    lr : float
        Adam learning rate.  1e-2 with full batches recovers p <= 30 targets to PCC > 0.9999 in a
        few hundred to a few thousand epochs (tests and the solvers chapter).
    epochs : int
        Maximum passes over the pairs.
    batch_size : int, optional
        Pairs per Adam step (default: all, i.e. full-batch gradient descent; for a stream, its own
        batch size, and this must be left unset).  Large problems need large batches: at p = 4096,
        rank 512, lr 1e-2, 3-sparse pairs, batches of 32768 stalled near PCC 0.75 while 65536 and
        131072 converged (measured on an H200, README Performance).
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
        floating-point summation order.  With a stream, process ``rank`` draws or reads only the
        batches ``rank, rank + world, ...`` (their number must be a multiple of the processes', so
        that every process takes the same number of steps).  Losses (for the tolerance and patience)
        are reduced across processes; only rank 0 writes the checkpoint; every process returns the
        same answer.  Launch: ``torchrun --nproc_per_node=2 -m featlib -- recover --method gd
        --distributed ...``.
    """
    torch = _checks.require("torch", "torch", "solve(..., method='gd')")
    streamed = isinstance(feedback, PairStream)
    if not (streamed or isinstance(feedback, PairFeedback)):
        raise _checks.ArgumentTypeError(f"solve expects a PairFeedback or a PairStream; got {type(feedback).__name__}.")
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
    if streamed and batch_size is not None:
        raise _checks.ArgumentError(
            f"a PairStream is trained one of its batches per step (here {feedback.batch_size:,} pairs); leave "
            f"batch_size unset and choose it when making the stream.")
    bs = n if batch_size is None else _checks.check_positive_int(batch_size, "batch_size")
    rng = _checks.as_generator(seed)
    dev = resolve_device(torch, device)
    if dtype is None:
        dtype = "float64" if p <= 1024 else "float32"
    _checks.check_method(dtype, ("float64", "float32"), "dtype")
    _checks.check_method(schedule, ("constant", "cosine"), "schedule")
    fdt = getattr(torch, dtype)
    distributed = _checks.check_bool(distributed, "distributed")
    world, rank_id, dist = 1, 0, None
    if distributed:
        dist = init_distributed(torch, dev)
        world, rank_id = dist.get_world_size(), dist.get_rank()

    if streamed:
        source = _Streamed(torch, feedback, dev, fdt, rank_id, world)
    else:
        source = _InMemory(torch, feedback, dev, fdt, rank_id, world, batch_size)
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
    steps_per_epoch = source.steps_per_epoch()
    trainer = FactorTrainer(torch, U0, device=dev, dtype=fdt, lr=lr, clip=clip, reg=reg, normalization=normalization,
                            schedule=schedule, total_steps=epochs * steps_per_epoch, dist=dist)
    bar = None
    if progress:
        tqdm = _checks.require("tqdm", "torch", "progress bars")
        bar = tqdm.tqdm(total=epochs, desc="gd", unit="epoch")
    # batch order: numpy on the CPU; on a GPU a device generator seeded from ``rng`` (a host
    # permutation of 10M pairs and its copy cost more than the epoch's steps there)
    on_gpu = torch.device(dev).type != "cpu"
    gen = torch.Generator(device=dev).manual_seed(int(rng.integers(2**62))) if on_gpu and not streamed else None

    def one_pass(epoch):
        return source.one_pass(trainer, rng, gen) / scale**2  # in the units of trace(Phi) = 1

    ck, key, save, start_epoch = None, None, None, 0
    if checkpoint is not None:
        import pathlib

        checkpoint_every = _checks.check_positive_int(checkpoint_every, "checkpoint_every")
        if not isinstance(checkpoint, (str, pathlib.PurePath)):
            raise _checks.ArgumentTypeError(f"checkpoint must be a path (str or pathlib.Path); got {type(checkpoint).__name__}.")
        ck = pathlib.Path(checkpoint)
        settings = dict(lr=lr, epochs=epochs, batch_size=bs, reg=reg, clip=clip, normalization=normalization,
                        schedule=schedule, dtype=dtype, seed=None if isinstance(seed, np.random.Generator) else seed)
        key = ({"p": p, "n": n, "k": k, "stream": feedback.key(), **settings} if streamed
               else _run_key(p, n, k, feedback, settings))
        if ck.exists():
            state = _load_checkpoint(torch, ck, key)
            start_epoch = trainer.load(state)
            try:
                rng.bit_generator.state = state["rng"]
                if gen is not None and state.get("gen") is not None:
                    gen.set_state(state["gen"])
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise _checks.FeatlibError(f"the checkpoint {str(ck)!r} has a damaged random state ({exc}); delete it "
                                           f"to start afresh.") from None
            if bar is not None:
                bar.update(start_epoch)

        def save_checkpoint(epoch):

            state = trainer.state(key=key, rng=rng.bit_generator.state, gen=None if gen is None else gen.get_state())
            with atomic_path(ck) as tmp:
                torch.save(state, tmp)

        save = save_checkpoint

    trainer.fit(epochs, one_pass, tol=tol, patience=patience, bar=bar, every=checkpoint_every,
                save_rank=rank_id == 0, start_epoch=start_epoch, save=save)
    Uf = trainer.factor()
    if not np.all(np.isfinite(Uf)) or not np.any(Uf):
        raise _checks.FeatlibError(f"gradient descent diverged (the factor U is not finite, or zero) with lr = {lr:g}: "
                                   f"lower lr, or lower clip.")
    info = {"loss_history": np.array(trainer.history), "epoch_seconds": np.array(trainer.epoch_seconds),
            "epochs_run": len(trainer.history), "device": dev, "world_size": world, "dtype": dtype,
            "resumed_from": start_epoch, "steps_per_epoch": steps_per_epoch}
    factor = Uf / np.linalg.norm(Uf)  # unit trace
    if streamed:
        first = feedback.batch(0)
        norm = float(np.linalg.norm(factor, 2)) ** 2
        residual = max_relative_residual(first, None, factor=factor, norm=norm)
        return Solution(phi=None, factor=factor, identified=False, version_space_dim=-1, residual=residual,
                        method="gd", seconds=time.perf_counter() - t0, decided=False,
                        info={**info, "residual_over": f"batch 0 ({len(first):,} pairs)"})
    phi = normalise(Uf @ Uf.T)
    return Solution(phi=phi, factor=factor, identified=False, version_space_dim=-1,
                    residual=max_relative_residual(feedback, phi), method="gd", seconds=time.perf_counter() - t0,
                    decided=False, info={**info, "U": Uf})


def _ceil_div(a, b):
    return -(-a // b)


class _InMemory:
    """Pairs held as device tensors; the batches of an epoch are a permutation of this process's
    pairs (the shard ``rank, rank + world, ...`` under torchrun)."""

    def __init__(self, torch, feedback, dev, fdt, rank_id, world, batch_size):
        n_total = len(feedback)
        rows = None
        if world > 1:
            if n_total < world:
                raise _checks.FeedbackError(f"{n_total} pairs cannot be shared among {world} processes.")
            rows = np.arange(rank_id, n_total, world)
        self.T, basis, dense = _tensors(torch, feedback, dev, fdt, rows)
        self.loss = _pair_loss(torch, self.T, basis, dense)
        self.torch, self.dev, self.n_total = torch, dev, n_total
        self.n = len(self.T["s"])
        # every process must take the same number of steps (DistributedDataParallel's backward waits for
        # all of them): as many as the largest shard needs, over near-equal slices of each shard
        largest = _ceil_div(n_total, world)
        self.bs = largest if batch_size is None else batch_size
        self.steps = _ceil_div(largest, self.bs)

    def steps_per_epoch(self):
        return self.steps

    def one_pass(self, trainer, rng, gen):
        torch, n = self.torch, self.n
        if gen is not None:
            order = torch.randperm(n, generator=gen, device=self.dev)
        else:
            order = torch.as_tensor(rng.permutation(n), device=self.dev)
        if trainer.dist is None:
            batches = [order[start:start + self.bs] for start in range(0, n, self.bs)]
        else:
            batches = torch.tensor_split(order, self.steps)
        for idx in batches:
            trainer.step(self.loss, idx)
        with torch.no_grad():  # the loss over all the pairs, after the epoch
            total, chunk = 0.0, max(self.bs, 65536)
            for start in range(0, n, chunk):
                idx = torch.arange(start, min(n, start + chunk), device=self.dev)
                total += float(self.loss(trainer.U, idx)) * idx.numel()
        return trainer.all_reduce_mean(total, n) if trainer.dist is not None else total / n


class _Streamed:
    """Pairs drawn or read one batch at a time: process ``rank`` takes the batches ``rank, rank + world,
    ...`` in a new random order every epoch; the epoch's loss is the mean of the batch losses."""

    def __init__(self, torch, stream, dev, fdt, rank_id, world):
        if stream.n_batches % world:
            raise _checks.FeedbackError(
                f"a stream of {stream.n_batches} batches cannot be shared equally among {world} processes (each "
                f"must take the same number of steps): choose n and batch_size so that the number of batches is "
                f"a multiple of {world}.")
        self.torch, self.stream, self.dev, self.fdt = torch, stream, dev, fdt
        self.mine = np.arange(rank_id, stream.n_batches, world)

    def steps_per_epoch(self):
        return len(self.mine)

    def one_pass(self, trainer, rng, gen):
        total, count = 0.0, 0
        for b in rng.permutation(self.mine):
            fb = self.stream.batch(int(b))
            T, basis, dense = _tensors(self.torch, fb, self.dev, self.fdt)
            loss = trainer.step(_pair_loss(self.torch, T, basis, dense))
            total += float(loss) * len(fb)
            count += len(fb)
        return trainer.all_reduce_mean(total, count)


def _run_key(p, n, k, feedback, settings):
    """What made a gradient-descent run: the pairs (their sizes and a hash of their values) and the
    settings; a checkpoint is resumed only under the same key."""
    import hashlib

    h = hashlib.sha256()

    def part(tag, a, dtype):
        a = np.ascontiguousarray(a, dtype=dtype)
        # each array with its name and shape, so that no two different sets hash the same bytes
        h.update(f"{tag}:{a.shape}:".encode())
        h.update(a.tobytes())

    for name, C in zip("YZ", feedback._stored_rows()):
        if hasattr(C, "tocsr"):
            C = C.tocsr()
            part(f"{name}.shape", np.asarray(C.shape), np.int64)
            part(f"{name}.data", C.data, np.float64)
            part(f"{name}.indices", C.indices, np.int64)
            part(f"{name}.indptr", C.indptr, np.int64)
        else:
            part(f"{name}.dense", C, np.float64)
    if feedback.basis is not None:
        part("basis", feedback.basis, np.float64)
    return {"p": p, "n": n, "k": k, "pairs_sha256": h.hexdigest(), **settings}


def _load_checkpoint(torch, path, key):
    try:
        # weights_only: a checkpoint is data; a pickle that names code is refused, never run
        state = torch.load(str(path), map_location="cpu", weights_only=True)
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

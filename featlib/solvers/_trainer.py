"""The training loop every gradient-descent learner shares: :class:`FactorTrainer`.

One object owns the factor ``U`` (p x k), any extra parameters (the triplet learner's temperature),
Adam, gradient-norm clipping, the learning-rate schedule, the scale fix after every step, the
epoch loop with its tolerance and patience, checkpoints, and PyTorch's DistributedDataParallel
when the run is one process of a ``torchrun`` job.  The learners only say what a batch's loss is:
``solve_gd`` (equality pairs, in memory or streamed) and ``solve_triplets`` (sign-only triplets).
"""

from __future__ import annotations

import time

import numpy as np

from .. import _checks

__all__ = ["FactorTrainer", "resolve_device", "init_distributed"]


def resolve_device(torch, device):
    """"auto" (CUDA when available, else CPU) or a device torch can use; a FeatlibError otherwise."""
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


#: seconds a process waits for its torchrun peers before giving up (FEATLIB_RENDEZVOUS_TIMEOUT overrides)
RENDEZVOUS_TIMEOUT_S = int(__import__("os").environ.get("FEATLIB_RENDEZVOUS_TIMEOUT", "600") or 600)


def init_distributed(torch, dev):
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
        try:
            world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
        except ValueError:
            raise _checks.FeatlibError(f"RANK and WORLD_SIZE must be integers; got RANK={os.environ['RANK']!r}, "
                                       f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} (torchrun sets them).") from None
        if not (world >= 1 and 0 <= rank < world):
            raise _checks.FeatlibError(f"RANK must be in 0..WORLD_SIZE-1; got RANK={rank}, WORLD_SIZE={world}.")
        for var in ("MASTER_ADDR", "MASTER_PORT"):
            if var not in os.environ:
                raise _checks.FeatlibError(f"{var} is not set: run under torchrun, which sets it.")
        seconds = RENDEZVOUS_TIMEOUT_S
        backend = "nccl" if str(dev).startswith("cuda") else "gloo"
        import datetime

        try:
            dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=seconds))
        except (RuntimeError, ValueError) as exc:  # torch's DistStoreError is a RuntimeError
            raise _checks.FeatlibError(
                f"process {rank} of {world} could not meet its peers at {os.environ['MASTER_ADDR']}:"
                f"{os.environ['MASTER_PORT']} within {seconds} s ({type(exc).__name__}: {str(exc)[:200]}); "
                f"start all {world} processes (torchrun does), or set FEATLIB_RENDEZVOUS_TIMEOUT.") from None
    return dist


def _module(torch, params):
    """The parameters as a module, for DistributedDataParallel; ``forward(fn, *args)`` is
    ``fn(*params, *args)``, so the loss code is the one of the single-process run."""

    class Params(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.params = torch.nn.ParameterList([torch.nn.Parameter(t.detach().clone()) for t in params])

        def forward(self, fn, *args):
            return fn(*self.params, *args)

    return Params()


class FactorTrainer:
    """Adam on a factor ``U`` (and ``extra`` parameters), one ``step(loss_fn, batch)`` at a time.

    Parameters
    ----------
    torch : module
    U0 : array (p, k)
        The initial factor.
    device, dtype : str, torch dtype
    lr, clip, reg
        Adam's learning rate; gradient-norm clipping threshold (None: no clipping); weight of
        ``||U||_F^2`` added to every batch loss.
    normalization : {"trace", "entry", None}
        The scale fix after every step: ``||U||_F^2 = p``, ``U[0, 0] = 1``, or none (a loss that is
        scale-free by itself, as the triplet loss of ``U / ||U||``).
    schedule : {"constant", "cosine"}
        Cosine decay to 0 over ``total_steps``.
    extra : sequence of arrays
        Further parameters optimised with U (e.g. a log-temperature).
    dist : torch.distributed or None
        When given, the parameters live in a DistributedDataParallel module and every backward pass
        averages their gradients across the processes.
    """

    def __init__(self, torch, U0, *, device, dtype, lr, clip=None, reg=0.0, normalization="trace",
                 schedule="constant", total_steps=None, extra=(), dist=None):
        self.torch, self.device, self.dtype, self.dist = torch, device, dtype, dist
        self.reg, self.clip, self.normalization = float(reg), clip, normalization
        params = [torch.tensor(np.asarray(U0), dtype=dtype, device=device)]
        params += [torch.tensor(np.asarray(e), dtype=dtype, device=device) for e in extra]
        self.ddp = None
        if dist is not None:
            holder = _module(torch, params)
            self.ddp = torch.nn.parallel.DistributedDataParallel(holder, device_ids=None)
            self.params = list(holder.params)
        else:
            self.params = [t.requires_grad_(True) for t in params]
        self.U = self.params[0]
        p = self.U.shape[0]
        self._root = float(np.sqrt(p))
        self.scale = float(p) if normalization == "trace" else 1.0  # ||U||_F^2 under the normalisation
        self.fix_scale()
        self.opt = torch.optim.Adam(self.params, lr=lr)
        self.sched = None
        if schedule == "cosine":
            self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=max(1, int(total_steps)))
        self.history, self.epoch_seconds, self.best, self.stale = [], [], np.inf, 0

    @property
    def extra(self):
        return self.params[1:]

    def fix_scale(self):
        with self.torch.no_grad():
            if self.normalization == "trace":
                self.U.mul_(self._root / self.torch.linalg.norm(self.U))
            elif self.normalization == "entry":
                self.U[0, 0] = 1.0

    def loss(self, fn, *args):
        """``fn(U, *extra, *args)``, through DistributedDataParallel when distributed (so that the next
        backward pass averages the gradients across processes)."""
        return fn(*self.params, *args) if self.ddp is None else self.ddp(fn, *args)

    def step(self, fn, *args):
        """One Adam step on ``fn``'s loss (plus the regulariser); the loss as a detached tensor."""
        self.opt.zero_grad()
        loss = self.loss(fn, *args)
        total = loss + self.reg * self.U.pow(2).sum() if self.reg else loss
        total.backward()
        if self.clip is not None:
            self.torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        self.fix_scale()
        return loss.detach()

    def all_reduce_mean(self, total, count):
        """``total / count`` summed over the processes (the plain ratio without distribution)."""
        if self.dist is None:
            return total / count
        t = self.torch.tensor([total, count], dtype=self.torch.float64, device=self.device)
        self.dist.all_reduce(t)
        return float(t[0]) / float(t[1])

    def record(self, loss, seconds, *, tol, patience):
        """Append an epoch's loss; True when the run should stop (below ``tol``, or no 0.1 %
        improvement for ``patience`` epochs)."""
        self.history.append(loss)
        self.epoch_seconds.append(seconds)
        if loss < tol:
            return True
        if loss < self.best * (1 - 1e-3):
            self.best, self.stale = loss, 0
            return False
        self.stale += 1
        return self.stale >= patience

    def factor(self) -> np.ndarray:
        return self.U.detach().cpu().numpy().astype(np.float64)

    # ------------------------------------------------------------------ checkpoints
    def state(self, **more) -> dict:
        # tensors, not numpy arrays: torch.load(weights_only=True) reads them without unpickling code
        return {"U": self.U.detach().cpu().clone(), "extra": [e.detach().cpu().clone() for e in self.extra],
                "opt": self.opt.state_dict(), "sched": None if self.sched is None else self.sched.state_dict(),
                "history": list(self.history), "epoch_seconds": list(self.epoch_seconds), "best": self.best,
                "stale": self.stale, "epoch": len(self.history), **more}

    def load(self, state):
        """Restore a checkpoint's state; every array is checked against this run's shapes first (a
        truncated or foreign U is refused, never broadcast)."""
        torch = self.torch
        try:
            values = [state["U"], *state.get("extra", [])]
            if len(values) != len(self.params):
                raise ValueError(f"{len(values)} parameter arrays, expected {len(self.params)}")
            tensors = []
            for t, v in zip(self.params, values):
                if not isinstance(v, torch.Tensor):
                    raise ValueError(f"a parameter is a {type(v).__name__}, not a tensor")
                if tuple(v.shape) != tuple(t.shape):
                    raise ValueError(f"a parameter has shape {tuple(v.shape)}, expected {tuple(t.shape)}")
                if not torch.isfinite(v).all():
                    raise ValueError("a parameter holds NaN or infinite values")
                tensors.append(v)
            history, seconds = [float(x) for x in state["history"]], [float(x) for x in state["epoch_seconds"]]
            epoch, stale, best = state["epoch"], state["stale"], float(state["best"])
            if not (isinstance(epoch, int) and isinstance(stale, int) and 0 <= epoch == len(history) and stale >= 0):
                raise ValueError("inconsistent epoch counters")
            with torch.no_grad():
                for t, v in zip(self.params, tensors):
                    t.copy_(v.to(dtype=self.dtype, device=self.device))
            self.opt.load_state_dict(state["opt"])
            if self.sched is not None and state.get("sched") is not None:
                self.sched.load_state_dict(state["sched"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise _checks.FeatlibError(f"the checkpoint's contents are damaged or not from this run ({type(exc).__name__}: "
                                       f"{exc}); delete it to start afresh.") from None
        self.history, self.epoch_seconds = history, seconds
        self.best, self.stale = best, stale
        return epoch

    def fit(self, epochs, one_pass, *, tol, patience, bar=None, every=10, save_rank=True,
            start_epoch=0, save=None):
        """Run ``one_pass(epoch) -> loss`` for the remaining epochs, stopping on ``tol``/``patience``;
        ``save(epoch)`` (rank 0 only) every ``every`` epochs and at the end."""
        try:
            for epoch in range(start_epoch, epochs):
                t = time.perf_counter()
                current = one_pass(epoch)
                stop = self.record(current, time.perf_counter() - t, tol=tol, patience=patience)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{current:.2e}")
                if save is not None and save_rank and ((epoch + 1) % every == 0 or stop or epoch + 1 == epochs):
                    save(len(self.history))
                if stop:
                    break
        finally:
            if bar is not None:
                bar.close()

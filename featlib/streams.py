"""Pairs that are never all in memory: :class:`PairStream` and its two sources.

At real SAE sizes sampled feedback means 10^8 to 10^9 pairs (a p = 16,384 dictionary of rank 512
has 8.3 million degrees of freedom), which is tens of GB as stored pairs.  A stream hands them to
gradient descent (``featlib.solve(stream, "gd")``) one batch at a time:

* :class:`SampledPairs` draws batch ``b`` from the seed ``(seed, b)``, so the same batch comes back
  whenever it is asked for, on any process, and nothing is stored (an epoch regenerates them);
* :class:`ShardedPairs` reads batches written to disk by :meth:`PairStream.save` (one ``.npz`` per
  batch and a ``manifest.json``), for pairs that came from elsewhere or cost too much to regenerate.

Under ``torchrun`` (``solve(stream, "gd", distributed=True)``) process ``r`` of ``w`` takes the
batches ``r, r + w, r + 2w, ...``: each process draws or reads only its own shard.
"""

from __future__ import annotations

import hashlib
import io
import json
import numbers
import pathlib
import zipfile

import numpy as np
import scipy.sparse as sp

from . import _checks
from .feedback import Agent, PairFeedback
from ._io import atomic_path, write_json_atomic
from .teachers import _index_reference, teach

__all__ = ["PairStream", "SampledPairs", "ShardedPairs"]

MANIFEST = "manifest.json"
FORMAT = "featlib-pair-shards"


class PairStream:
    """``n`` equality pairs in ``R^p``, delivered as ``n_batches`` batches of ``batch_size`` pairs (the
    last one may be shorter); ``batch(b)`` is a :class:`featlib.PairFeedback` and the same one every
    time it is asked for.  Subclasses say how a batch is made (:meth:`batch`) and what made the
    stream (:meth:`key`, used to key gradient-descent checkpoints)."""

    def __init__(self, p: int, n: int, batch_size: int):
        self.p = _checks.check_positive_int(p, "p")
        self.n = _checks.check_positive_int(n, "n")
        if self.n > 2**53:
            raise _checks.ArgumentError(f"n = {self.n:,} pairs is beyond any run (at most 2**53, about 9e15).")
        self.batch_size = _checks.check_positive_int(batch_size, "batch_size")

    @property
    def n_batches(self) -> int:
        return -(-self.n // self.batch_size)

    def batch_length(self, b: int) -> int:
        return min(self.batch_size, self.n - b * self.batch_size)

    def _check_batch(self, b):
        if isinstance(b, bool) or not isinstance(b, numbers.Integral):
            raise _checks.ArgumentTypeError(f"a batch number must be an int; got {type(b).__name__}.")
        if not 0 <= int(b) < self.n_batches:
            raise _checks.IndexOutOfRangeError(f"batch {b} is out of range: this stream has {self.n_batches} batches.")
        return int(b)

    def batch(self, b: int) -> PairFeedback:  # pragma: no cover - abstract
        raise NotImplementedError

    def key(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        for b in range(self.n_batches):
            yield self.batch(b)

    def to_feedback(self) -> PairFeedback:
        """All the pairs as one PairFeedback (refused when they would not fit in memory)."""
        _checks.check_allocation(3 * 8 * self.n * min(self.p, 64), f"{self.n:,} pairs in dimension {self.p}")
        return PairFeedback.concat(list(self))

    def save(self, folder, *, force: bool = False) -> "ShardedPairs":
        """Write every batch to ``folder`` (one ``shard-NNNNNN.npz`` per batch, each written atomically,
        and a ``manifest.json`` last, with each shard's SHA-256) and return the :class:`ShardedPairs`
        that reads them back.  An existing manifest is refused unless ``force``."""
        folder = pathlib.Path(_checks_path(folder, "folder"))
        if folder.exists() and not folder.is_dir():
            raise _checks.ArgumentError(f"{str(folder)!r} exists and is not a folder.")
        if (folder / MANIFEST).exists() and not force:
            raise _checks.ArgumentError(f"{str(folder)!r} already holds pair shards; pass force=True to replace them.")
        folder.mkdir(parents=True, exist_ok=True)
        shards = []
        for b in range(self.n_batches):
            fb = self.batch(b)
            if fb.storage not in ("dense", "sparse"):  # basis or span: stored rows are coefficients
                raise _checks.FeedbackError(f"shards hold dense or sparse pairs, not {fb.storage!r}-stored ones.")
            name = f"shard-{b:06d}.npz"
            Y, Z = fb._stored_rows()
            if fb.storage == "sparse":
                Y, Z = sp.csr_matrix(Y), sp.csr_matrix(Z)
                arrays = {"y_data": Y.data, "y_indices": Y.indices, "y_indptr": Y.indptr,
                          "z_data": Z.data, "z_indices": Z.indices, "z_indptr": Z.indptr}
            else:
                arrays = {"y": np.asarray(Y), "z": np.asarray(Z)}
            with atomic_path(folder / name) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, **arrays)
            shards.append({"file": name, "pairs": len(fb), "sha256": _sha256(folder / name)})
        write_json_atomic(folder / MANIFEST, {"format": FORMAT, "version": 1, "p": self.p, "n": self.n,
                                              "batch_size": self.batch_size, "source": self.key(), "shards": shards})
        return ShardedPairs(folder)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p}, n={self.n:,}, batch_size={self.batch_size:,})"


def _checks_path(path, name):
    if not isinstance(path, (str, pathlib.PurePath)):
        raise _checks.ArgumentTypeError(f"{name} must be a path (str or pathlib.Path); got {type(path).__name__}.")
    return path


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class SampledPairs(PairStream):
    """The ``"sparse-sampled"`` teacher (Assumption 1 / Theorem 4) as a stream: batch ``b`` is
    ``teach(agent, "sparse-sampled", n=len_b, seed=numpy.random.default_rng((seed, b)), **options)``,
    drawn when asked for and never stored.

    Parameters
    ----------
    phi_star : array (p, p), Agent or featlib.Factored
        The hidden feature matrix; a :class:`featlib.Factored` decoder is never formed as p x p (the
        agent answers ``||D x||^2``).
    n : int
        Pairs in all.
    s, mu, sampler
        As the teacher: by default exactly ``s = 3`` non-zeros at uniform positions (the paper's
        setting at scale); ``sampler="bernoulli"`` with ``mu`` (and an optional cap ``s``).
    reference : int, optional
        The coordinate ``e_k`` every pair is rescaled against (default: the largest diagonal entry
        of Phi*, chosen once).
    seed : int
    batch_size : int
        Pairs per batch (and per gradient step when solved with gradient descent).
    """

    def __init__(self, phi_star, n: int, *, s: int | None = 3, mu=None, sampler: str | None = None,
                 reference=None, seed: int = 0, batch_size: int = 65536):

        agent = phi_star if isinstance(phi_star, Agent) else Agent(phi_star)
        super().__init__(agent.p, n, batch_size)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise _checks.ArgumentTypeError(f"seed must be a non-negative int (batch b is drawn from (seed, b)); got {seed!r}.")
        if sampler is None:
            sampler = "bernoulli" if mu is not None else "exact"
        self.agent, self.seed = agent, int(seed)
        self.options = {"s": s, "mu": mu, "sampler": sampler}
        self.reference = _index_reference(agent, reference)
        self.batch(0)  # check the options once, here, rather than in the middle of a training run

    def batch(self, b: int) -> PairFeedback:

        b = self._check_batch(b)
        opts = {k: v for k, v in self.options.items() if v is not None}
        return teach(self.agent, "sparse-sampled", n=self.batch_length(b), seed=np.random.default_rng((self.seed, b)),
                     reference=self.reference, **opts)

    def key(self) -> dict:
        h = hashlib.sha256()
        probe = np.random.default_rng(12345).standard_normal((4, self.p))
        h.update(np.ascontiguousarray(self.agent.row_quadratics(probe), dtype=np.float64).tobytes())
        return {"source": "sampled", "p": self.p, "n": self.n, "batch_size": self.batch_size, "seed": self.seed,
                "reference": self.reference, **self.options, "phi_star_probe_sha256": h.hexdigest()}


class ShardedPairs(PairStream):
    """Pairs written to a folder by :meth:`PairStream.save`: batch ``b`` is shard ``b``.

    Each shard is checked on every read: its SHA-256 against the manifest, computed on the bytes that
    are then parsed (a changed, truncated or swapped file is refused), then its arrays (no pickles, no compressed members, shapes and indices in range,
    finite values)."""

    def __init__(self, folder):
        folder = pathlib.Path(_checks_path(folder, "folder"))
        path = folder / MANIFEST
        if not path.is_file():
            raise _checks.MissingFileError(f"{str(folder)!r} has no {MANIFEST}: write shards with PairStream.save(folder).")
        try:
            m = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise _checks.FeatlibError(f"cannot read {str(path)!r}: {exc}") from None
        if not isinstance(m, dict) or m.get("format") != FORMAT or m.get("version") != 1:
            raise _checks.FeatlibError(f"{str(path)!r} is not a featlib pair-shard manifest (format {FORMAT!r}, version 1).")
        try:
            super().__init__(m["p"], m["n"], m["batch_size"])
            shards = list(m["shards"])
            lengths = [int(s["pairs"]) for s in shards]
        except (KeyError, TypeError, ValueError, _checks.FeatlibError) as exc:
            raise _checks.FeatlibError(f"{str(path)!r} is damaged ({type(exc).__name__}: {exc}).") from None
        if len(shards) != self.n_batches or lengths != [self.batch_length(b) for b in range(self.n_batches)]:
            raise _checks.FeatlibError(f"{str(path)!r} is damaged: its shards do not add up to {self.n} pairs "
                                       f"in batches of {self.batch_size}.")
        self.folder, self.shards, self.source = folder, shards, m.get("source")

    def batch(self, b: int) -> PairFeedback:
        b = self._check_batch(b)
        entry = self.shards[b]
        name = str(entry.get("file", ""))
        path = self.folder / name
        if pathlib.Path(name).name != name or not path.is_file():
            raise _checks.MissingFileError(f"shard {b} ({name!r}) is missing from {str(self.folder)!r}.")
        # read once, hash what was read, parse those same bytes: a shard swapped after an earlier
        # read (or between the check and the parse) is refused, not used
        size = path.stat().st_size
        limit = 64 * (self.batch_length(b) * self.p * 2 + 1) * 8 + (1 << 20)
        if size > limit:
            raise _checks.FeatlibError(f"shard {str(path)!r} is {size:,} bytes, more than {self.batch_length(b)} pairs "
                                       f"in dimension {self.p} can take; write the shards again.")
        blob = path.read_bytes()
        if hashlib.sha256(blob).hexdigest() != entry.get("sha256"):
            raise _checks.FeatlibError(f"shard {str(path)!r} does not match its SHA-256 in the manifest "
                                       f"(changed or truncated); write the shards again.")
        try:
            with zipfile.ZipFile(io.BytesIO(blob)) as z:
                if any(i.compress_type != zipfile.ZIP_STORED for i in z.infolist()):
                    raise _checks.FeatlibError(f"shard {str(path)!r} has compressed members; featlib writes them stored.")
        except zipfile.BadZipFile as exc:
            raise _checks.FeatlibError(f"cannot read shard {str(path)!r} ({exc}).") from None
        m = self.batch_length(b)
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as f:
                if "y" in f.files:
                    Y, Z = f["y"], f["z"]
                    ok = Y.shape == Z.shape == (m, self.p)
                else:
                    Y, Z = (sp.csr_matrix((f[f"{s}_data"], f[f"{s}_indices"], f[f"{s}_indptr"]), shape=(m, self.p))
                            for s in "yz")
                    ok = all(C.indices.size == 0 or (C.indices.min() >= 0 and C.indices.max() < self.p) for C in (Y, Z))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise _checks.FeatlibError(f"cannot read shard {str(path)!r} ({type(exc).__name__}: {exc}).") from None
        if not ok:
            raise _checks.FeatlibError(f"shard {str(path)!r} does not hold {m} pairs in dimension {self.p}.")
        return PairFeedback(Y, Z)

    def key(self) -> dict:
        return {"source": "shards", "p": self.p, "n": self.n, "batch_size": self.batch_size,
                "shards_sha256": hashlib.sha256("".join(str(s.get("sha256")) for s in self.shards).encode()).hexdigest()}

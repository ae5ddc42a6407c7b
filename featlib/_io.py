"""Files written atomically, and caches keyed by what made them.

A file is written to a temporary name in its own folder and renamed over the target
(``os.replace``, atomic on POSIX), so an interrupted run never leaves a half-written file under
the real name.  A cache entry is a folder whose name and ``key.json`` record every parameter that
produced it; a reader that finds a missing, unreadable or differently keyed entry rebuilds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import tempfile

import numpy as np

__all__ = ["atomic_path", "save_npy_atomic", "write_json_atomic", "read_json", "cache_key"]


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success rename it to ``path`` (else delete it)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = pathlib.Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_npy_atomic(path, array) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array))


def write_json_atomic(path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, default=str))


def read_json(path):
    """The parsed JSON file, or None when it is missing or not valid JSON (a half-written file)."""
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return None


def cache_key(params: dict) -> str:
    """A short stable hash of the parameters that make a cache entry."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]

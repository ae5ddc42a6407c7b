"""Sparse-autoencoder dictionaries: load them from disk, whatever the library that saved them.

The paper's large experiments take ``Phi* = D^T D`` from the decoder of a sparse autoencoder (SAE):
``D`` is ``d x p`` with one column ("atom") per latent.  :func:`load_dictionary` detects the layout
from what is on disk and always returns ``D`` with atoms as columns:

======================================  ===========================================================
on disk                                  read as
======================================  ===========================================================
SAELens folder: ``cfg.json`` +           ``W_dec`` of shape ``[d_sae, d_in]`` (rows are atoms), so
``sae_weights.safetensors``              ``D = W_dec^T``
a ``.safetensors`` file with ``W_dec``   the same
dictionary_learning: ``ae.pt`` (or a     ``decoder.weight`` of shape ``[d_model, dict_size]``
folder holding it)                       (columns are atoms), ``D = decoder.weight``
``.npy``                                 a 2-D array, atoms as columns (``atoms="rows"`` for W_dec-like
                                         arrays)
``.npz``                                 key ``W_dec`` (rows), ``decoder.weight``/``decoder``/``D``
                                         (columns), or a single array (``atoms`` applies)
======================================  ===========================================================

Nothing is downloaded: a user with internet access fetches an SAE (SAELens release, or a
dictionary_learning zip) and points :func:`load_dictionary` at the files; see the README.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from . import _checks

__all__ = ["load_dictionary", "feature_matrix", "save_saelens", "select_latents", "ACCEPTED_LAYOUTS"]

ACCEPTED_LAYOUTS = (
    "a SAELens folder (cfg.json + sae_weights.safetensors with W_dec [d_sae, d_in])",
    "a .safetensors file with W_dec",
    "a dictionary_learning ae.pt (decoder.weight [d_model, dict_size]) or a folder holding it",
    "a .npy array (d x p, atoms as columns; atoms='rows' for p x d)",
    "a .npz archive with W_dec, decoder.weight, decoder, D or a single array",
)


def _unknown(path, found):
    accepted = "\n  - ".join(ACCEPTED_LAYOUTS)
    return _checks.FeatlibError(
        f"Cannot read a dictionary from {str(path)!r}: found {found}. Accepted layouts:\n  - {accepted}"
    )


def _from_safetensors(file):
    st = _checks.require("safetensors", "sae", "reading SAELens weights")
    import safetensors.numpy  # noqa: F401  (the numpy flavour needs no torch)

    tensors = st.numpy.load_file(str(file))
    if "W_dec" not in tensors:
        raise _unknown(file, f"a safetensors file with tensors {sorted(tensors)} but no W_dec")
    return np.asarray(tensors["W_dec"], dtype=np.float64).T


def _from_torch(file):
    torch = _checks.require("torch", "torch", "reading dictionary_learning ae.pt files")
    state = torch.load(str(file), map_location="cpu", weights_only=True)
    if hasattr(state, "state_dict"):
        state = state.state_dict()
    if not isinstance(state, dict):
        raise _unknown(file, f"a torch file holding a {type(state).__name__}, not a state dict")
    if "decoder.weight" in state:
        return state["decoder.weight"].detach().to(torch.float64).numpy()
    if "W_dec" in state:
        return state["W_dec"].detach().to(torch.float64).numpy().T
    raise _unknown(file, f"a state dict with keys {sorted(state)} but no decoder.weight or W_dec")


def _from_numpy(file, atoms):
    try:
        data = np.load(str(file), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise _unknown(file, f"a file NumPy cannot read ({exc})") from None
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
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2:
        raise _checks.ShapeError(f"the dictionary in {str(file)!r} must be 2-D; got shape {arr.shape}.")
    return arr.T if rows else arr


def select_latents(D, latents):
    """Columns of D: ``None`` (all), an int n (the first n), an index array or a boolean mask
    (e.g. the alive latents, ``frequencies > 0``)."""
    if latents is None:
        return D
    p = D.shape[1]
    if isinstance(latents, (int, np.integer)) and not isinstance(latents, bool):
        n = _checks.check_positive_int(latents, "latents")
        if n > p:
            raise ValueError(f"asked for the first {n} latents, but the dictionary has only {p}.")
        return D[:, :n]
    idx = np.asarray(latents)
    if idx.dtype == bool:
        if idx.shape != (p,):
            raise _checks.ShapeError(f"a boolean latent mask must have shape ({p},); got {idx.shape}.")
        return D[:, idx]
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise TypeError("latents must be None, an int, an integer index array or a boolean mask.")
    if idx.size and (idx.min() < -p or idx.max() >= p):
        raise IndexError(f"latent indices must lie in [0, {p}); got {idx.min()}..{idx.max()}.")
    return D[:, idx]


def load_dictionary(path, *, latents=None, atoms: str = "columns") -> np.ndarray:
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
    """
    _checks.check_method(atoms, ("columns", "rows"), "atoms")
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file or folder: {str(path)!r}.")
    if path.is_dir():
        names = sorted(p.name for p in path.iterdir())
        if "sae_weights.safetensors" in names:
            D = _from_safetensors(path / "sae_weights.safetensors")
        elif "ae.pt" in names:
            D = _from_torch(path / "ae.pt")
        else:
            raise _unknown(path, f"a folder holding {names[:20]}{' ...' if len(names) > 20 else ''}")
    else:
        suffix = path.suffix.lower()
        if suffix == ".safetensors":
            D = _from_safetensors(path)
        elif suffix in (".pt", ".pth"):
            D = _from_torch(path)
        elif suffix in (".npy", ".npz"):
            D = _from_numpy(path, atoms)
        else:
            raise _unknown(path, f"a file with suffix {suffix!r}")
    if not np.all(np.isfinite(D)):
        raise _checks.NonFiniteError(f"the dictionary in {str(path)!r} holds NaN or infinite values.")
    return np.ascontiguousarray(select_latents(D, latents))


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
    ``b_enc`` ``[d_sae]`` and ``b_dec`` ``[d_in]``.  :func:`load_dictionary` reads it back."""
    _checks.require("safetensors", "sae", "writing SAELens weights")
    import safetensors.numpy

    W_dec = _checks.finite_array(W_dec, "W_dec").astype(np.float32)
    if W_dec.ndim != 2:
        raise _checks.ShapeError(f"W_dec must be [d_sae, d_in]; got shape {W_dec.shape}.")
    d_sae, d_in = W_dec.shape
    tensors = {"W_dec": np.ascontiguousarray(W_dec)}
    for name, arr, shape in (("W_enc", W_enc, (d_in, d_sae)), ("b_enc", b_enc, (d_sae,)), ("b_dec", b_dec, (d_in,))):
        if arr is not None:
            arr = _checks.finite_array(arr, name).astype(np.float32)
            if arr.shape != shape:
                raise _checks.ShapeError(f"{name} must have shape {shape}; got {arr.shape}.")
            tensors[name] = np.ascontiguousarray(arr)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    safetensors.numpy.save_file(tensors, str(folder / "sae_weights.safetensors"))
    meta = {"d_in": d_in, "d_sae": d_sae, "architecture": "topk"}
    meta.update(cfg or {})
    (folder / "cfg.json").write_text(json.dumps(meta, indent=1, default=str))
    return folder

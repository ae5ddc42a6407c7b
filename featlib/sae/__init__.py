"""Sparse-autoencoder dictionaries, one module per job: :mod:`~featlib.sae.io` loads and saves them
(whatever the library that saved them), :mod:`~featlib.sae.corpus` builds an offline corpus and
its MiniLM activations, :mod:`~featlib.sae.train` trains a TopK SAE.

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

from .corpus import minilm_activations, minilm_path, python_corpus
from .io import ACCEPTED_LAYOUTS, MAX_BYTES, feature_matrix, load_dictionary, save_saelens, select_latents
from .train import TopKSAEResult, fvu, train_topk_sae

__all__ = ["load_dictionary", "feature_matrix", "save_saelens", "select_latents", "ACCEPTED_LAYOUTS", "MAX_BYTES",
           "python_corpus", "minilm_path", "minilm_activations", "train_topk_sae", "TopKSAEResult", "fvu"]

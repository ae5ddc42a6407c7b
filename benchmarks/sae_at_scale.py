"""Thin wrapper: the same as `featlib benchmark sae --folder DIR [options]`.

The paper's SAE experiment at its size on a real language model: MiniLM activations of CPython's
documentation, a 4096-latent TopK SAE (cached in DIR), exact recovery from eigen and sparse
constructive feedback, gradient descent from 1M-10M 3-sparse sampled pairs. The benchmark itself
is featlib.benchmarks.sae_at_scale (documented there). Run from the repository root:

    python benchmarks/sae_at_scale.py --folder sae4096 [--device cuda] [--seconds 60]
"""

import sys

from featlib.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", "sae", *sys.argv[1:]]))

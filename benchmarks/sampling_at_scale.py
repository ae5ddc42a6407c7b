"""Thin wrapper: the same as `featlib benchmark sampling [--p 4096] [--d 512] [--pairs 1e6 2e6 4e6 1e7]`.

Sparse sampling at scale (the paper's ChessGPT budgets), recovered by gradient descent; the benchmark
itself is featlib.benchmarks.sampling_at_scale (documented there). Run from the repository root:

    python benchmarks/sampling_at_scale.py [options]
"""

import sys

from featlib.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", "sampling", *sys.argv[1:]]))

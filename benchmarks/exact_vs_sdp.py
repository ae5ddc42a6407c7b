"""Thin wrapper: the same as `featlib benchmark exact-vs-sdp [--p 10 20 30] [--repeat 3]`.

The benchmark itself is featlib.benchmarks.exact_vs_sdp (documented there); run from the repository root:

    python benchmarks/exact_vs_sdp.py [options]
"""

import sys

from featlib.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", "exact-vs-sdp", *sys.argv[1:]]))

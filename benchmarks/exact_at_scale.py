"""Thin wrapper: the same as `featlib benchmark scale [--p 4096] [--d 512] [--teacher sparse|eigen]`.

The benchmark itself is featlib.benchmarks.exact_at_scale (documented there); run from the repository root:

    python benchmarks/exact_at_scale.py [options]
"""

import sys

from featlib.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", "scale", *sys.argv[1:]]))

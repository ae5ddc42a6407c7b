"""Thin wrapper: the same as `featlib benchmark solvers [--p 10 20 40 80] [--skip-gd] [--epochs 2000]`.

The benchmark itself is featlib.benchmarks.solvers_compare (documented there); run from the repository root:

    python benchmarks/solvers_compare.py [options]
"""

import sys

from featlib.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", "solvers", *sys.argv[1:]]))

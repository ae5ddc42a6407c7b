"""Command line: ``featlib demo`` (or ``python -m featlib demo``).

Later issues add ``featlib benchmark`` and ``featlib recover``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def _demo(args) -> int:
    import featlib as fl

    p, r = args.p, args.rank
    phi = fl.datasets.random_feature_matrix(p, r, seed=args.seed)
    agent = fl.Agent(phi)
    print(f"Hidden feature matrix Phi*: p = {p}, rank r = {r} (seed {args.seed}).")
    print(f"Lemma 2: a triplet answer becomes an equality pair; e.g. compare(x, y, z) = "
          f"{agent.compare(*np.random.default_rng(0).standard_normal((3, p)))}.\n")
    rows = [
        ("eigen", {}, "Theorem 1", fl.bounds.constructive_low_rank(p, r)),
        ("sparse", {}, "Theorem 2", fl.bounds.sparse_constructive(p)),
        ("gaussian", {}, "Theorem 3", fl.bounds.sampled(p) - 1),
        ("sparse-sampled", {"mu": 0.5, "n": 3 * fl.bounds.sampled(p)}, "Theorem 4", None),
    ]
    print(f"{'teacher':<16}{'theorem':<11}{'pairs':>7}{'bound':>7}  {'identified':<11}{'rel. error':>11}{'seconds':>9}")
    status = 0
    for method, opts, thm, bound in rows:
        fb = fl.teach(agent, method, seed=args.seed, **opts)
        sol = fl.solve(fb, "exact")
        err = fl.relative_error(sol.phi, phi)
        print(f"{method:<16}{thm:<11}{len(fb):>7}{bound if bound is not None else '-':>7}  "
              f"{str(sol.identified):<11}{err:>11.2e}{sol.seconds:>9.4f}")
        if not sol.identified or err > 1e-8:
            status = 1
    fb = fl.teach(agent, "eigen")
    A = fb.constraints().toarray()
    lin = fl.linalg.svec_dim(p) - np.linalg.matrix_rank(A)
    print(f"\nWhy the PSD constraint matters: the {len(fb)} eigen pairs leave a {lin}-dimensional *linear* "
          f"solution space;\nthe (0, v) pairs force Phi v = 0 only for PSD Phi, and the exact solver uses "
          f"that to get dimension 1.")
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="featlib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="hide a feature matrix, teach it four ways, recover it exactly")
    demo.add_argument("--p", type=int, default=10, help="dimension of the activations (default 10)")
    demo.add_argument("--rank", type=int, default=8, help="rank of the hidden matrix (default 8)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

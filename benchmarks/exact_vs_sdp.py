"""Time solve(method="exact") against solve(method="sdp") on the same feedback.

    python benchmarks/exact_vs_sdp.py            # p = 10, 20, 30, every teacher
    python benchmarks/exact_vs_sdp.py --p 10 40  # other sizes

Prints p, teacher, pairs, method, seconds (median of --repeat runs), relative error, identified.
"sdp-raw" is the SDP answer without the exact polishing step on its face (the interior-point
solution itself).
"""

from __future__ import annotations

import argparse
import statistics
import time

import featlib as fl


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=int, nargs="+", default=[10, 20, 30])
    ap.add_argument("--rank-fraction", type=float, default=0.5, help="rank of Phi* as a fraction of p")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--teachers", nargs="+", default=["eigen", "sparse", "gaussian"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"{'p':>4} {'rank':>5} {'teacher':<10} {'pairs':>6} {'method':<8} {'seconds':>9} {'rel.err':>9} {'ident.':>6}")
    for p in args.p:
        r = max(1, int(round(args.rank_fraction * p)))
        phi = fl.datasets.random_feature_matrix(p, r, seed=args.seed)
        for teacher in args.teachers:
            fb = fl.teach(phi, teacher, seed=args.seed)
            for method, opts in (("exact", {}), ("sdp", {}), ("sdp-raw", {"polish": False})):
                times, sol = [], None
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    sol = fl.solve(fb, method.split("-")[0], **opts)
                    times.append(time.perf_counter() - t0)
                err = fl.relative_error(sol.phi, phi)
                print(f"{p:>4} {r:>5} {teacher:<10} {len(fb):>6} {method:<8} {statistics.median(times):>9.4f} "
                      f"{err:>9.1e} {str(sol.identified):>6}", flush=True)


if __name__ == "__main__":
    main()

"""Benchmark (a): featlib's exact solver against a plain cvxpy SDP (the paper's small-p method)
and gradient descent (Algorithm 3), on the same feedback.

    python benchmarks/solvers_compare.py                      # p = 10, 20, 40, 80; every teacher
    python benchmarks/solvers_compare.py --p 10 40 --skip-gd

"cvxpy" is the textbook formulation: Phi >= 0, every pair equality, trace(Phi) = 1, solved by
Clarabel with no reduction (what a user of cvxpy would write). featlib's own "sdp" method adds the
facial reduction and a uniqueness test; it is timed by benchmarks/exact_vs_sdp.py. Peak memory is
tracemalloc's peak of Python allocations during the solve (NumPy buffers included; solver-internal
C allocations are not).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np

import featlib as fl
from featlib.linalg import smat


def plain_cvxpy(fb):
    import cvxpy as cp
    import scipy.sparse as sp

    from featlib.solvers.sdp import _svec_from_vecF

    p = fb.p
    A = fb.constraints()
    norms = np.sqrt(np.asarray(A.multiply(A).sum(axis=1)).ravel())
    A = sp.diags(1 / norms[norms > 0]) @ A[norms > 0]
    X = cp.Variable((p, p), PSD=True)
    x = cp.vec(X, order="F")
    prob = cp.Problem(cp.Minimize(0), [cp.trace(X) == 1, (A @ _svec_from_vecF(p)) @ x == 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob.solve(solver="CLARABEL")
    return (X.value + X.value.T) / 2


def run(method, fb, gd_epochs):
    tracemalloc.start()
    t = time.perf_counter()
    if method == "exact":
        sol = fl.solve(fb, "exact", warn=False)
        phi = sol.phi
        method_note = "" if sol.identified else (" (not identified)" if sol.decided else " (undecided: hidden face)")
    elif method == "cvxpy":
        phi, method_note = plain_cvxpy(fb), ""
    else:
        phi, method_note = fl.solve(fb, "gd", epochs=gd_epochs, device="cpu").phi, ""
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return phi, seconds, peak, method_note


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=int, nargs="+", default=[10, 20, 40, 80])
    ap.add_argument("--teachers", nargs="+", default=["eigen", "sparse", "gaussian", "sparse-sampled"])
    ap.add_argument("--gd-epochs", type=int, default=2000)
    ap.add_argument("--skip-gd", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    methods = ["exact", "cvxpy"] + ([] if args.skip_gd else ["gd"])
    print(f"{'p':>4} {'teacher':<15} {'pairs':>6} {'method':<6} {'seconds':>9} {'peak MB':>8} {'PCC':>9} {'rel.err':>9}")
    import cvxpy

    for p in args.p:
        phi_star = fl.datasets.random_feature_matrix(p, max(1, p // 2), seed=args.seed)
        for teacher in args.teachers:
            # about two non-zeros per activation, capped at three (the paper's SAE experiments are 3-sparse)
            opts = {"n": 3 * p * (p + 1) // 2, "mu": 1 - 2 / p, "s": 3} if teacher == "sparse-sampled" else {}
            fb = fl.teach(phi_star, teacher, seed=args.seed, **opts)
            for method in methods:
                try:
                    phi, sec, peak, note = run(method, fb, args.gd_epochs)
                except cvxpy.error.SolverError as err:
                    tracemalloc.stop()
                    print(f"{p:>4} {teacher:<15} {len(fb):>6} {method:<6} failed: {str(err)[:60]}", flush=True)
                    continue
                print(f"{p:>4} {teacher:<15} {len(fb):>6} {method:<6} {sec:>9.4f} {peak:>8.1f} "
                      f"{fl.pcc(phi, phi_star):>9.6f} {fl.relative_error(phi, phi_star):>9.1e}{note}", flush=True)


if __name__ == "__main__":
    main()

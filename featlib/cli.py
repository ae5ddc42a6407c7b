"""Command line: ``featlib`` (or ``python -m featlib``).

    featlib demo                                   hide a matrix, teach it four ways, recover it
    featlib recover --p 256 --d 32 --teacher sparse [--dictionary SAE_FOLDER|ae.pt|D.npy] [--method exact]
    featlib benchmark exact-vs-sdp [--p 10 20 30]
    featlib benchmark solvers [--p 10 20 40 80] [--skip-gd] [--profile]
    featlib benchmark phase [--p 10 20] [--repeat SEEDS] [--surrogate SAMPLES]
    featlib benchmark comparisons [--p 10 20] [--eps 0 0.05]
    featlib benchmark scale [--p 4096 --d 512 --teacher sparse|eigen|compact] [--dictionary SAE]
    featlib benchmark sampling [--p 4096 --d 512 --pairs 1e6 2e6 4e6 1e7 --epochs 30] [--dictionary SAE]
    featlib benchmark sae --folder DIR [--d-sae 4096 --pairs 1e6 2e6 4e6 1e7 --device cuda]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ._checks import FeatlibError
from . import benchmarks, sae
from ._io import save_npy_atomic
import featlib as fl  # the public API, as a user's script would use it (cli is the top layer)


def _demo(args) -> int:
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


def _load_dictionary(path, latents=None, normalize_atoms=False):
    try:
        return sae.load_dictionary(path, latents=latents, normalize_atoms=normalize_atoms)
    except (FeatlibError, OSError, ValueError, TypeError, IndexError) as exc:
        raise FeatlibError(f"cannot read the dictionary {path}: {exc}") from None


def _recover(args) -> int:
    import os

    if args.checkpoint is not None:
        if not args.checkpoint.strip():
            raise FeatlibError("--checkpoint needs a file name; got an empty one.")
        if args.method != "gd" and not args.stream:
            raise FeatlibError(f"--checkpoint is for --method gd (gradient descent saves and resumes its run); "
                               f"--method {args.method} runs in one go and writes no checkpoint.")
    if args.distributed:
        if args.method != "gd":
            raise FeatlibError("--distributed is for --method gd (gradient descent across processes).")
        if "WORLD_SIZE" not in os.environ:
            raise FeatlibError("--distributed runs under torchrun, one process per CPU group or GPU: torchrun "
                               "--nproc_per_node=2 -m featlib -- recover --method gd --distributed [the other options] (the -- keeps "
                               "torchrun from reading featlib's options)")
    quiet = args.distributed and os.environ.get("RANK", "0") != "0"  # the other ranks compute, rank 0 reports

    def say(*parts, **kw):
        if not quiet:
            print(*parts, **kw)

    if args.dictionary:
        D = _load_dictionary(args.dictionary, args.latents, args.normalize_atoms)
        source = f"{args.dictionary} ({D.shape[0]} x {D.shape[1]})"
    else:
        D = fl.datasets.random_dictionary(args.d, args.p, seed=args.seed)
        source = f"random unit-norm dictionary {args.d} x {args.p} (seed {args.seed})"
    if args.stream:
        return _recover_streamed(args, D, source, say, quiet)
    phi = D.T @ D
    opts = {}
    if args.teacher in ("gaussian", "sparse-sampled"):
        opts["n"] = args.n
        opts["seed"] = args.seed
    if args.teacher == "sparse-sampled":
        if args.sampler == "exact":
            opts["sampler"], opts["s"] = "exact", args.s
        else:
            opts["mu"], opts["s"] = args.mu, args.s
    say(f"Phi* = D^T D from {source}: p = {phi.shape[0]}")
    fb = fl.teach(phi, args.teacher, **opts)
    say(f"teacher {args.teacher!r}: {len(fb):,} pairs ({fb.storage} storage)")
    if args.teacher == "compact" and args.method == "exact":
        opts_exact = {"face_hint": fb.meta["face_hint"]}
    else:
        opts_exact = {}
    solve_opts = {}
    if args.method == "gd":
        solve_opts = {**_gd_options(args), "batch_size": args.batch_size}
    if args.method == "svp":  # the rank of the answer: --rank, else the numerical rank of Phi*
        solve_opts = {"rank": args.rank if args.rank is not None else fl.linalg.numerical_rank(phi),
                      "progress": args.progress}
    sol = fl.solve(fb, args.method, **solve_opts, **opts_exact)
    say(sol)
    say(f"PCC {fl.pcc(sol.phi, phi):.6f}   relative error {fl.relative_error(sol.phi, phi):.2e}   "
          f"identified {sol.identified} (decided {sol.decided})")
    if args.output and not quiet:

        save_npy_atomic(args.output, sol.phi)
        say(f"learned feature matrix (unit trace) written to {args.output}")
    return 0


def _gd_options(args) -> dict:
    """Gradient-descent options from ``recover``'s flags (all but the batch size)."""
    opts = {"epochs": args.epochs, "progress": args.progress, "device": args.device, "schedule": args.schedule}
    if args.checkpoint:
        opts.update(checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every)
    if args.lr is not None:
        opts["lr"] = args.lr
    if args.rank is not None:
        opts["rank"] = args.rank
    if args.distributed:
        opts["distributed"] = True
    return opts


def _recover_streamed(args, D, source, say, quiet) -> int:
    """``recover --stream``: sampled pairs drawn batch by batch from the seed (featlib.SampledPairs over
    the decoder, Phi* never formed), gradient descent on them, PCC from the factors."""
    if args.teacher != "sparse-sampled" or args.method != "gd":
        raise FeatlibError("--stream draws sparse-sampled pairs batch by batch for gradient descent: use it with "
                           "--teacher sparse-sampled --method gd.")
    if args.n is None:
        raise FeatlibError("--stream needs --n, the number of pairs.")
    truth = fl.Factored(D)
    opts = {"s": args.s, "sampler": "exact"} if args.sampler == "exact" else {"s": args.s, "mu": args.mu,
                                                                            "sampler": "bernoulli"}
    stream = fl.SampledPairs(truth, args.n, seed=args.seed, batch_size=args.batch_size or 65536, **opts)
    say(f"Phi* = D^T D from {source}: p = {truth.p} (not formed)")
    say(f"stream of {stream.n:,} sparse-sampled pairs in {stream.n_batches:,} batches of {stream.batch_size:,} "
        f"(drawn from seed {args.seed} when needed, never stored)")
    sol = fl.solve(stream, "gd", **_gd_options(args))  # the stream's batches are the steps: no batch_size
    say(sol)
    learned = sol.as_factored()
    say(f"PCC {fl.pcc(learned, truth):.6f}   relative error {fl.relative_error(learned, truth):.2e}   (exact, from the "
        f"factors)   identified {sol.identified} (decided {sol.decided})")
    if args.output and not quiet:

        save_npy_atomic(args.output, sol.factor)
        say(f"learned factor F ({sol.factor.shape[0]} x {sol.factor.shape[1]}, Phi = F F^T of unit trace) written to "
            f"{args.output}")
    return 0


def _benchmark(args) -> int:

    if args.which == "exact-vs-sdp":
        benchmarks.exact_vs_sdp(args.p or (10, 20, 30), repeat=args.repeat or 3, seed=args.seed, progress=args.progress)
    elif args.which == "solvers":
        benchmarks.solvers_compare(args.p or (10, 20, 40, 80), gd_epochs=(args.epochs or [2000])[0], skip_gd=args.skip_gd,
                                   seed=args.seed, progress=args.progress, profile=args.profile)
    elif args.which == "sampling":
        D = _load_dictionary(args.dictionary, args.latents, args.normalize_atoms) if args.dictionary else None
        for p in (None,) if D is not None else args.p or (4096,):
            benchmarks.sampling_at_scale(p, args.d or 512, [int(float(n)) for n in args.pairs], lr=args.lr or 1e-2,
                                         epochs=args.epochs or 30, batch_size=args.batch_size or 65536,
                                         seconds=args.seconds,
                                         rank=args.rank, device=args.device, seed=args.seed, dictionary=D,
                                         label=args.dictionary, progress=args.progress)
    elif args.which == "comparisons":
        benchmarks.comparisons(args.p or (10,), eps=tuple(args.eps), seed=args.seed)
    elif args.which == "verify":
        benchmarks.verify_exact(tuple(args.p) if args.p else (4, 7, 10, 12, 20), seeds=args.repeat or 3,
                                progress=args.progress)
    elif args.which == "phase":
        benchmarks.phase_transitions(args.p or (10,), seeds=args.repeat or 10, progress=args.progress,
                                     exact=args.exact, ranks=args.ranks, search=args.search, surrogate=args.surrogate,
                                     **({"ensembles": tuple(args.ensembles)} if args.ensembles else {}))
    elif args.which == "below-dof":
        D = _load_dictionary(args.dictionary, args.latents, args.normalize_atoms) if args.dictionary else None
        gd = {"epochs": (args.epochs or [300])[0]}
        if args.batch_size:
            gd["batch_size"] = args.batch_size
        benchmarks.below_dof((args.p or [1024])[0], args.d or 128, args.ratios, seed=args.seed,
                             dictionary=D, gd=gd, methods=args.methods)
    elif args.which == "sae-scale":
        D = _load_dictionary(args.dictionary, args.latents, args.normalize_atoms) if args.dictionary else None
        if args.sampled:
            benchmarks.sae_scale_sampled((args.p or [16384])[0], args.d or 512, int(float(args.pairs[0])),
                                         seconds=(args.seconds or [600.0])[0], batch_size=args.batch_size or 65536,
                                         lr=args.lr or 1e-2, rank=args.rank, device=args.device, seed=args.seed,
                                         dictionary=D, progress=args.progress)
        else:
            if args.teacher == "sparse":
                raise fl.ArgumentError("'sae-scale' runs the eigen or compact teacher in factored form; got "
                                       "--teacher sparse (use 'scale' for it).")
            benchmarks.sae_scale(args.p or (4096, 16384, 32768, 65536), args.d or 512, seed=args.seed, dictionary=D,
                                 teacher=args.teacher or "eigen")
    elif args.which == "triplets":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the peers' deprecation notes and cvxpy's accuracy remarks
            benchmarks.triplets_compare(args.p or (10, 20), eps=args.eps, seed=args.seed,
                                        gd_epochs=(args.epochs or [300])[0])
    elif args.which == "sae":
        if not args.folder:
            raise FeatlibError("featlib benchmark sae: pass --folder DIR (activations and the SAE are cached there).")
        benchmarks.sae_at_scale(args.folder, max_chars=args.max_chars, layer=args.layer, d_sae=args.d_sae, k=args.k,
                                sae_epochs=args.sae_epochs, seed=args.seed,
                                pairs=[int(float(n)) for n in args.pairs], gd_epochs=args.epochs or 60,
                                seconds=args.seconds, batch_size=args.batch_size or 65536, lr=args.lr or 1e-2,
                                device=args.device, progress=args.progress)
    else:
        D = _load_dictionary(args.dictionary, args.latents, args.normalize_atoms) if args.dictionary else None
        for p in (None,) if D is not None else args.p or (4096,):
            benchmarks.exact_at_scale(p, args.d or 512, teacher=args.teacher or "sparse", seed=args.seed, dictionary=D,
                                      repeat=args.repeat or 1)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="featlib", description="featlib: learning feature matrices from feedback.",
                                     epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="hide a feature matrix, teach it four ways, recover it exactly")
    demo.add_argument("--p", type=int, default=10, help="dimension of the activations (default 10)")
    demo.add_argument("--rank", type=int, default=8, help="rank of the hidden matrix (default 8)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)

    rec = sub.add_parser("recover", help="recover Phi* = D^T D of a dictionary from a teacher's feedback")
    rec.add_argument("--dictionary", help="an SAE: SAELens folder, dictionary_learning ae.pt, .safetensors, or "
                     ".npy/.npz holding D (d x p, columns are atoms); default: a random dictionary")
    rec.add_argument("--latents", type=int, default=None, help="keep the first n latents of --dictionary")
    rec.add_argument("--normalize-atoms", action="store_true",
                     help="scale --dictionary's atoms to unit norm (as dictionary_learning's from_pretrained does)")
    rec.add_argument("--p", type=int, default=256, help="atoms of the random dictionary (paper: 4096)")
    rec.add_argument("--d", type=int, default=32, help="width of the random dictionary (paper: 512)")
    rec.add_argument("--teacher", default="sparse", choices=["eigen", "compact", "sparse", "gaussian", "sparse-sampled"])
    rec.add_argument("--method", default="auto", choices=["auto", "exact", "sdp", "gd", "svp"])
    rec.add_argument("--n", type=int, default=None, help="pairs, for the sampled teachers")
    rec.add_argument("--mu", type=float, default=0.9, help="zero probability (sparse-sampled)")
    rec.add_argument("--s", type=int, default=3, help="sparsity cap, or exact sparsity with --sampler exact")
    rec.add_argument("--sampler", default="bernoulli", choices=["bernoulli", "exact"],
                     help="sparse-sampled: Assumption 1 (bernoulli, with --mu) or exactly --s non-zeros")
    rec.add_argument("--epochs", type=int, default=2000, help="gradient-descent epochs")
    rec.add_argument("--rank", type=int, default=None, help="columns of U for gradient descent")
    rec.add_argument("--lr", type=float, default=None, help="gradient-descent learning rate")
    rec.add_argument("--batch-size", type=int, default=None, help="gradient-descent batch size (default: all)")
    rec.add_argument("--schedule", default="constant", choices=["constant", "cosine"],
                     help="gradient-descent learning rate: constant, or cosine decay to 0 at the last epoch")
    rec.add_argument("--device", default="auto", help="torch device for gradient descent")
    rec.add_argument("--progress", action="store_true", help="show a progress bar")
    rec.add_argument("--checkpoint", help="gradient descent: save the run here every --checkpoint-every epochs and "
                     "resume from it when it exists (same pairs and settings only)")
    rec.add_argument("--checkpoint-every", type=int, default=10, help="epochs between checkpoints (default 10)")
    rec.add_argument("--distributed", action="store_true",
                     help="gradient descent as one process of a torchrun job (DistributedDataParallel; gloo on "
                          "CPUs, NCCL on GPUs): torchrun --nproc_per_node=2 -m featlib -- recover --method gd "
                          "--distributed ...")
    rec.add_argument("--stream", action="store_true",
                     help="gradient descent on sparse-sampled pairs drawn batch by batch from the seed (never stored; "
                          "Phi* never formed; --output then writes the factor)")
    rec.add_argument("--output", help="write the learned matrix to this .npy file (the suffix .npy is added if missing)")
    rec.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    rec.add_argument("--seed", type=int, default=0)
    rec.set_defaults(func=_recover)

    bench = sub.add_parser("benchmark", help="print a benchmark table")
    bench.add_argument("which", choices=["exact-vs-sdp", "solvers", "scale", "sampling", "sae", "triplets",
                                                "sae-scale", "below-dof", "phase", "comparisons", "verify"])
    bench.add_argument("--eps", type=float, nargs="+", default=[0.0, 0.05, 0.2],
                       help="'triplets', 'comparisons': flip probabilities of the noisy agent (default 0 0.05 0.2)")
    bench.add_argument("--p", type=int, nargs="+", help="sizes (defaults: 10 20 30 / 10 20 40 80 / 4096)")
    bench.add_argument("--d", type=int, default=None,
                       help="dictionary width (default 512; 128 for 'below-dof')")
    bench.add_argument("--teacher", default=None, choices=["sparse", "eigen", "compact"],
                       help="teacher for 'scale' (default sparse) and 'sae-scale' (eigen or compact; default eigen)")
    bench.add_argument("--exact", action="store_true",
                       help="'phase': integer targets and exact teacher output, successes proved in rational "
                            "arithmetic (p <= 20; Gaussian and sparse-sampled pairs)")
    bench.add_argument("--ranks", type=int, nargs="+", default=None, help="'phase': ranks to run (default 1..p)")
    bench.add_argument("--search", choices=["grid", "bisect"], default=None,
                       help="'phase': every n (grid; the default up to p = 10) or each seed's threshold by "
                            "bisection (the default above)")
    bench.add_argument("--surrogate", type=int, default=0, metavar="SAMPLES",
                       help="'phase': also print the corrected prediction for pair ensembles (featlib.surrogate), "
                            "with SAMPLES Monte Carlo draws per target (default 0: skip)")
    bench.add_argument("--ensembles", nargs="+", default=None,
                       choices=["gaussian", "sparse-sampled", "sparse-s2", "sparse-mu", "isotropic", "rank-aware",
                                "rank-aware-gd"],
                       help="'phase': pair ensembles (default gaussian sparse-sampled isotropic rank-aware; "
                            "sparse-sampled has exactly 3 non-zeros, sparse-s2 exactly 2, sparse-mu each "
                            "coordinate with probability 2/p; rank-aware: svp told the rank, rank-aware-gd: gradient descent told it)")
    bench.add_argument("--repeat", type=int, default=None,
                       help="runs per measurement, the median is shown ('exact-vs-sdp': 3, 'scale': 1); "
                            "'phase': seeds per point (10); 'verify': integer targets per rank (3)")
    bench.add_argument("--epochs", type=int, nargs="+", default=None,
                       help="gradient-descent epochs ('solvers': 2000, 'sampling': 30; one per budget allowed)")
    bench.add_argument("--seconds", type=float, nargs="+", default=None,
                       help="'sampling': time-box each budget's run (one number or one per budget); the epochs "
                            "are cut to fit after a 3-epoch calibration")
    bench.add_argument("--pairs", nargs="+", default=["1e6", "2e6", "4e6", "1e7"],
                       help="budgets for 'sampling' (paper: 1e6 2e6 4e6 1e7)")
    bench.add_argument("--lr", type=float, default=None, help="gradient-descent learning rate for 'sampling'")
    bench.add_argument("--batch-size", type=int, default=None,
                       help="batch size for 'sampling' (default 65536; at p = 4096 a batch of 32768 stalled near PCC 0.75)")
    bench.add_argument("--device", default="auto", help="torch device for 'sampling'")
    bench.add_argument("--dictionary",
                       help="'scale' and 'sampling' on this SAE (as for 'recover') instead of a random dictionary")
    bench.add_argument("--latents", type=int, default=None, help="keep the first n latents of --dictionary")
    bench.add_argument("--normalize-atoms", action="store_true",
                     help="scale --dictionary's atoms to unit norm (as dictionary_learning's from_pretrained does)")
    bench.add_argument("--rank", type=int, default=None,
                       help="columns of U for 'sampling' (default: the dictionary's width or numerical rank)")
    bench.add_argument("--folder", help="'sae': where the activations and the trained SAE are cached")
    bench.add_argument("--max-chars", type=int, default=None, help="'sae': corpus characters (default: all)")
    bench.add_argument("--layer", type=int, default=3, help="'sae': MiniLM layer (default 3)")
    bench.add_argument("--d-sae", type=int, default=4096, help="'sae': SAE latents = p (default 4096, the paper's)")
    bench.add_argument("--k", type=int, default=32, help="'sae': TopK sparsity (default 32)")
    bench.add_argument("--sae-epochs", type=int, default=20, help="'sae': SAE training epochs (default 20)")
    bench.add_argument("--skip-gd", action="store_true")
    bench.add_argument("--profile", action="store_true", help="'solvers': print a cProfile summary of each exact solve")
    bench.add_argument("--ratios", type=float, nargs="+", default=[0.25, 0.51, 1.02, 2.0],
                       help="'below-dof': pairs over the rank-d degrees of freedom")
    bench.add_argument("--methods", nargs="+", default=["identity", "gd", "svp", "svp+gd"],
                       choices=["identity", "gd", "svp", "svp+gd"], help="'below-dof': the learners to compare")
    bench.add_argument("--sampled", action="store_true",
                       help="'sae-scale': one streamed sampled-feedback row instead (first --p, default 16384; "
                            "first --pairs; first --seconds, default 600)")
    bench.add_argument("--progress", action="store_true", help="show a progress bar")
    bench.add_argument("--seed", type=int, default=0)
    bench.set_defaults(func=_benchmark)

    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    try:
        _check_args(parser, args)
        return args.func(args)
    except KeyboardInterrupt:
        ck = getattr(args, "checkpoint", None)
        more = f"; run the same command to resume from the last checkpoint in {ck}" if ck else ""
        print(f"featlib: interrupted{more}", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for the user; --debug shows the traceback
        if args.debug:
            raise
        known = isinstance(exc, (FeatlibError, OSError))  # anything else is a featlib bug: say so
        what = "" if known else f" ({type(exc).__name__}; rerun with --debug for the traceback)"
        print(f"featlib: error: {exc}{what}", file=sys.stderr)
        return 2


def _positive(parser, name, value, *, allow_zero=False, integer=True):
    if value is None:
        return
    bad = (value < 0) if allow_zero else (value <= 0)
    if bad or (not integer and not np.isfinite(value)):
        parser.error(f"--{name.replace('_', '-')} must be {'>= 0' if allow_zero else 'positive'}"
                     f"{'' if integer else ' and finite'}; got {value}")


def _check_args(parser, args):
    """Argument checks argparse cannot express: a wrong value is a usage error (exit 2), never a
    silently replaced default."""
    for name in ("p", "d", "n", "s", "epochs", "rank", "batch_size", "latents", "repeat", "d_sae", "k",
                 "sae_epochs", "max_chars", "checkpoint_every"):
        v = getattr(args, name, None)
        for x in (v if isinstance(v, list) else [v]):
            _positive(parser, name, x)
    for name in ("lr",):
        _positive(parser, name, getattr(args, name, None), integer=False)
    for x in getattr(args, "seconds", None) or []:
        _positive(parser, "seconds", x, integer=False)
    for x in getattr(args, "eps", None) or []:
        if not 0 <= x < 0.5:
            parser.error(f"--eps must lie in [0, 0.5) (a flip probability); got {x}")
    mu = getattr(args, "mu", None)
    if mu is not None and not (0 <= mu < 1):
        parser.error(f"--mu must lie in [0, 1) (the probability that a coordinate is zero); got {mu}")
    if getattr(args, "latents", None) is not None and not getattr(args, "dictionary", None):
        parser.error("--latents selects latents of --dictionary; give --dictionary too")
    if getattr(args, "normalize_atoms", False) and not getattr(args, "dictionary", None):
        parser.error("--normalize-atoms applies to --dictionary; give --dictionary too")
    if args.command == "demo" and args.rank is not None and args.rank > args.p:
        parser.error(f"--rank {args.rank} cannot exceed --p {args.p}")
    if getattr(args, "pairs", None):
        try:
            args.pairs = [int(float(x)) for x in args.pairs]
        except (ValueError, OverflowError):  # 'abc', or inf / nan
            parser.error(f"--pairs takes numbers such as 1e6; got {' '.join(map(str, args.pairs))}")
        for x in args.pairs:
            _positive(parser, "pairs", x)
    out = getattr(args, "output", None)
    if out:
        import pathlib

        path = pathlib.Path(out)
        if not path.name or path.name in (".", "..") or path.is_dir():
            parser.error(f"--output must name a file (a .npy file to write); got the folder {out!r}")
        if path.suffix != ".npy":
            path = path.with_name(path.name + ".npy")  # what numpy.save writes: say it up front
        if not path.parent.exists():
            parser.error(f"--output: the folder {path.parent} does not exist")
        if path.exists() and not args.force:
            parser.error(f"--output: {path} exists; pass --force to overwrite it")
        args.output = str(path)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

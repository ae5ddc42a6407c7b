"""Garbage in, one clear error out: every public function and every CLI subcommand.

Only a ``FeatlibError`` subclass may escape a public function given nonsense (these subclass the
matching built-in too: ``ArgumentError`` is a ``ValueError``, ``ArgumentTypeError`` a ``TypeError``,
``ResourceError`` a ``MemoryError``), never an error from inside numpy, scipy or torch; the CLI
prints one line and exits with 2, never a traceback.  Requests too large for this machine are
refused before anything is allocated.  (Scale invariance of ``solve`` and "identified is never True
for a wrong matrix" are in tests/test_hostile.py.)
"""
import inspect
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import featlib as fl
from featlib import (bounds, certificates, constructions, datasets, experiments, factored, linalg, metrics, noise, rfm, sae,
                     streams, triplets)
from featlib.solvers import triplet as triplet_solver

MODULES = {"featlib": fl, "bounds": bounds, "datasets": datasets, "linalg": linalg, "experiments": experiments,
           "constructions": constructions, "certificates": certificates, "metrics": metrics, "sae": sae, "rfm": rfm,
           "noise": noise, "triplets": triplets, "solvers.triplet": triplet_solver, "factored": factored,
           "streams": streams, "active": fl.active, "oracle": fl.oracle}

GARBAGE = [None, "abc", "", float("nan"), float("inf"), -1, 0, 1, 2, 3, 0.5, -0.5, 1e300, True, [], [1, "a"], {},
           object(), np.zeros(0), np.zeros((0, 3)), np.ones(3), np.ones((2, 3)), np.eye(3), -np.eye(3),
           np.full((3, 3), np.nan), np.ones((2, 2, 2)), np.eye(3) * 1j, np.array(["a", "b"]),
           np.array([[1, 2], [3, 4]], dtype=object), np.arange(6).reshape(2, 3), np.eye(3)[:, :, None]]


@pytest.fixture(autouse=True, scope="module")
def _in_a_scratch_folder(tmp_path_factory):
    """Garbage such as "abc" is a valid path: whatever a call writes lands in a scratch folder."""
    import os

    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("fuzz"))
    yield
    os.chdir(old)


def _public_functions():
    out = []
    for mname, module in MODULES.items():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not callable(obj):
                continue
            if inspect.isclass(obj) and issubclass(obj, (BaseException, Warning)):
                continue
            if name == "minilm_activations":  # valid garbage ([]) loads a language model: fuzzed below, cheaply
                continue
            out.append(pytest.param(obj, id=f"{mname}.{name}"))
    return out


def _required(fn):
    target = fn.__init__ if inspect.isclass(fn) else fn
    params = inspect.signature(target).parameters.values()
    return [p for p in params if p.name != "self" and p.default is p.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _call(fn, *args, **kwargs):
    """Call; a FeatlibError is a pass, any other exception fails with what and where."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(*args, **kwargs)
        except fl.FeatlibError:
            return None


def test_every_public_function_is_fuzzed():
    names = {p.id for p in _public_functions()}
    assert {"featlib.solve", "featlib.teach", "featlib.verify", "featlib.Agent", "featlib.PairFeedback",
            "sae.load_dictionary", "rfm.RFM", "linalg.svec", "bounds.constructive_minimum"} <= names
    assert len(names) > 60


@pytest.mark.parametrize("fn", _public_functions())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_garbage_positional_arguments_raise_only_featlib_errors(fn, data):
    args = [data.draw(st.sampled_from(GARBAGE), label=p.name) for p in _required(fn)]
    _call(fn, *args)


# a valid call of each main entry point, then one option at a time replaced by garbage
PHI = datasets.random_feature_matrix(5, rank=3, seed=0)
FB = fl.teach(PHI, "eigen")
X = np.random.default_rng(0).standard_normal((12, 3))
BASE = [
    ("teach sparse", fl.teach, (PHI, "sparse"), {}, ["rank", "reference", "scale", "seed"]),
    ("teach gaussian", fl.teach, (PHI, "gaussian"), {"n": 20}, ["n", "seed", "reference"]),
    ("teach sparse-sampled", fl.teach, (PHI, "sparse-sampled"), {"n": 20, "mu": 0.5},
     ["n", "mu", "s", "sampler", "seed", "reference"]),
    ("teach compact", fl.teach, (PHI, "compact"), {}, ["sparse", "seed"]),
    ("teach eigen", fl.teach, (PHI, "eigen"), {}, ["rank", "scale"]),
    ("solve auto", fl.solve, (FB,), {}, ["method", "rtol", "psd_rtol", "zero_rtol", "face_hint", "combinations",
                                         "epochs"]),
    ("solve sdp", fl.solve, (FB, "sdp"), {}, ["seed", "rtol", "solver"]),
    ("solve gd", fl.solve, (FB, "gd"), {"epochs": 3},
     ["epochs", "lr", "rank", "seed", "device", "batch_size", "checkpoint", "schedule", "dtype", "reg",
      "normalization", "rtol", "clip", "tol", "patience", "progress", "init", "checkpoint_every"]),
    ("solve svp", fl.solve, (FB, "svp"), {"rank": 2, "iterations": 2},
     ["rank", "iterations", "holdout", "patience", "inner", "prior", "seed", "progress"]),
    ("SampledPairs", fl.SampledPairs, (PHI, 20), {"batch_size": 8},
     ["s", "mu", "sampler", "reference", "seed", "batch_size"]),
    ("solve stream gd", fl.solve, (fl.SampledPairs(PHI, 20, batch_size=8), "gd"), {"epochs": 2},
     ["epochs", "lr", "rank", "seed", "batch_size", "checkpoint", "schedule", "dtype", "init", "distributed"]),
    ("below_dof_curve", experiments.below_dof_curve, (PHI, [2.0]), {"rank": 2, "methods": ("identity", "svp")},
     ["rank", "methods", "s", "seed", "svp"]),
    ("Agent", fl.Agent, (PHI,), {}, ["psd_rtol", "tie_rtol", "null_rtol"]),
    ("PairFeedback", fl.PairFeedback, (FB.y, FB.z), {}, ["basis", "meta"]),
    ("verify", fl.verify, (FB, fl.solve(FB).certificate), {}, ["exact", "tol"]),
    ("equivalent", fl.equivalent, (PHI, PHI), {}, ["rtol"]),
    ("minimum_search", experiments.minimum_search, (PHI,), {}, ["pool", "n_random", "restarts", "seed"]),
    ("random_pairs", experiments.random_pairs, (PHI, 5), {}, ["seed"]),
    ("pattern_probability", experiments.pattern_probability, (5, 2, 0.5), {"trials": 20}, ["trials", "seed"]),
    ("success_curve", experiments.success_curve, (PHI, "gaussian", [5], [0]), {}, ["tol", "method"]),
    ("random_dictionary", datasets.random_dictionary, (3, 5), {}, ["seed", "unit_norm"]),
    ("monomial_task", datasets.monomial_task, ("z0z1", 20), {}, ["p", "sigma", "seed"]),
    ("RFM.fit", lambda **kw: rfm.RFM(**kw).fit(X, X[:, 0]), (), {},
     ["kernel", "bandwidth", "reg", "iters", "M", "agop_samples", "agop_scale", "seed"]),
    ("train_topk_sae", sae.train_topk_sae, (X,), {"d_sae": 4, "k": 2, "epochs": 1},
     ["d_sae", "k", "epochs", "batch_size", "lr", "holdout", "seed", "device", "progress"]),
    ("sample_triplets", fl.sample_triplets, (PHI, 10), {}, ["sparsity", "seed"]),
    ("solve triplets", fl.solve, (fl.sample_triplets(PHI, 30, seed=0),), {"method": "sdp"},
     ["method", "C", "solver", "rank", "epochs"]),
    ("Agent noise", fl.Agent, (PHI,), {}, ["noise", "seed"]),
    ("ComparisonOracle", fl.ComparisonOracle, (fl.Agent(PHI),), {}, ["budget"]),
    ("bisect_pair", fl.active.bisect_pair, (fl.ComparisonOracle(fl.Agent(PHI)), np.ones(5), np.arange(1.0, 6.0)),
     {"bits": 4}, ["bits", "votes", "max_exponent"]),
    ("active learn", fl.active.learn, (fl.ComparisonOracle(fl.Agent(PHI)), 4), {"bits": 3},
     ["bits", "votes", "directions", "s", "seed", "method"]),
    ("load_dictionary", sae.load_dictionary, ("no-such-file.npy",), {},
     ["latents", "atoms", "layout", "max_bytes", "normalize_atoms"]),
]
KW_GARBAGE = [g for g in GARBAGE if not (isinstance(g, np.ndarray) and g.ndim > 1 and g.size > 6)] + [10**12]
#: options that count work (iterations, trials): a huge value is a long run, not an error
COUNTS = {"epochs", "iters", "trials", "restarts", "iterations", "inner", "patience"}


@pytest.mark.parametrize("label, fn, args, kwargs, options", BASE, ids=[b[0] for b in BASE])
def test_garbage_options_raise_only_featlib_errors(label, fn, args, kwargs, options):
    if label in ("solve gd", "train_topk_sae", "RFM.fit", "solve stream gd"):
        pytest.importorskip("torch")
    assert _call(fn, *args, **kwargs) is not None or label == "load_dictionary"  # the base call is valid
    for option in options:
        for value in KW_GARBAGE:
            if option in COUNTS and isinstance(value, int) and value > 10**6:
                continue
            _call(fn, *args, **{**kwargs, option: value})


def test_unknown_solver_options_are_named():
    with pytest.raises(fl.ArgumentTypeError, match=r"method='exact' takes no option epochs; its options are: .*rtol"):
        fl.solve(FB, "exact", epochs=3)
    with pytest.raises(TypeError, match="takes no options"):  # still a TypeError for callers that catch that
        fl.solve(FB, "sdp", lr=1, epochs=2)


def test_requests_larger_than_memory_are_refused_before_allocating():
    with pytest.raises(fl.ResourceError, match="GiB"):
        fl.teach(PHI, "gaussian", n=10**12)
    with pytest.raises(MemoryError):  # ResourceError is a MemoryError too
        datasets.random_dictionary(10**6, 10**7)
    with pytest.raises(fl.ResourceError, match="dense pairs"):
        experiments.random_pairs(PHI, 10**12)
    pytest.importorskip("torch")
    with pytest.raises(fl.ResourceError, match="factor U"):
        fl.solve(FB, "gd", rank=10**12, epochs=1)


def test_minilm_activations_checks_its_arguments_before_loading_the_model():
    for bad, exc in (("one string", fl.ArgumentTypeError), (3, fl.ArgumentTypeError), ([1, 2], fl.ArgumentTypeError)):
        with pytest.raises(exc):
            sae.minilm_activations(bad)
    with pytest.raises(fl.ArgumentError):
        sae.minilm_activations(["text"], batch_size=0)


# --------------------------------------------------------------------------------------------
# the CLI: random flags with garbage values, for every subcommand

CLI_VALUES = ["-1", "0", "abc", "nan", "inf", "1e300", "", "2", "3", "0.5", "-0.5", "no/such/dir/x.npy", "."]


@pytest.fixture
def fake_benchmarks(monkeypatch):
    """The benchmark bodies are replaced by stand-ins that check nothing: what is fuzzed is the CLI's own
    argument handling and error reporting, in seconds (each benchmark has its own tests)."""
    from featlib import benchmarks

    for name in ("exact_vs_sdp", "solvers_compare", "sampling_at_scale", "sae_at_scale", "exact_at_scale",
                 "triplets_compare", "sae_scale", "phase_transitions", "comparisons"):
        monkeypatch.setattr(benchmarks, name, lambda *a, **k: None)


SUBCOMMANDS = {
    "demo": ["--p", "--rank", "--seed"],
    "recover": ["--dictionary", "--latents", "--normalize-atoms", "--p", "--d", "--teacher", "--method", "--n", "--mu",
                "--s", "--sampler", "--epochs", "--rank", "--lr", "--batch-size", "--schedule", "--device",
                "--checkpoint", "--checkpoint-every", "--output", "--force", "--seed"],
    "benchmark": ["--p", "--d", "--teacher", "--repeat", "--eps", "--epochs", "--seconds", "--pairs", "--lr", "--batch-size",
                  "--device", "--dictionary", "--latents", "--rank", "--folder", "--max-chars", "--layer", "--d-sae",
                  "--k", "--sae-epochs", "--seed"],
}
SWITCHES = {"--normalize-atoms", "--force", "--skip-gd", "--progress"}


@pytest.mark.parametrize("command", list(SUBCOMMANDS))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_cli_garbage_gives_one_line_and_exit_2_never_a_traceback(command, data, fake_benchmarks, capsys):
    from featlib.cli import main

    argv = [command]
    if command == "benchmark":
        argv.append(data.draw(st.sampled_from(["exact-vs-sdp", "solvers", "scale", "sampling", "sae", "triplets",
                                               "sae-scale", "phase", "comparisons"])))
    if command == "recover":  # small sizes, so that a valid draw runs in a moment
        argv += ["--p", "6", "--d", "3", "--epochs", "5"]
    for flag in data.draw(st.lists(st.sampled_from(SUBCOMMANDS[command]), min_size=1, max_size=3)):
        argv += [flag] if flag in SWITCHES else [flag, data.draw(st.sampled_from(CLI_VALUES))]
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err + out, argv
    assert "rerun with --debug" not in err, (argv, err)  # an error featlib did not mean to raise
    if code == 2:
        assert err.strip(), argv

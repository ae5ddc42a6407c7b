"""featlib: learning sparse superposed features (feature matrices) from feedback.

A companion library to Kumar, "The Complexity of Learning Sparse Superposed Features with
Feedback" (ICML 2025, arXiv 2502.05407).  A hidden feature matrix ``Phi* = D^T D`` sits behind an
:class:`Agent` that answers triplet comparisons; Lemma 2 turns answers into equality pairs
(:class:`PairFeedback`); :func:`teach` builds the paper's four feedback constructions;
:func:`solve` recovers Phi* up to a positive scale, with a certificate that :func:`verify`
re-checks (exactly in rational arithmetic, or with proved floating-point error bounds); :mod:`featlib.bounds` holds the theorems'
counts and the exact feedback complexity proved here; :func:`pcc`, :func:`relative_error` and :func:`equivalent` compare matrices up to scale.

The modules form layers, bottom to top: ``_checks``, ``_io``, ``_rigorous``, ``_exact``; ``factors``,
``linalg``, ``noise``, ``bounds``, ``surrogate``, ``datasets``, ``constructions``; ``feedback``; ``certificates``,
``triplets``, ``metrics``; ``teachers``, ``plotting``; ``streams``; ``solvers``; ``experiments``,
``rfm``, ``sae``, ``factored``; ``benchmarks``, ``exercises``, ``grading``; ``cli``.  A module
imports only from layers below it (an import-linter contract in ``pyproject.toml``).

Examples
--------
Hide a rank-2 feature matrix, teach it with the fewest pairs that can identify it, recover it, and
re-check the solver's certificate from the pairs alone:

>>> import featlib as fl
>>> phi = fl.datasets.random_feature_matrix(6, rank=2, seed=0)
>>> fb = fl.teach(phi, "compact")
>>> len(fb) == fl.bounds.constructive_minimum(6, 2)
True
>>> sol = fl.solve(fb)
>>> sol.identified, round(fl.pcc(sol.phi, phi), 6)
(True, 1.0)
>>> check = fl.verify(fb, sol.certificate, margin=1e-3)  # float pairs: a proved distance bound
>>> check.valid, check.margin < 1e-3
(True, True)

Each answer of the agent becomes an equality pair (Lemma 2):

>>> import numpy as np
>>> agent = fl.Agent(phi)
>>> x, y, z = np.eye(6)[:3]
>>> u, w = agent.equalize(x, y, z)
>>> bool(np.isclose(u @ phi @ u, w @ phi @ w))
True
"""

from . import (active, bounds, certificates, constructions, datasets, experiments, factored, factors, linalg, near,
               noise, oracle, streams, surrogate, triplets)
from ._checks import (
    ArgumentError,
    ArgumentTypeError,
    ConvergenceError,
    FeatlibError,
    FeedbackError,
    IdentifiabilityWarning,
    InconsistentFeedbackError,
    IndexOutOfRangeError,
    MissingDependencyError,
    MissingFileError,
    ResourceError,
    NonFiniteError,
    NotPSDError,
    NotSymmetricError,
    ShapeError,
    UnknownMethodError,
)
from .certificates import Certificate, CertificateError, Verification, verify
from .near import NearSolutions, verify_near_solutions
from .feedback import Agent, PairFeedback
from .spanfeedback import FrameFeedback, SpanFeedback
from .metrics import equivalent, pcc, relative_error
from .solvers import METHODS, Solution, solve
from .teachers import TEACHERS, teach
from .factors import Factored
from .triplets import TripletFeedback, sample_triplets
from .streams import PairStream, SampledPairs, ShardedPairs
from .oracle import BudgetExceededError, ComparisonOracle

__version__ = "0.1.0"


def __getattr__(name):  # plotting, exercises (matplotlib) and benchmarks load lazily, on first use
    if name in ("plotting", "exercises", "benchmarks"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'featlib' has no attribute {name!r}")

__all__ = [
    "Agent",
    "PairFeedback",
    "SpanFeedback",
    "FrameFeedback",
    "TripletFeedback",
    "sample_triplets",
    "Factored",
    "factored",
    "PairStream",
    "SampledPairs",
    "ShardedPairs",
    "streams",
    "ComparisonOracle",
    "BudgetExceededError",
    "oracle",
    "active",
    "noise",
    "triplets",
    "teach",
    "TEACHERS",
    "solve",
    "Solution",
    "METHODS",
    "bounds",
    "surrogate",
    "datasets",
    "linalg",
    "experiments",
    "pcc",
    "relative_error",
    "equivalent",
    "verify",
    "Certificate",
    "Verification",
    "certificates",
    "NearSolutions",
    "verify_near_solutions",
    "near",
    "constructions",
    "FeatlibError",
    "ArgumentError",
    "ArgumentTypeError",
    "IndexOutOfRangeError",
    "CertificateError",
    "ShapeError",
    "NonFiniteError",
    "NotSymmetricError",
    "NotPSDError",
    "FeedbackError",
    "InconsistentFeedbackError",
    "UnknownMethodError",
    "MissingDependencyError",
    "MissingFileError",
    "ResourceError",
    "ConvergenceError",
    "IdentifiabilityWarning",
]

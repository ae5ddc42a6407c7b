"""One BLAS thread pool at a time: numpy's bundled OpenBLAS limited to one thread while the exact
solver runs.

The pip wheels of numpy and scipy each bundle their own OpenBLAS, each with a pool of as many threads
as cores.  The exact solver alternates between them (scipy's QR and triangular LAPACK routines, numpy's
products and small eigendecompositions); after a call, a pool's threads spin for a while, so the other
library's next call competes with them for the cores.  Measured on 2 cores: a 40 x 40 ``numpy.linalg.eigh``
right after a scipy QR took a median 4.2 ms instead of 0.21 ms, and the 820 x 819 QR itself 48-52 ms
instead of 25 ms; the exact solve of 819 Gaussian pairs at p = 40 took a median 122 ms, and 50 ms with
numpy's pool at one thread (the 2,460 sampled 3-sparse pairs at p = 40: 2.25 s and 1.70 s).
Limiting scipy's pool as well was slower at p = 80 (its large QRs use both cores).

Where numpy and scipy share one BLAS (conda environments) nothing is changed.  The limit is a
process-wide setting for the duration of the call (threadpoolctl), restored afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import os

import numpy  # noqa: F401  (loaded before the inspection below)
import scipy.linalg  # noqa: F401
from threadpoolctl import ThreadpoolController

__all__ = ["numpy_blas_single_thread", "IDLE_THREADS_SLEEP", "idle_threads_sleep_env"]


@functools.lru_cache(maxsize=1)
def _numpy_own_blas():
    """A threadpoolctl controller for the BLAS library that numpy's wheel bundles, when scipy (or anything
    already loaded) uses another one; else None."""
    controller = ThreadpoolController()
    blas = [lib for lib in controller.lib_controllers if lib.user_api == "blas"]
    own = [lib.filepath for lib in blas if "numpy.libs" in lib.filepath or "numpy/.libs" in lib.filepath]
    if not own or len(blas) < 2:
        return None
    return controller.select(filepath=own)


def numpy_blas_single_thread():
    """A context manager: numpy's own BLAS pool at one thread inside it (see the module docstring); a no-op
    where numpy does not bundle a BLAS of its own."""
    numpy_blas = _numpy_own_blas()
    if numpy_blas is None:
        return contextlib.nullcontext()
    return numpy_blas.limit(limits=1)


#: Environment settings under which idle BLAS and OpenMP threads sleep instead of spinning: OpenBLAS's
#: idle threads wait 2^4 cycles (its default is 2^28, about 0.1 s) and GNU OpenMP's (PyTorch's intra-op
#: pool) wait passively.  Both libraries read them once, when they load, so they must be in the
#: environment of the process *before* numpy, scipy or torch is imported: the book build and the test
#: run pass them to the chapter kernels they start (``book/build.py``, ``tests/conftest.py``).  Measured
#: on the 2-core machine, with two busy processes beside it (a load of 2): the RFM chapter took 146 s
#: with the defaults, 32 s with these and 26 s with one thread per pool; without the load, 22.7, 22.0
#: and 24.3 s (so no loss where the cores are free, unlike one thread).  A user on a shared machine can
#: set the same two variables.
IDLE_THREADS_SLEEP = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}


def idle_threads_sleep_env(env=None) -> dict:
    """``env`` (default: a copy of ``os.environ``) with :data:`IDLE_THREADS_SLEEP` added where the
    variables are not set already (a user's own choice is kept)."""
    out = dict(os.environ if env is None else env)
    for key, value in IDLE_THREADS_SLEEP.items():
        out.setdefault(key, value)
    return out

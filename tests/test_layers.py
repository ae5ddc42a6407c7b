"""The library's layers, enforced (import-linter): the contract in pyproject.toml holds for the
package as it is, and it fails when an upward import is added (function-level ones included)."""
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports") or str(pathlib.Path(sys.executable).parent / "lint-imports")

pytestmark = pytest.mark.skipif(not pathlib.Path(LINT).exists(), reason="import-linter not installed")


def _lint(cwd, package_parent):
    import os

    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([LINT, "--no-cache"], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def test_the_layer_contract_holds():
    out = _lint(ROOT, ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "broken" in out.stdout and "0 broken" in out.stdout


@pytest.mark.parametrize("where,line", [
    ("feedback.py", "from . import solvers\n"),                                   # module level
    ("linalg.py", "\n\ndef _sneaky():\n    from .teachers import teach\n    return teach\n"),  # function level
    ("solvers/gd.py", "from . import svp\n"),                                     # two back ends
])
def test_an_upward_import_breaks_the_contract(tmp_path, where, line):
    shutil.copytree(ROOT / "featlib", tmp_path / "featlib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "featlib" / where
    target.write_text(target.read_text() + line)
    out = _lint(tmp_path, tmp_path)
    assert out.returncode != 0 and "BROKEN" in out.stdout.upper(), out.stdout[-2000:]


def test_no_function_level_import_of_a_featlib_module_hides_a_circle():
    """Function-level imports only for heavy optional packages (torch, cvxpy, ...), never of featlib's
    own modules: every one of those is at the top of its module, where the contract and a reader
    see it."""
    import re

    offenders = []
    for f in (ROOT / "featlib").rglob("*.py"):
        for k, ln in enumerate(f.read_text().split("\n"), 1):
            if re.match(r"^\s{4,}(from \.+[\w.]* import|import featlib)", ln):
                offenders.append(f"{f.relative_to(ROOT)}:{k}: {ln.strip()}")
    assert not offenders, "\n".join(offenders)


def test_moved_names_stay_importable_where_the_reference_documents_them():
    import featlib
    from featlib import factored, factors, metrics
    from featlib.factored import Factored, FactoredSolution, pcc, recover_eigen, relative_error

    assert featlib.Factored is Factored is factors.Factored
    assert pcc is factors.pcc and relative_error is factors.relative_error
    assert callable(recover_eigen) and issubclass(FactoredSolution, featlib.Solution)
    assert metrics.pcc is featlib.pcc and factored.__name__ == "featlib.factored"

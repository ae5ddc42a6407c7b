"""environment.yml and pyproject.toml declare the same packages with the same version ranges."""
import pathlib
import re

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

yaml = pytest.importorskip("yaml")

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _split(req: str):
    req = req.split(";")[0].strip()
    m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    name = m.group(1).lower().replace("_", "-")
    spec = ",".join(sorted(s.strip() for s in m.group(2).split(",") if s.strip()))
    return name, spec


def _pyproject():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    proj = data["project"]
    reqs = list(proj["dependencies"])
    for extra, items in proj["optional-dependencies"].items():
        for r in items:
            if r.startswith("featlib["):
                continue
            if "python_version < '3.11'" in r:  # a backport, not part of the conda environment
                continue
            reqs.append(r)
    return dict(_split(r) for r in reqs)


def _environment():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for r in dep.get("pip", []):
                if not r.startswith("-"):
                    out.update([_split(r)])
        else:
            name, spec = _split(dep)
            if name not in ("python", "pip"):
                out[name] = spec
    return out


def test_environment_matches_pyproject():
    py, env = _pyproject(), _environment()
    assert sorted(set(py) - set(env)) == [], "in pyproject.toml but not in environment.yml"
    assert sorted(set(env) - set(py)) == [], "in environment.yml but not in pyproject.toml"
    for name in py:
        assert py[name] == env[name], f"{name}: pyproject {py[name]!r} vs environment.yml {env[name]!r}"


def test_jupyter_book_stays_on_1x():
    assert _pyproject()["jupyter-book"] == "<2,>=1.0.4"


def test_torch_range_admits_the_ci_wheel():
    spec = _pyproject()["torch"]
    from packaging.specifiers import SpecifierSet

    assert "2.13.0" in SpecifierSet(spec)


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_readme_has_exactly_two_commands_and_ci_runs_both():
    cmds = _readme_commands()
    assert len(cmds) == 2, cmds
    build_cmd, test_cmd = (c.strip() for c in cmds)
    assert "book/build.py" in build_cmd and "pytest" in test_cmd and "torch==2.13.0" in test_cmd
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert build_cmd in ci, ".ci/run must build the book with the README's command"
    assert test_cmd in ci, ".ci/run must run the README's test command verbatim"
    assert ci.index(build_cmd) < ci.index(test_cmd), "build the site before the tests that check it"


def test_readme_api_tour_runs():
    text = (ROOT / "README.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)\n```", text, flags=re.S)
    exec(compile(code, "README.md", "exec"), {})

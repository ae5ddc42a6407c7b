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


# --------------------------------------------------------------------------------------------
# the chapters: MyST text notebooks (the sources) and their generated .ipynb twins


def _notebooks_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("book_notebooks", ROOT / "book" / "notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_chapter_ipynb_is_generated_from_its_text_source():
    mod = _notebooks_module()
    sources = mod.sources()
    assert len(sources) == 11 and all(p.with_suffix(".ipynb").exists() for p in sources)
    assert mod.main(["--check"]) == 0, "run: python book/notebooks.py"


def test_cell_tags_and_figure_metadata_survive_the_round_trip():
    import json

    for md in _notebooks_module().sources():
        text = md.read_text()
        nb = json.loads(md.with_suffix(".ipynb").read_text())
        tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
        assert len(tagged) == 1 and ":tags: [parameters]" in text, md.name  # one parameters cell, as papermill needs
        figures = [c for c in nb["cells"] if "figure" in c["metadata"].get("mystnb", {})]
        assert len(figures) == text.count("  figure:"), md.name
        for c in figures:
            assert c["metadata"]["mystnb"]["figure"]["caption"] and c["metadata"]["mystnb"]["image"]["alt"]


def test_a_stale_twin_is_detected(tmp_path, monkeypatch):
    mod = _notebooks_module()
    src = mod.sources()[0]
    (tmp_path / src.name).write_text(src.read_text())
    (tmp_path / src.with_suffix(".ipynb").name).write_text(src.with_suffix(".ipynb").read_text())
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    monkeypatch.setattr(mod, "NOTEBOOKS", tmp_path)
    monkeypatch.setattr(mod, "ROOT", tmp_path)
    assert mod.main(["--check"]) == 0
    md = tmp_path / src.name
    md.write_text(md.read_text().replace("## The statement", "## The statement, edited", 1))
    assert mod.main(["--check"]) == 1
    assert mod.main([]) == 0 and mod.main(["--check"]) == 0
    assert "The statement, edited" in (tmp_path / src.with_suffix(".ipynb").name).read_text()


def test_each_ipynb_installs_featlib_first_when_it_is_missing():
    """Binder and Colab open the .ipynb twins: their first cell installs featlib from the repository
    URL of _config.yml (hidden on the site, a no-op where featlib is installed)."""
    import json

    import yaml

    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    for md in _notebooks_module().sources():
        first = json.loads(md.with_suffix(".ipynb").read_text())["cells"][0]
        src = "".join(first["source"])
        assert first["metadata"]["tags"] == ["remove-cell"] and f"git+{url}" in src, md.name
        assert src.index("import featlib") < src.index("%pip install")
        assert "install-featlib" not in md.read_text()  # the book executes the .md, which does not install


def test_readme_names_the_placeholder_repository_url():
    import yaml

    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    readme = (ROOT / "README.md").read_text()
    assert url in readme and "placeholder" in readme[readme.index(url) - 300: readme.index(url) + 300]

"""The chapters' sources are MyST Markdown text notebooks (jupytext's md:myst format):
``notebooks/NN_name.md``.  Jupyter Book executes them directly.  The ``.ipynb`` twins, which nbval,
papermill, Binder and Colab need, are generated from them by this script and committed;
tests/test_packaging.py fails when a twin is out of date.

    python book/notebooks.py            # regenerate every notebooks/*.ipynb from its .md
    python book/notebooks.py --check    # exit 1, naming them, if any .ipynb differs from its .md

Edit the ``.md`` file (any text editor, or Jupyter with jupytext installed, which opens it as a
notebook), then run the first command.

Each ``.ipynb`` starts with a hidden cell (tag ``remove-cell``) that installs featlib when it is
missing, as on Binder or Colab, from the repository URL in ``_config.yml`` (the one place it is
written); where featlib is installed the cell does nothing.  The book executes the ``.md``, which
does not have it.  Cell tags (``parameters``, ``remove-cell``, ...) and cell
metadata (figure captions for myst-nb) are kept; cell ids are numbered ``cell-00``, ``cell-01``, ...
so that a regenerated notebook is byte-for-byte the same.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def sources() -> list[pathlib.Path]:
    """The chapters' text sources, in order."""
    return sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.md"))


def repository_url() -> str:
    """The repository URL of ``_config.yml`` (``repository: url:``)."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"]


def install_cell() -> dict:
    url = repository_url()
    source = (
        "# Binder / Colab: install featlib when it is missing (from the repository named in the book's _config.yml)\n"
        "try:\n"
        "    import featlib  # noqa: F401\n"
        "except ImportError:\n"
        f"    %pip install --quiet \"featlib[all] @ git+{url}\"\n"
    )
    return {"cell_type": "code", "metadata": {"tags": ["remove-cell"]}, "source": source, "id": "install-featlib",
            "execution_count": None, "outputs": []}


def to_ipynb(md: pathlib.Path) -> str:
    """The .ipynb text generated from a MyST text notebook (no outputs, numbered cell ids), with the
    install cell first."""
    import jupytext

    nb = jupytext.read(md, fmt="md:myst")
    nb.metadata.pop("jupytext", None)
    nb.metadata["language_info"] = {"name": "python"}
    cells = []
    for k, cell in enumerate(nb.cells):
        out = {"cell_type": cell.cell_type, "metadata": dict(cell.metadata), "source": cell.source, "id": f"cell-{k:02d}"}
        if cell.cell_type == "code":
            out.update(execution_count=None, outputs=[])
        cells.append(out)
    doc = {"cells": [install_cell()] + cells, "metadata": dict(nb.metadata), "nbformat": 4, "nbformat_minor": 5}
    # one line per source line, as Jupyter writes them
    for c in doc["cells"]:
        c["source"] = c["source"].splitlines(keepends=True)
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check that every .ipynb matches its .md")
    args = ap.parse_args(argv)
    stale = []
    for md in sources():
        ipynb = md.with_suffix(".ipynb")
        text = to_ipynb(md)
        if ipynb.exists() and ipynb.read_text() == text:
            continue
        stale.append(ipynb)
        if not args.check:
            tmp = ipynb.with_suffix(".ipynb.tmp")
            tmp.write_text(text)
            tmp.replace(ipynb)
            print(f"wrote {ipynb.relative_to(ROOT)}")
    if args.check and stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        print(f"out of date (run python book/notebooks.py): {names}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

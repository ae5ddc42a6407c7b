"""Build the book: fetch MathJax from the npm registry (never committed), then run Jupyter Book 1.

    python book/build.py            # build into _build/html (warnings are errors)
    python book/build.py --no-strict
    python book/build.py --pdf      # the book as one PDF, _build/latex/book.pdf (needs TeX Live: xelatex, latexmk)

MathJax is served from the site itself, so the pages typeset math with no network.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
MATHJAX_VERSION = "3.2.2"
STATIC = ROOT / "book" / "_static_mathjax" / "mathjax"


def fetch_mathjax() -> pathlib.Path:
    """npm install mathjax@3 into .cache/ and copy its es5 bundle next to the book's static files."""
    if (STATIC / "tex-chtml.js").exists():
        return STATIC
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("book/build.py needs npm (Node.js) to fetch MathJax from the npm registry: install Node.js.")
    cache = ROOT / ".cache" / "mathjax-npm"
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--silent",
                    f"mathjax@{MATHJAX_VERSION}"], check=True)
    src = cache / "node_modules" / "mathjax" / "es5"
    if STATIC.exists():
        shutil.rmtree(STATIC)
    # the speech-rule engine (sre) is only for the accessibility explorer: leave it out (~10 MB)
    shutil.copytree(src, STATIC, ignore=shutil.ignore_patterns("sre"))
    return STATIC


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-strict", action="store_true", help="do not turn warnings into errors")
    ap.add_argument("--all", action="store_true", help="rebuild every page")
    ap.add_argument("--pdf", action="store_true", help="build the PDF (Jupyter Book's pdflatex builder, xelatex)")
    args = ap.parse_args(argv)
    fetch_mathjax()
    jb = pathlib.Path(sys.executable).parent / "jupyter-book"
    jb = str(jb) if jb.exists() else shutil.which("jupyter-book")
    if jb is None:
        sys.exit("jupyter-book is not installed: pip install -e '.[book]'")
    cmd = [jb, "build", str(ROOT)]
    if args.pdf:
        for tool in ("xelatex", "latexmk"):
            if shutil.which(tool) is None:
                sys.exit(f"book/build.py --pdf needs {tool} (TeX Live): apt-get install texlive-xetex "
                         f"texlive-latex-extra texlive-fonts-recommended latexmk fonts-freefont-otf")
        cmd += ["--builder", "pdflatex"]
    if not args.no_strict:
        cmd += ["-W", "--keep-going"]
    if args.all:
        cmd += ["--all"]
    print("+", " ".join(cmd), flush=True)
    # the chapter kernels inherit this environment: idle BLAS/OpenMP threads sleep instead of spinning, which
    # kept chapters from slowing down about 6x on a busy machine (featlib._blas.IDLE_THREADS_SLEEP)
    from featlib._blas import idle_threads_sleep_env

    return subprocess.run(cmd, cwd=ROOT, env=idle_threads_sleep_env()).returncode


if __name__ == "__main__":
    sys.exit(main())

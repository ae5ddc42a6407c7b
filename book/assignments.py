"""Student editions of the chapters' exercises, and an autograder, with Otter-Grader.

    python book/assignments.py build                      # every chapter -> _build/assignments/
    python book/assignments.py grade 01_lemma2_triplets_to_pairs SUBMISSIONS/ [--csv scores.csv]

``build`` reads each chapter's text source (``notebooks/NN_name.md``), takes every exercise whose
solution ends with a ``featlib.exercises`` checker, and writes an Otter Assign master notebook
(prompt, reference solution, and a test that calls the checker through
:func:`featlib.exercises.run_check`).  ``otter assign`` turns it into

* ``_build/assignments/NN_name/student/NN_name.ipynb``: the exercises with the solutions replaced
  by ``...`` (students run ``grader.check("label")`` in it for feedback);
* ``_build/assignments/NN_name/autograder/``: the solutions notebook and Otter's autograder zip.

``grade`` grades every ``.ipynb`` of a folder and writes one CSV row per submission and question:
score, possible points, and the feedback, which is the reason the featlib checker gives
("equalize: ... not an equality"). Each submission runs in its own sandboxed process
(``featlib.grading``: bubblewrap when available, resource limits and timeouts always) and the checks
run in the grader's process, calling the student's functions through the sandbox, so a submission
cannot switch the checks off, read the solutions, or touch another submission. What is and is not
isolated is listed in ``featlib/grading.py`` and the README. Exercises without a checker
(discussion questions) are not autograded.

Otter-Grader builds the student editions (``otter assign``: solutions removed, ``grader.check`` cells
for students to check themselves) and the autograder zip for Otter's own Docker / Gradescope
grading (``otter grade``, documented by Otter); ``grade`` here does not use Otter at all.
Why Otter and not nbgrader: Otter's assign format needs no database or Jupyter server extension and
its student notebooks check themselves.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
OUT = ROOT / "_build" / "assignments"

SETUP = "import numpy as np\nimport featlib as fl"


class AssignmentError(Exception):
    pass


def _plain(markdown: str) -> str:
    """The book's MyST roles as plain Markdown for Jupyter: {py:obj}`text <target>` -> `text`,
    {term}`text <term>` and {ref}`label` -> text."""
    markdown = re.sub(r"\{py:\w+\}`([^`<]+?)(?:\s*<[^`]*>)?`", r"`\1`", markdown)
    return re.sub(r"\{(?:term|ref)\}`([^`<]+?)(?:\s*<[^`]*>)?`", r"\1", markdown)


def statements(md: pathlib.Path) -> str:
    """The chapter's stated results (its ``{prf:...}`` boxes: lemmas, theorems, propositions,
    definitions, assumptions) as plain Markdown, for the student edition to state what it uses."""
    out = []
    for m in re.finditer(r"```\{prf:(lemma|theorem|proposition|definition|assumption)\}[ \t]*([^\n]*)\n(.*?)\n```",
                         md.read_text(), re.S):
        kind, title, body = m.group(1), m.group(2).strip(), m.group(3)
        body = "\n".join(ln for ln in body.split("\n") if not re.match(r"^:(label|nonumber|class):", ln)).strip()
        out.append(f"**{kind.capitalize()}{f' ({_plain(title)})' if title else ''}.** {_plain(body)}")
    return "\n\n".join(out)


def exercises(md: pathlib.Path) -> list[dict]:
    """The chapter's autogradable exercises: label, prompt (Markdown), solution code, checker name."""
    text = md.read_text()
    found = []
    for ex in re.finditer(r"```\{exercise-start\}\n:label: (\S+)\n```\n(.*?)```\{exercise-end\}", text, re.S):
        label, prompt = ex.group(1), _plain(ex.group(2).strip())
        sol = re.search(r"```\{solution-start\} " + re.escape(label) + r"\n(.*?)```\{solution-end\}", text, re.S)
        if sol is None:
            continue
        code = "\n".join(re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", sol.group(1), re.S))
        check = re.search(r"^fl\.exercises\.(check_\w+)\((\w+)\)\s*$", code, re.M)
        if check is None:
            continue  # a discussion question: no checker, not autograded
        solution = code[:check.start()].rstrip() + "\n"
        found.append({"label": label, "prompt": prompt, "solution": solution, "checker": check.group(1),
                      "function": check.group(2)})
    return found


def discussions(md: pathlib.Path) -> list[dict]:
    """Questions a person grades: every exercise without a checker, and the written question ("Why
    ...?") that follows a checked one.  Each has a label, the prompt and the book's reference answer
    (its solution's prose and code, as Markdown)."""
    text = md.read_text()
    checked = {ex["label"] for ex in exercises(md)}
    found = []
    for ex in re.finditer(r"```\{exercise-start\}\n:label: (\S+)\n```\n(.*?)```\{exercise-end\}", text, re.S):
        label, prompt = ex.group(1), _plain(ex.group(2).strip())
        sol = re.search(r"```\{solution-start\} " + re.escape(label) + r"\n(.*?)```\{solution-end\}", text, re.S)
        answer = ""
        if sol is not None:
            body = re.sub(r"^:class:.*\n```\n", "", sol.group(1).lstrip(), flags=re.M)
            body = re.sub(r"```\{code-cell\}[^\n]*\n", "```python\n", body)
            answer = _plain(body.strip())
        if label not in checked:
            found.append({"label": label, "prompt": prompt, "answer": answer})
            continue
        asks = [q.strip() for q in re.findall(r"([A-Z][^.?!]*\?)", prompt)]
        if asks:
            found.append({"label": f"{label}-why", "prompt": " ".join(asks), "answer": answer})
    return found


def _solution_cell(solution: str, function: str) -> str:
    """The solution with Otter's markers around the body of ``def function(...)``: the student
    edition keeps the signature and replaces the body by ``...``."""
    lines = solution.rstrip("\n").split("\n")
    start = next((k for k, line in enumerate(lines) if line.startswith(f"def {function}(")), None)
    if start is None:
        raise AssignmentError(f"the solution does not define {function}()")
    head = start
    while not lines[head].rstrip().endswith(":"):  # a signature over several lines
        head += 1
    body_end = len(lines)
    for k in range(head + 1, len(lines)):
        if lines[k] and not lines[k].startswith((" ", "\t")):
            body_end = k
            break
    out = lines[:head + 1] + ["    # BEGIN SOLUTION"] + lines[head + 1:body_end] + ["    # END SOLUTION"] + lines[body_end:]
    return "\n".join(out).rstrip() + "\n"


def featlib_wheel(dest: pathlib.Path) -> pathlib.Path:
    """A wheel of this featlib (``pip wheel --no-deps``), for the autograder zip to install: featlib
    is not on a package index, and the zip's tests import it."""
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dest), str(ROOT)],
                         capture_output=True, text=True)
    wheels = sorted(dest.glob("featlib-*.whl"))
    if run.returncode != 0 or not wheels:
        raise AssignmentError(f"could not build a featlib wheel for the autograder:\n{run.stderr[-2000:]}")
    return wheels[-1]


def master_notebook(md: pathlib.Path, wheel: str | None = None):
    """An Otter Assign master notebook for the chapter's autogradable exercises (None if it has none).

    ``wheel``: the file name of a featlib wheel placed next to the master notebook; the autograder
    zip then carries it and its environment installs it (with the ``sdp`` extra)."""
    import nbformat

    items = exercises(md)
    written = discussions(md)
    if not items and not written:
        return None
    title = md.read_text().split("\n# ", 1)[1].split("\n", 1)[0] if "\n# " in md.read_text() else md.stem
    stated = statements(md)
    # the book numbers a chapter's exercises 1, 2, ... in order: the student edition says the same
    number = {lab: k for k, lab in enumerate(re.findall(r"```\{exercise-start\}\n:label: (\S+)", md.read_text()), 1)}

    def heading(label):
        base = label[:-4] if label.endswith("-why") else label
        return f"### Exercise {number.get(base, '?')}" + (" (written part)" if label.endswith("-why") else "") + "\n\n"
    v4 = nbformat.v4
    if wheel:
        # Otter puts autograder_files under files/ in the zip, unpacked in /autograder/source
        generate = (f"generate: true\nautograder_files:\n- {wheel}\n"
                    f"requirements:\n- featlib[sdp] @ file:///autograder/source/files/{wheel}")
    else:
        generate = "generate: true\nrequirements: null"
    config = (f"# ASSIGNMENT CONFIG\nname: {md.stem}\ninit_cell: true\ncheck_all_cell: false\nexport_cell: false\n"
              f"run_tests: false\n{generate}")
    cells = [v4.new_raw_cell(config),
             v4.new_markdown_cell(f"# Exercises: {title}\n\nFrom the chapter *{title}* of the book *Learning Features "
                                  f"from Feedback* (read it first: the exercises use its results). Write each function, "
                                  f"then run the `grader.check` cell under it: it says what is wrong, as the autograder "
                                  f"will." + (f"\n\n## What the chapter states\n\n{stated}" if stated else "")),
             v4.new_code_cell(SETUP)]
    for ex in items:
        test = ('""" # BEGIN TEST CONFIG\npoints: 1\n""" # END TEST CONFIG\n'
                f'from featlib.exercises import run_check\nrun_check("{ex["checker"]}", {ex["function"]})')
        cells += [v4.new_raw_cell(f"# BEGIN QUESTION\nname: {ex['label']}\npoints: 1"),
                  v4.new_markdown_cell(heading(ex["label"]) + ex["prompt"]),
                  v4.new_raw_cell("# BEGIN SOLUTION"),
                  v4.new_code_cell(_solution_cell(ex["solution"], ex["function"])),
                  v4.new_raw_cell("# END SOLUTION"),
                  v4.new_raw_cell("# BEGIN TESTS"),
                  v4.new_code_cell(test),
                  v4.new_raw_cell("# END TESTS"),
                  v4.new_raw_cell("# END QUESTION")]
    for q in written:  # graded by a person (Otter's manual questions): an answer cell, no test
        cells += [v4.new_raw_cell(f"# BEGIN QUESTION\nname: {q['label']}\nmanual: true\npoints: 1"),
                  v4.new_markdown_cell(f"{heading(q['label'])}{q['prompt']}\n\n*Written answer, graded by your instructor.*"),
                  v4.new_raw_cell("# BEGIN SOLUTION"),
                  v4.new_markdown_cell(f"**Reference answer.** {q['answer'] or '(see the chapter)'}"),
                  v4.new_raw_cell("# END SOLUTION"),
                  v4.new_raw_cell("# END QUESTION")]
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _otter() -> str:
    exe = pathlib.Path(sys.executable).parent / "otter"
    found = str(exe) if exe.exists() else shutil.which("otter")
    if found is None:
        raise AssignmentError("otter-grader is not installed: pip install -e '.[course]'")
    return found


def build(chapters=None, out: pathlib.Path = OUT) -> list[pathlib.Path]:
    """Student edition and autograder of each chapter with autogradable exercises; returns their folders."""
    folders = []
    wheel_dir = pathlib.Path(tempfile.mkdtemp(prefix="featlib-wheel-"))
    try:
        wheel = None
        for md in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.md")):
            if chapters and md.stem not in chapters:
                continue
            if master_notebook(md) is None:
                continue
            wheel = wheel or featlib_wheel(wheel_dir)
            folders.append(_assign(md, master_notebook(md, wheel.name), wheel, out))
    finally:
        shutil.rmtree(wheel_dir, ignore_errors=True)
    return folders


def _assign(md, nb, wheel, out) -> pathlib.Path:
    """``otter assign`` on one chapter's master notebook, with the featlib wheel beside it."""
    import nbformat

    dest = out / md.stem
    if dest.exists():
        shutil.rmtree(dest)
    with tempfile.TemporaryDirectory() as tmp:
        master = pathlib.Path(tmp) / f"{md.stem}.ipynb"
        nbformat.write(nb, master)
        shutil.copy(wheel, pathlib.Path(tmp) / wheel.name)
        run = subprocess.run([_otter(), "assign", str(master), str(dest)], capture_output=True, text=True,
                             cwd=tmp)
    if run.returncode != 0:
        raise AssignmentError(f"otter assign failed for {md.name}:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    (dest / "questions.json").write_text(json.dumps(
        [{"label": ex["label"], "checker": ex["checker"], "function": ex["function"], "points": 1}
         for ex in exercises(md)], indent=1))
    return dest


def autograder_zip(chapter: str, out: pathlib.Path = OUT) -> pathlib.Path:
    zips = sorted((out / chapter / "autograder").glob("*.zip"))
    if not zips:
        raise AssignmentError(f"no autograder for {chapter!r} in {out}: run python book/assignments.py build first")
    return zips[-1]


def questions(chapter: str, out: pathlib.Path = OUT) -> list[dict]:
    """The graded questions of a built chapter (label, checker, function), as ``build`` wrote them."""
    path = out / chapter / "questions.json"
    if not path.exists():
        raise AssignmentError(f"no autograder for {chapter!r} in {out}: run python book/assignments.py build first")
    return json.loads(path.read_text())


def grade_one(items: list[dict], name: str, data: bytes, *, hide=(), isolation="auto", run_timeout=120.0,
              call_timeout=30.0) -> list[dict]:
    """One submission (its name and bytes): a row per question (question, score, possible, feedback).

    The notebook runs in a sandboxed child process (``featlib.grading.Sandbox``); each question's
    checker runs here, in the grader's process, calling the student's function through the sandbox.
    A notebook that cannot be read, runs too long or dies gets a row per question with the reason."""
    from featlib.exercises import ExerciseCheckError, run_check
    from featlib.grading import GradingError, Sandbox, SubmissionError, notebook_cells

    def row(q, passed, feedback):
        return {"submission": name, "question": q["label"], "score": float(q.get("points", 1)) if passed else 0.0,
                "possible": float(q.get("points", 1)), "feedback": feedback}

    try:
        cells = notebook_cells(data)
    except GradingError as exc:
        return [row(q, False, str(exc)) for q in items]
    rows = []
    with Sandbox(cells, hide=hide, isolation=isolation, run_timeout=run_timeout, call_timeout=call_timeout) as box:
        for q in items:
            try:
                run_check(q["checker"], box.function(q["function"]))
            except ExerciseCheckError as exc:
                rows.append(row(q, False, str(exc)))
            except SubmissionError as exc:
                rows.append(row(q, False, str(exc)))
            except Exception as exc:  # noqa: BLE001 - a checker tripping on odd output: the reason, never a crash
                rows.append(row(q, False, f"{type(exc).__name__}: {str(exc)[:200]}"))
            else:
                rows.append(row(q, True, "passed"))
    return rows


def grade(chapter: str, submissions: pathlib.Path, csv_path: pathlib.Path | None = None, *,
          out: pathlib.Path = OUT, workers: int = 2, isolation: str = "auto", run_timeout: float = 120.0,
          call_timeout: float = 30.0) -> list[dict]:
    """Grade every ``.ipynb`` in ``submissions``; write the rows to ``csv_path`` (atomically).

    Every submission is read into memory before any is run, so no submission can change another's
    file before it is graded; each runs in its own sandbox that cannot see the submissions folder,
    the repository or ``out``."""
    items = questions(chapter, out)
    if not items:
        raise AssignmentError(f"{chapter} has no autograded questions: its exercises are written answers, graded by "
                              f"a person (Otter's manual questions in the student edition)")
    submissions = pathlib.Path(submissions)
    subs = sorted(submissions.glob("*.ipynb"))
    if not subs:
        raise AssignmentError(f"no .ipynb submissions in {submissions}")
    from featlib.grading import MAX_NOTEBOOK_BYTES

    loaded = []
    for s in subs:
        try:
            size = s.stat().st_size
            data = s.read_bytes() if size <= MAX_NOTEBOOK_BYTES else b"x" * (MAX_NOTEBOOK_BYTES + 1)
        except OSError as exc:
            data = f"unreadable: {exc}".encode()
        loaded.append((s.name, data))
    hide = [ROOT, submissions.resolve(), pathlib.Path(out).resolve()]
    if csv_path is not None:
        hide.append(pathlib.Path(csv_path).resolve().parent)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        rows = [r for rs in pool.map(lambda nd: grade_one(items, nd[0], nd[1], hide=hide, isolation=isolation,
                                                          run_timeout=run_timeout, call_timeout=call_timeout), loaded)
                for r in rs]
    if csv_path is not None:
        csv_path = pathlib.Path(csv_path)
        tmp = csv_path.with_name(csv_path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["submission", "question", "score", "possible", "feedback"])
            w.writeheader()
            w.writerows(rows)
        tmp.replace(csv_path)
    return rows


def fl_errors():
    from featlib import FeatlibError

    return FeatlibError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="student editions and autograders of the chapters' exercises")
    b.add_argument("chapters", nargs="*", help="chapter stems (default: all), e.g. 01_lemma2_triplets_to_pairs")
    g = sub.add_parser("grade", help="grade a folder of submitted notebooks")
    g.add_argument("chapter")
    g.add_argument("submissions", type=pathlib.Path)
    g.add_argument("--csv", type=pathlib.Path, default=None, help="default: SUBMISSIONS/scores.csv")
    g.add_argument("--isolation", choices=["auto", "bwrap", "process"], default="auto",
                   help="bwrap: refuse to grade without bubblewrap; process: never use it (default: auto)")
    g.add_argument("--timeout", type=float, default=120.0, help="seconds for running one notebook (default 120)")
    args = ap.parse_args(argv)
    try:
        if args.command == "build":
            for folder in build(args.chapters):
                print(f"{folder.relative_to(ROOT)}: student/{folder.name}.ipynb, autograder/{autograder_zip(folder.name).name}")
        else:
            out = args.csv or args.submissions / "scores.csv"
            rows = grade(args.chapter, args.submissions, out, isolation=args.isolation, run_timeout=args.timeout)
            for r in rows:
                print(f"{r['submission']}  {r['question']}  {r['score']:g}/{r['possible']:g}  {r['feedback']}")
            print(f"wrote {out}")
    except (AssignmentError, fl_errors()) as exc:
        print(f"assignments: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Student editions and the autograder (book/assignments.py, Otter-Grader without Docker).

The reference solutions score full marks; the untouched student stubs score zero; a deliberately
wrong answer to one exercise loses exactly that question's point, and the feedback is the reason
featlib's checker gives.
"""
import csv
import importlib.util
import json
import pathlib

import pytest

pytest.importorskip("otter")

ROOT = pathlib.Path(__file__).resolve().parents[1]

# one plausible mistake per autograded exercise: (text in the reference solution, the mistake)
MISTAKES = {
    "ex-lemma2-equalize": ("np.sqrt(du / dw) * w", "(du / dw) * w"),
    "ex-lemma2-svec": ("np.sqrt(2.0)", "2.0"),
    "ex-thm1-lineardim": ("feedback.p * (feedback.p + 1) // 2 -", "feedback.p ** 2 -"),
    "ex-thm1-pairs": ("for k in range(r, len(w)):", "for k in range(r, r):"),
    "ex-thm2-basis": ("B[np.arange(len(i)), j] = 1.0", "B[np.arange(len(i)), j] = 0.0"),
    "ex-thm3-pairs": ("np.sqrt(c)[:, None]", "c[:, None]"),
    "ex-thm4-ps": ("math.lgamma(P + 1)", "math.lgamma(P)"),
    "ex-solvers-psd": ("np.maximum(w, 0)", "np.abs(w)"),
    "ex-comparisons-bound": ("abs(s * s - t * t)", "abs(s - t)"),
    "ex-phase-prediction": ("m * (m + 1) / 4 - 1", "m * (m + 1) / 2 - 1"),
    "ex-noisy-answers": ("np.einsum(\"ij,jk,ik->i\", U, phi, U) - np.einsum", "np.einsum(\"ij,jk,ik->i\", W, phi, W) - np.einsum"),
}


def _module():
    spec = importlib.util.spec_from_file_location("book_assignments", ROOT / "book" / "assignments.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    mod = _module()
    out = tmp_path_factory.mktemp("assignments")
    folders = mod.build(out=out)
    return mod, out, {f.name: f for f in folders}


def test_every_checked_exercise_becomes_a_graded_question(built):
    mod, out, folders = built
    labels = [ex["label"] for md in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.md")) for ex in mod.exercises(md)]
    assert sorted(labels) == sorted(MISTAKES)  # a new checked exercise needs a mistake here
    assert len(folders) == 11  # every chapter: autograded functions and/or written questions
    for name, folder in folders.items():
        student = _sources(folder / "student" / f"{name}.ipynb")
        solution = _sources(folder / "autograder" / f"{name}.ipynb")
        for label, (right, _) in MISTAKES.items():
            if f'"{label}"' in solution:
                assert right in solution and right not in student, (name, label)  # solutions removed
                assert f'grader.check("{label}")' in student
        assert "otter.Notebook" in student  # students can check themselves


def _sources(path) -> str:
    return "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])


def _with_mistake(nb_text: str, label: str) -> str:
    right, wrong = MISTAKES[label]
    nb = json.loads(nb_text)
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code" and right in src:
            cell["source"] = src.replace(right, wrong)
            return json.dumps(nb)
    raise AssertionError(f"{label}: {right!r} not found")


@pytest.mark.parametrize("chapter", ["01_lemma2_triplets_to_pairs", "02_theorem1_low_rank",
                                     "03_theorem2_sparse_constructive", "04_theorem3_sampled",
                                     "05_theorem4_sparse_sampling", "06_solvers", "09_noisy_ordinal",
                                     "10_phase_transitions", "11_counting_comparisons"])
def test_grading_a_folder_of_submissions(built, chapter, tmp_path):
    mod, out, folders = built
    folder = folders[chapter]
    reference = (folder / "autograder" / f"{chapter}.ipynb").read_text()
    questions = [label for label in MISTAKES if f'"{label}"' in reference]
    subs = tmp_path / "submissions"
    subs.mkdir()
    (subs / "reference.ipynb").write_text(reference)
    (subs / "untouched.ipynb").write_text((folder / "student" / f"{chapter}.ipynb").read_text())
    for label in questions:
        (subs / f"wrong-{label}.ipynb").write_text(_with_mistake(reference, label))
    rows = mod.grade(chapter, subs, tmp_path / "scores.csv", out=out)

    with open(tmp_path / "scores.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) == (2 + len(questions)) * len(questions)
    score = {(r["submission"], r["question"]): r for r in rows}
    for q in questions:
        assert score["reference.ipynb", q]["score"] == score["reference.ipynb", q]["possible"] == 1.0
        assert score["reference.ipynb", q]["feedback"] == "passed"
        assert score["untouched.ipynb", q]["score"] == 0.0 and score["untouched.ipynb", q]["feedback"] != "passed"
        for other in questions:
            row = score[f"wrong-{q}.ipynb", other]
            if other == q:  # loses exactly this question, with the checker's reason
                assert row["score"] == 0.0, (q, row)
                assert row["feedback"] not in ("passed", "failed") and ":" in row["feedback"], row
            else:
                assert row["score"] == 1.0, (q, other, row)


def test_grade_says_what_is_missing(built, tmp_path):
    mod, out, _ = built
    with pytest.raises(mod.AssignmentError, match="no .ipynb submissions"):
        mod.grade("01_lemma2_triplets_to_pairs", tmp_path, out=out)
    with pytest.raises(mod.AssignmentError, match="graded by a person"):
        mod.grade("07_rfm", tmp_path, out=out)
    with pytest.raises(mod.AssignmentError, match="run python book/assignments.py build"):
        mod.grade("07_rfm", tmp_path, out=tmp_path / "nothing-built")


# ---------------------------------------------------------------------------------------------
# a grading tool people trust: submissions that attack the grader


def _notebook(*cells):
    return json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                                  "source": c} for c in cells],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


CH = "01_lemma2_triplets_to_pairs"


def _grade(mod, out, subs, tmp_path, **kw):
    rows = mod.grade(CH, subs, tmp_path / "scores.csv", out=out, **kw)
    return {(r["submission"], r["question"]): r for r in rows}


@pytest.mark.parametrize("isolation", ["auto", "process"])
def test_switching_off_the_checks_scores_nothing(built, tmp_path, isolation):
    mod, out, folders = built
    subs = tmp_path / "subs"
    subs.mkdir()
    attacks = {
        "patch-run-check.ipynb": "import featlib.exercises as E\nE.run_check = lambda *a, **k: None\n"
                                 "def equalize(phi, x, y, z):\n    ...\ndef svec(S):\n    ...",
        "patch-checkers.ipynb": "import featlib.exercises as E\nfor n in dir(E):\n    if n.startswith('check_'):\n"
                                "        setattr(E, n, lambda *a, **k: None)\nimport numpy as np\nnp.allclose = lambda *a, **k: True\n"
                                "def equalize(phi, x, y, z):\n    return None\ndef svec(S):\n    return None",
        "exit.ipynb": "import os\nos._exit(0)",
    }
    for name, code in attacks.items():
        (subs / name).write_text(_notebook(code))
    score = _grade(mod, out, subs, tmp_path, isolation=isolation)
    for (sub, q), row in score.items():
        assert row["score"] == 0.0, (sub, q, row)


def test_a_submission_cannot_read_solutions_or_touch_other_submissions(built, tmp_path):
    mod, out, folders = built
    if mod_grading().sandbox_available() is None:
        pytest.skip("no working bubblewrap on this machine")
    subs = tmp_path / "subs"
    subs.mkdir()
    reference = (folders[CH] / "autograder" / f"{CH}.ipynb").read_text()
    (subs / "b-victim.ipynb").write_text(reference)
    solution = folders[CH] / "autograder" / f"{CH}.ipynb"
    outside = tmp_path / "outside.txt"
    probe = (f"import os, glob\nSEEN = [os.path.exists({str(solution)!r}), bool(os.path.isdir({str(subs)!r}) and os.listdir({str(subs)!r})), "
             f"bool(glob.glob({str(ROOT / 'notebooks' / '*.md')!r}))]\n"
             f"try:\n    open({str(outside)!r}, 'w').write('x')\nexcept OSError:\n    pass\n"
             f"for f in glob.glob({str(subs / '*.ipynb')!r}):\n    try:\n        open(f, 'w').write('{{}}')\n"
             f"    except OSError:\n        pass\n"
             "def equalize(phi, x, y, z):\n    raise RuntimeError('seen ' + str(SEEN))\n")
    (subs / "a-attacker.ipynb").write_text(_notebook(probe))
    score = _grade(mod, out, subs, tmp_path, isolation="bwrap")
    fb = score["a-attacker.ipynb", "ex-lemma2-equalize"]["feedback"]
    assert "seen [False, False, False]" in fb, fb
    assert not outside.exists()
    assert (subs / "b-victim.ipynb").read_text() == reference  # not rewritten
    assert all(row["score"] == 1.0 for (sub, q), row in score.items() if sub == "b-victim.ipynb")


def test_a_hung_or_broken_submission_gets_a_row_and_the_others_are_graded(built, tmp_path):
    mod, out, folders = built
    subs = tmp_path / "subs"
    subs.mkdir()
    reference = (folders[CH] / "autograder" / f"{CH}.ipynb").read_text()
    (subs / "good.ipynb").write_text(reference)
    (subs / "loop.ipynb").write_text(_notebook("while True:\n    pass"))
    (subs / "corrupt.ipynb").write_text("{not a notebook")
    (subs / "memory.ipynb").write_text(_notebook("x = bytearray(10**12)", "def svec(S):\n    return 1"))
    (subs / "slow-function.ipynb").write_text(_notebook("import time\ndef equalize(phi, x, y, z):\n    time.sleep(600)"))
    score = _grade(mod, out, subs, tmp_path, run_timeout=8.0, call_timeout=5.0)
    assert all(r["score"] == 1.0 for (s, q), r in score.items() if s == "good.ipynb")
    assert "did not finish running" in score["loop.ipynb", "ex-lemma2-equalize"]["feedback"]
    assert "not a readable notebook" in score["corrupt.ipynb", "ex-lemma2-svec"]["feedback"]
    assert "did not return within" in score["slow-function.ipynb", "ex-lemma2-equalize"]["feedback"]
    assert score["memory.ipynb", "ex-lemma2-svec"]["score"] == 0.0
    assert (tmp_path / "scores.csv").exists()


def mod_grading():
    import featlib.grading

    return featlib.grading


def test_the_autograder_zip_installs_what_its_tests_import(built):
    import zipfile

    import yaml

    mod, out, folders = built
    for name in folders:
        z = zipfile.ZipFile(mod.autograder_zip(name, out))
        wheels = [n for n in z.namelist() if n.startswith("files/featlib-") and n.endswith(".whl")]
        assert len(wheels) == 1, z.namelist()
        env = yaml.safe_load(z.read("environment.yml"))
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        assert f"featlib[sdp] @ file:///autograder/source/{wheels[0]}" in pip
        inner = zipfile.ZipFile(__import__("io").BytesIO(z.read(wheels[0])))
        assert "featlib/exercises.py" in inner.namelist()  # the module the tests import
        for test in (n for n in z.namelist() if n.startswith("tests/")):
            assert "featlib.exercises" in z.read(test).decode()


def test_student_editions_state_the_chapter_number_the_exercises_and_ask_the_written_parts(built):
    mod, out, folders = built
    student = _sources(folders[CH] / "student" / f"{CH}.ipynb")
    assert "**Lemma (Triplets to equality pairs" in student  # Lemma 2 is stated
    assert ".md`" not in student  # the chapter by its title, not its source file
    assert "### Exercise 1" in student and "### Exercise 2" in student
    assert "### Exercise 2 (written part)" in student and "off-diagonal" in student
    assert "Written answer" in student
    # the eight discussion exercises are manual questions in their chapters' editions
    rfm = _sources(folders["07_rfm"] / "student" / "07_rfm.ipynb")
    assert "### Exercise 1" in rfm and "Written answer" in rfm

import subprocess
import sys

from featlib.cli import main


def test_demo_runs_and_reports(capsys):
    assert main(["demo", "--p", "6", "--rank", "3"]) == 0
    out = capsys.readouterr().out
    assert "eigen" in out and "Theorem 4" in out and "linear" in out


def test_python_dash_m():
    res = subprocess.run([sys.executable, "-m", "featlib", "demo", "--p", "4", "--rank", "2"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "identified" in res.stdout

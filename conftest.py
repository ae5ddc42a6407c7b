"""Repository-wide pytest hooks (the chapters under notebooks/ are collected by nbval, outside tests/)."""

# ---------------------------------------------------------------------------------------------
# per-chapter execution time, printed at the end of every run: a slow chapter is seen the day it
# appears (nbval runs each chapter's cells as separate test items)
_CHAPTER_SECONDS = {}


def pytest_runtest_logreport(report):
    if report.when == "call" and report.nodeid.startswith("notebooks/"):
        name = report.nodeid.split("::")[0]
        _CHAPTER_SECONDS[name] = _CHAPTER_SECONDS.get(name, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if _CHAPTER_SECONDS:
        terminalreporter.section("chapter execution times (nbval, default parameters)")
        for name, seconds in sorted(_CHAPTER_SECONDS.items()):
            terminalreporter.write_line(f"{seconds:8.1f} s  {name}")

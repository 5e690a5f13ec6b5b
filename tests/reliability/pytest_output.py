"""Keeps what every test of the session printed, so the secrets scan can read "the pytest output".

Loaded for the whole session from ``tests/conftest.py`` (a runtest hook in a sub-directory's
conftest would only see that directory's tests). Every report's captured stdout, stderr, log
records and failure text is appended to ``test-artifacts/session/pytest-output.log``, which the
last test of the session (``test_ownership_and_secrets.py``'s scan) reads with everything else the
run produced.
"""

from __future__ import annotations

from pathlib import Path

import pytest

OUTPUT = Path(__file__).resolve().parents[2] / "test-artifacts" / "session" / "pytest-output.log"


def pytest_sessionstart(session: pytest.Session) -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text("")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    parts = [f"== {report.nodeid} [{report.when}] {report.outcome}"]
    parts += [f"-- {title}\n{content}" for title, content in report.sections]
    if report.failed:
        parts.append(report.longreprtext)
    with OUTPUT.open("a", encoding="utf-8", errors="replace") as out:
        out.write("\n".join(parts) + "\n")

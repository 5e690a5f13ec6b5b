"""docs/reliability.md is the last full run of this suite: every case in it, as declared, and passed.

The document is regenerated at the end of every session that ran the whole suite (``make test``
does), so a stale committed copy is caught here: a case added, renamed or reworded without the
regenerated document committed, or a document committed from a run that failed.
"""

from __future__ import annotations

import pytest

from . import report

MIN_CASES = 25  # issue 6: "at least 25 distinct cases"


def test_the_suite_declares_what_its_tests_run(request: pytest.FixtureRequest) -> None:
    statically = report.declared_in_suite()
    collected = [row for item in request.session.items if (row := report.declared(item))]
    if not collected:
        pytest.skip("no reliability case was collected in this session (run the whole suite)")
    for row in collected:
        assert statically.get(row.case) == row, f"{row.case}: the static reading of the marks disagrees"


def test_the_committed_table_has_every_case_of_the_suite_as_declared() -> None:
    assert report.DOC.exists(), "docs/reliability.md is missing: run `.venv/bin/pytest tests/reliability`"
    committed = report.parse(report.DOC.read_text())
    declared = report.declared_in_suite()
    stale = []
    for case, row in declared.items():
        doc_row = committed.get(case)
        if doc_row is None:
            stale.append(f"{case}: not in the document")
        elif not (report.same_text(row.injected, doc_row.injected) and report.same_text(row.checked, doc_row.checked)):
            stale.append(f"{case}: injected/checked differ from the test's declaration")
        elif doc_row.area != row.area:
            stale.append(f"{case}: area {doc_row.area!r}, declared {row.area!r}")
    stale += [f"{case}: in the document, but no test declares it" for case in committed.keys() - declared.keys()]
    assert not stale, "docs/reliability.md is stale (regenerate: `.venv/bin/pytest tests/reliability`): " + "; ".join(
        stale
    )


def test_the_committed_table_comes_from_a_passing_run_of_enough_cases() -> None:
    committed = report.parse(report.DOC.read_text())
    assert len(committed) >= MIN_CASES, f"{len(committed)} cases"
    failed = [case for case, row in committed.items() if row.outcome != "passed"]
    assert not failed, f"the committed table records failures: {failed}"

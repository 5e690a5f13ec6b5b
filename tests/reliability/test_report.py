"""docs/reliability.md is the last full run of this suite: every case in it, as declared, and passed.

Test runs write their results under ``test-artifacts/``; only ``make reliability-doc`` renders the
tracked document, from a complete passing run. A stale committed copy is caught here: a case added,
renamed or reworded without the regenerated document committed, or a document committed from a run
that failed. The regeneration itself is checked on made-up results: it refuses what must not become
the document.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from . import report

REGENERATE = "regenerate: `make reliability-doc`"

MIN_CASES = 25  # issue 6: "at least 25 distinct cases"


def test_the_suite_declares_what_its_tests_run(request: pytest.FixtureRequest) -> None:
    statically = report.declared_in_suite()
    collected = [row for item in request.session.items if (row := report.declared(item))]
    if not collected:
        pytest.skip("no reliability case was collected in this session (run the whole suite)")
    for row in collected:
        assert statically.get(row.case) == row, f"{row.case}: the static reading of the marks disagrees"


def test_the_committed_table_has_every_case_of_the_suite_as_declared() -> None:
    assert report.DOC.exists(), f"docs/reliability.md is missing ({REGENERATE})"
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
    assert not stale, f"docs/reliability.md is stale ({REGENERATE}): " + "; ".join(stale)


def test_the_committed_table_comes_from_a_passing_run_of_enough_cases() -> None:
    committed = report.parse(report.DOC.read_text())
    assert len(committed) >= MIN_CASES, f"{len(committed)} cases"
    failed = [case for case, row in committed.items() if row.outcome != "passed"]
    assert not failed, f"the committed table records failures: {failed}"


# ---- the regeneration -----------------------------------------------------------------------------


def _run(tmp_path: Path, *, complete: bool = True, outcome: str = "passed") -> Path:
    """Results as a session leaves them: every declared case, the first one with ``outcome``."""
    rows = list(report.declared_in_suite().values())
    for row in rows:
        row.outcome, row.seconds, row.observed = "passed", 2.0, ["measured"]
    rows[0].outcome = outcome
    results = tmp_path / "results.json"
    report.write_results(report.Run(when="2026-01-02 03:04 UTC", rows=rows, complete=complete), results)
    return results


def test_a_complete_passing_run_becomes_a_document_the_check_accepts(tmp_path: Path) -> None:
    results = _run(tmp_path)
    doc = tmp_path / "reliability.md"
    report.write_doc(results, doc)
    rendered = report.parse(doc.read_text())
    declared = report.declared_in_suite()
    assert rendered.keys() == declared.keys()
    assert {row.outcome for row in rendered.values()} == {"passed"}
    assert all(report.same_text(declared[case].checked, row.checked) for case, row in rendered.items())
    assert "Last run: 2026-01-02 03:04 UTC" in doc.read_text()
    # The session's own table, beside its results, is the same document.
    assert (tmp_path / report.RENDERED.name).read_text() == doc.read_text()


@pytest.mark.parametrize(
    ("complete", "outcome", "refusal"),
    [
        pytest.param(False, "passed", "not every case", id="a-subset-of-the-cases"),
        pytest.param(True, "failed", "did not pass", id="a-failed-case"),
        pytest.param(True, "skipped", "did not pass", id="a-skipped-case"),
    ],
)
def test_the_document_is_never_rendered_from(tmp_path: Path, complete: bool, outcome: str, refusal: str) -> None:
    results = _run(tmp_path, complete=complete, outcome=outcome)
    doc = tmp_path / "reliability.md"
    doc.write_text("the committed copy\n")
    with pytest.raises(ValueError, match=refusal):
        report.write_doc(results, doc)
    assert doc.read_text() == "the committed copy\n"


def test_a_subset_run_leaves_no_table_beside_its_results(tmp_path: Path) -> None:
    _run(tmp_path)
    results = _run(tmp_path, complete=False)
    assert not (tmp_path / report.RENDERED.name).exists()
    assert json.loads(results.read_text())["complete"] is False

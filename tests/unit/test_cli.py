"""The command line reads as plain text: people see its help in a terminal, not rendered markup."""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from rocketmq_operator import cli


def _with_subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _with_subcommands(sub)


HELP_PAGES = dict(_with_subcommands(cli.parser()))


def test_every_subcommand_has_a_help_page() -> None:
    assert set(HELP_PAGES) == {
        "rocketmq-operator",
        "rocketmq-operator run",
        "rocketmq-operator crd",
        "rocketmq-operator sweep-report",
    }


@pytest.mark.parametrize("prog", sorted(HELP_PAGES))
def test_help_shows_no_restructuredtext_markup(prog: str) -> None:
    text = HELP_PAGES[prog].format_help()
    assert "``" not in text, text


def test_the_top_level_help_says_what_the_command_does() -> None:
    text = HELP_PAGES["rocketmq-operator"].format_help()
    assert "run the operator, print the CRD" in text
    assert "DMS_* environment variables" in text


class TestThePeeringLifetime:
    def test_is_kopfs_own_unless_given(self) -> None:
        assert cli.parser().parse_args(["run"]).peering_lifetime is None
        assert cli.parser().parse_args(["run", "--peering-lifetime", "5"]).peering_lifetime == 5

    @pytest.mark.parametrize("value", ["0", "-3", "soon"])
    def test_is_refused_unless_a_whole_positive_number_of_seconds(
        self, value: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit):
            cli.parser().parse_args(["run", f"--peering-lifetime={value}"])
        assert "--peering-lifetime: must be a whole number of seconds, at least 1" in capsys.readouterr().err


# ---- the process the operator runs in -----------------------------------------------------------

_RUN_AND_REPORT_THE_GC = """
import gc, sys
from rocketmq_operator import cli
from rocketmq_operator.wiring import handlers

async def report(options):
    print(gc.get_threshold()[0], gc.get_freeze_count() > 0)

handlers.run = report
sys.exit(cli.main(["run"]))
"""


def test_the_operator_runs_with_fewer_collections_and_what_it_loaded_frozen_out_of_them() -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(path for path in sys.path if path),  # this checkout's operator
        "DMS_ENDPOINT": "http://127.0.0.1:9",
        "DMS_PROJECT_ID": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "DMS_ACCESS_KEY": "AKEXAMPLE",
        "DMS_SECRET_KEY": "very-secret-value",
    }
    done = subprocess.run(
        [sys.executable, "-c", _RUN_AND_REPORT_THE_GC], env=env, capture_output=True, text=True, timeout=60, check=True
    )

    assert done.stdout.split() == [str(cli.GC_YOUNG_THRESHOLD), "True"]
    assert gc.get_threshold()[0] < cli.GC_YOUNG_THRESHOLD  # CPython's default, in this test process

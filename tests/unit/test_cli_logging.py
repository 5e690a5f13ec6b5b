"""kopf's handler retries are INFO in the operator's logs; its final failures stay ERROR.

The CLI recognises kopf's retry line by its wording, so these tests take the records from kopf's
real handler execution (a handler raising ``TemporaryError``): a kopf release that rewords the
line fails them instead of silently turning every retry back into an ERROR.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import kopf
import pytest
from kopf._cogs.structs import ids
from kopf._core.actions import execution, progression

from rocketmq_operator import cli


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def kopf_logs_a_retry(*, retries: int | None = None) -> logging.LogRecord:
    """The ERROR record kopf writes when a handler asks to be called again later."""

    async def still_deleting(**_: Any) -> None:
        raise kopf.TemporaryError("the cloud is still deleting", delay=1)

    handler = execution.Handler(
        id=ids.HandlerId("delete_instance"),
        fn=still_deleting,
        param=None,
        errors=None,
        timeout=None,
        retries=retries,
        backoff=None,
    )
    logger = logging.getLogger("kopf.objects")  # the logger kopf hands to a resource's handlers
    keep = _Keep()
    logger.addHandler(keep)
    try:
        await execution.execute_handler_once(
            settings=kopf.OperatorSettings(),
            handler=handler,
            cause=execution.Cause(logger=logger),
            state=progression.HandlerState.from_scratch(basetime=datetime.datetime.now(datetime.UTC)),
        )
    finally:
        logger.removeHandler(keep)
    [record] = [r for r in keep.records if r.levelno >= logging.ERROR]
    return record


@pytest.mark.parametrize(
    ("shown_from", "shown"),
    [pytest.param(logging.WARNING, False, id="hidden by default"), pytest.param(logging.INFO, True, id="--verbose")],
)
async def test_a_handler_retry_is_logged_as_info(shown_from: int, shown: bool) -> None:
    record = await kopf_logs_a_retry()
    assert cli._RetriesAreNotErrors(shown_from=shown_from).filter(record) is shown
    assert (record.levelno, record.levelname) == (logging.INFO, "INFO")


async def test_a_handler_out_of_retries_stays_an_error() -> None:
    record = await kopf_logs_a_retry(retries=1)
    assert "exceed" in record.getMessage()
    assert cli._RetriesAreNotErrors(shown_from=logging.WARNING).filter(record) is True
    assert record.levelno == logging.ERROR

from __future__ import annotations

import pytest

from ivr.outbound.model import Result
from ivr.outbound.results import result_for_status


@pytest.mark.parametrize(
    ("status", "timed_out", "result"),
    [
        (486, False, Result.BUSY),
        (600, False, Result.BUSY),
        (603, False, Result.REJECTED),
        (403, False, Result.REJECTED),
        (480, False, Result.NO_ANSWER),
        (408, False, Result.NO_ANSWER),
        (487, False, Result.NO_ANSWER),
        (408, True, Result.NO_ANSWER),
        (503, False, Result.FAILED),
        (404, False, Result.FAILED),
        (500, False, Result.FAILED),
        (604, False, Result.FAILED),
    ],
)
def test_sip_status_to_result(status: int, timed_out: bool, result: Result) -> None:
    assert result_for_status(status, timed_out=timed_out) is result

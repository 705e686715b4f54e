"""A dialling attempt's SIP ending → the campaign's `Result` (what its retry rules are keyed on)."""

from __future__ import annotations

from ivr.outbound.model import Result

BUSY = frozenset({486, 600})
NO_ANSWER = frozenset({408, 480, 487})
"""408/480: the far end gave up ringing; 487: our CANCEL at the no-answer timeout won the race."""
REJECTED = frozenset({403, 603})


def result_for_status(status: int, *, timed_out: bool = False) -> Result:
    """The result of an INVITE that got no 2xx: `timed_out` when we gave up ringing (no-answer timer)."""
    if timed_out or status in NO_ANSWER:
        return Result.NO_ANSWER
    if status in BUSY:
        return Result.BUSY
    if status in REJECTED:
        return Result.REJECTED
    return Result.FAILED

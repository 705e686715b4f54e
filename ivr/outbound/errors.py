"""Errors of outbound calling."""

from __future__ import annotations

from collections.abc import Sequence

from ivr.errors import IvrError
from ivr.flow.errors import FlowLoadError, Problem


class OutboundError(IvrError):
    """Base of every outbound error."""


class CampaignLoadError(FlowLoadError, OutboundError):
    """A campaign file was refused; `problems` holds every error, each with its line and column
    (the flow language's load error, since a campaign file is read by the same machinery)."""

    def __init__(self, path: str, problems: Sequence[Problem]) -> None:
        super().__init__(path, problems)
        self.args = (f"campaign {str(self.args[0]).removeprefix('flow ')}",)


class TargetError(OutboundError):
    """A target (CSV row or API body) is not usable; the message names the file line or field."""

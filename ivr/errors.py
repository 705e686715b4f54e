"""The root of every error the engine raises on purpose.

Each package derives its own small tree from `IvrError` (`SipError`, `FlowError`, `AcdError`...),
so a caller can catch at the level it cares about.
"""

from __future__ import annotations


class IvrError(Exception):
    """Base class of every deliberate engine error."""


class ConfigError(IvrError):
    """A configuration file or option is wrong; the message names the file and what was expected."""

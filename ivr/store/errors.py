"""The store's errors: one small tree under `IvrError`, so callers catch at the level they need."""

from __future__ import annotations

from ivr.errors import IvrError


class StoreError(IvrError):
    """Base of every deliberate store error."""


class MigrationError(StoreError):
    """A schema migration file is malformed or failed to apply; the message names the file."""


class DatabaseUnreachable(StoreError):
    """The configured database cannot be reached at start-up; the message names it (password masked)."""


class StoreClosed(StoreError):
    """A write or read was attempted after `close()`."""


class BadQuery(StoreError):
    """A query parameter is out of range or malformed (bad cursor, unknown outcome, limit too big)."""


class BadSurveyScore(StoreError):
    """A survey score outside 0..10."""

"""The web layer's errors: what a source raises for the API to answer with a status other than 409."""

from __future__ import annotations

from ivr.errors import IvrError


class WebError(IvrError):
    """Base class of the errors the web API's sources raise on purpose."""


class UnknownDispatch(WebError):
    """A dispatch id the dispatcher never issued (the API answers 404)."""

"""The engine: the application layer that joins SIP, media, flows, speech, voice, ACD, store and web.

`Engine`, `serve` and `serve_main` load on first use (PEP 562): importing a light part of the package, such as
`ivr.engine.looplag` or `ivr.engine.gcpolicy` (which `ivr load` shares), must not load the whole engine (0.7 s of
CPU at each start of a tool)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.engine.app import Engine, serve, serve_main

__all__ = ["Engine", "serve", "serve_main"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ivr.engine import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The engine: the application layer that joins SIP, media, flows, speech, voice, ACD, store and web."""

from __future__ import annotations

from ivr.engine.app import Engine, serve, serve_main

__all__ = ["Engine", "serve", "serve_main"]

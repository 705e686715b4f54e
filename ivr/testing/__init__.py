"""Test doubles for the engine: a simulated Call with a scripted caller (and, from others, SIP callers)."""

from __future__ import annotations

from ivr.testing.simcall import Action, ActionKind, SimCall, Turn, TurnKind, guess_language, render

__all__ = ["Action", "ActionKind", "SimCall", "Turn", "TurnKind", "guess_language", "render"]

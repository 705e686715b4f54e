"""A telephony IVR engine for a customer hotline."""

from __future__ import annotations

__version__ = "0.1.0"

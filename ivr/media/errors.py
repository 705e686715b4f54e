"""Errors raised by the media package (codecs, WAV I/O, resampling)."""

from __future__ import annotations

from ivr.errors import IvrError


class MediaError(IvrError):
    """Base of every media-processing error."""


class AudioFormatError(MediaError):
    """An audio file or buffer is not in a form we can use; the message names the file and the field."""


class UnknownCodec(MediaError):
    """A payload type or codec name we do not implement (we speak PCMU and PCMA)."""

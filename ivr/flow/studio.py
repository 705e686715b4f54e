"""The prompt-recording seam: what a flow's `record_prompts` node asks of the dialect packs.

`ivr.voice.studio.PromptStudio` is the real one (PIN hashes from the config, packs and recordings on
disk, the running prompt library told of each take); tests may pass it over temporary folders. The
methods block (scrypt, file writes): the node runs them in a worker thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray


class Studio(Protocol):
    def check_pin(self, pin: str) -> bool:
        """Whether `pin` is one of the staff PINs (False when none is configured)."""
        ...

    def dialect_codes(self) -> list[str]:
        """The dialect packs, in the order the line reads them out."""
        ...

    def to_record(self, dialect: str) -> list[tuple[str, str]]:
        """(prompt id, text to say) still to record in `dialect`."""
        ...

    def save(self, dialect: str, prompt_id: str, audio: NDArray[np.int16]) -> Path:
        """Keep the take as the pack's recording and serve it from now on."""
        ...


__all__ = ["Studio"]

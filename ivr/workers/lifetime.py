"""Child processes of a node that must not outlive its supervisor (Linux `PR_SET_PDEATHSIG`).

A worker left running after its supervisor was killed (kill -9, the OOM killer) would keep the node's
ports bound and its calls half-served while the service manager starts a new node: it is killed with
the supervisor instead, as one process would have been, and the restarted node marks its calls
interrupted. Elsewhere than on Linux the call is a no-op (workers still leave when their stdin closes).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def dies_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A `preexec_fn` that has the child get `sig` when the process that started it dies."""

    def arrange() -> None:  # pragma: no cover - runs in the child between fork and exec
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(sig))

    return arrange


__all__ = ["dies_with_parent"]

"""Throwaway servers that die with the process that started them (util-linux `setpriv --pdeathsig`).

A test run killed in the middle (Ctrl-C twice, a CI time-out, kill -9) never reaches its fixtures'
clean-up, and a redis-server or PostgreSQL it started would keep running, holding ports and memory, run
after run. `setpriv` (util-linux: on every Debian system) sets the child's parent-death signal and then
execs the server: no Python runs between fork and exec, which a `preexec_fn` would do in a process with
threads. Linux sends the signal when the *thread* that started the child ends, so start these servers
from a thread that lives as long as they should (the main thread, or an executor thread of a loop that
outlives them). Without `setpriv` the command runs untethered (as `user` through `runuser`).
"""

from __future__ import annotations

import shutil


def tethered(command: list[str], *, user: str | None = None) -> list[str]:
    """`command` to run as a child that gets SIGKILL when its starter dies; as `user` when given (root only)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return command if user is None else ["runuser", "-u", user, "--", *command]
    # setpriv changes the ids before setting the death signal (a uid change would clear it).
    as_user = ["--reuid", user, "--regid", user, "--init-groups"] if user else []
    return [setpriv, *as_user, "--pdeathsig", "KILL", "--", *command]


__all__ = ["tethered"]

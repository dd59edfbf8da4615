"""Child processes that do not outlive the process that started them.

A parent starts its children with ``child_env()``; the child's ``stopline`` entry point calls
``follow_parent()`` first thing, which asks the kernel (Linux ``prctl(PR_SET_PDEATHSIG)``) to send
it SIGTERM when the parent goes, however it goes: SIGKILL included, when no clean-up of the
parent's runs. The services treat SIGTERM as their normal stop (finish the message in hand,
leave). If the parent is already gone by the time the child asks, the child leaves at once.

The signal follows the parent *thread* that started the child: start children from the thread
that lives as long as they should (the demo starts them from its main thread).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Mapping

ENV = "STOPLINE_PARENT_PID"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) for a child that must stop with this process."""
    return {**(os.environ if env is None else env), ENV: str(os.getpid())}


def follow_parent(sig: signal.Signals = signal.SIGTERM) -> bool:
    """In a child started with ``child_env``: get ``sig`` when the parent exits. Returns whether
    that was arranged (False outside Linux or when not started that way). The variable is
    removed so that this process's own children do not take it for theirs."""
    value = os.environ.pop(ENV, None)
    if not value or not sys.platform.startswith("linux"):
        return False
    parent = int(value)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent went before the request was in place
        raise SystemExit(f"stopline: parent process {parent} has exited; not starting")
    return True

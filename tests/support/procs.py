"""Arranging faults on a running process: freeze it, and see what the broker has handed it.

A frozen (SIGSTOPped) subscriber reads nothing, so it can acknowledge nothing: whatever the
broker writes to its connection from then on is a message it holds unacknowledged, as if it were
in the middle of handling it. ``unread_bytes`` measures that from the kernel's side
(``/proc/PID/net/tcp``: the receive queue of the process's own sockets, in its own network
namespace), so a test can wait for "a message was delivered" instead of hoping to catch one.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

# More than the broker ever sends a subscriber unasked (PUBACK, PINGRESP: a few bytes, in TLS
# records of a few dozen): a receive queue grown by this much holds (part of) a PUBLISH.
PUBLISH_BYTES = 1024


def freeze(pid: int) -> None:
    os.kill(pid, signal.SIGSTOP)


def thaw(pid: int) -> None:
    os.kill(pid, signal.SIGCONT)


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def unread_bytes(pid: int, remote_port: int) -> int:
    """Bytes waiting in the receive queues of ``pid``'s TCP connections to ``remote_port`` that
    the process has not read."""
    inodes = _socket_inodes(pid)
    total = 0
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            # sl local rem st tx_queue:rx_queue tr:when retrnsmt uid timeout inode ...
            if f[9] in inodes and int(f[2].rsplit(":", 1)[1], 16) == remote_port:
                total += int(f[4].split(":")[1], 16)
    return total

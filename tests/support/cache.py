"""Costly test inputs made once per test run, however many pytest-xdist workers ask for them.

The workers of one run share the parent of their ``basetemp``; the first worker to ask for
``name`` makes it there under an exclusive lock (``fcntl.flock``), the others wait for the lock
and find it made. In a run without workers the same holds with one process."""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from pathlib import Path

import pytest


def shared_dir(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """The folder ``name``, filled by ``make(folder)`` once per run (``make`` must write its
    files into the folder it is given; a half-made folder is made again)."""
    root = tmp_path_factory.getbasetemp().parent / "shared"
    root.mkdir(exist_ok=True)
    folder = root / name
    done = root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            folder.mkdir(exist_ok=True)
            make(folder)
            done.touch()
    return folder

"""Content-addressed evidence files: ``<root>/ab/<sha256>`` (256 folders). A file's name is the
SHA-256 of its bytes, so paths are never chosen by a client and identical files are stored once.
The ingestion stores each violation's images as one file (a bundle: the images one after the
other; the evidence rows hold each image's offset and size), because creating a file costs far
more than writing its bytes.

Durability: files are written to a temporary name and renamed into place; with ``durable`` a
batch is flushed to disk before ``put_many`` returns (one ``syncfs`` of the evidence filesystem
on Linux, else an fsync per file), i.e. before the database rows that name the files commit.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from stopline.shared.messages import sha256_hex

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _load_syncfs():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.syncfs
        fn.argtypes = [ctypes.c_int]
        return fn
    except (OSError, AttributeError):
        return None


_SYNCFS = _load_syncfs()


class EvidenceStore:
    def __init__(self, root: str | Path, durable: bool = True):
        self.root = Path(root)
        self.durable = durable
        self._dirs: set[str] = set()

    def path(self, sha256: str) -> Path:
        return Path(self._file(sha256))

    def _file(self, sha256: str) -> str:
        if not _HEX64.match(sha256):
            raise ValueError(f"not a SHA-256 digest: {sha256!r}")
        return os.path.join(self.root, sha256[:2], sha256)

    def put(self, data: bytes) -> str:
        return self.put_many([data])[0]

    def put_many(self, blobs: Iterable[bytes | tuple[str, bytes]]) -> list[str]:
        """Store each blob (once per content) and return their SHA-256 digests. An item may be
        ``(digest, data)`` when the caller has just computed the digest of those very bytes."""
        digests, written = [], False
        for item in blobs:
            digest, data = item if isinstance(item, tuple) else (sha256_hex(item), item)
            digests.append(digest)
            written = self._write(digest, data, fsync=self.durable and _SYNCFS is None) or written
        if written and self.durable and _SYNCFS is not None:
            self._syncfs()
        return digests

    def _write(self, digest: str, data: bytes, fsync: bool) -> bool:
        """Write one file unless it is there already; plain ``os`` calls on string paths (this
        runs for every violation ingested)."""
        target = self._file(digest)
        if os.path.exists(target):
            return False
        parent = os.path.dirname(target)
        if parent not in self._dirs:
            os.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)
        # a name unique to this process and thread: concurrent writers never share a temp file
        tmp = f"{target}.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return True

    def _syncfs(self) -> None:
        fd = os.open(self.root, os.O_RDONLY)
        try:
            if _SYNCFS(fd) != 0:
                raise OSError(ctypes.get_errno(), "syncfs failed on the evidence store")
        finally:
            os.close(fd)

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def read(self, sha256: str, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` of a file (one image of a bundle)."""
        fd = os.open(self._file(sha256), os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.pread(fd, size, offset)
        finally:
            os.close(fd)
        if len(data) != size:
            raise OSError(f"evidence file {sha256} is shorter than {offset} + {size} bytes")
        return data

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

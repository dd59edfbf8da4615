"""Content-addressed evidence files: ``<root>/ab/<sha256>`` (256 folders). A file's name is the SHA-256 of
its bytes, so paths are never chosen by a client and identical images are stored once.

Durability: files are written to a temporary name and renamed into place; with ``durable`` a
batch is flushed to disk before ``put_many`` returns (one ``syncfs`` of the evidence filesystem
on Linux, else an fsync per file), i.e. before the database rows that name the files commit.
"""

from __future__ import annotations

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
        self._dirs: set[Path] = set()

    def path(self, sha256: str) -> Path:
        if not _HEX64.match(sha256):
            raise ValueError(f"not a SHA-256 digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        return self.put_many([data])[0]

    def put_many(self, blobs: Iterable[bytes | tuple[str, bytes]]) -> list[str]:
        """Store each blob (once per content) and return their SHA-256 digests. An item may be
        ``(digest, data)`` when the caller has just computed the digest of those very bytes."""
        digests, written = [], []
        for item in blobs:
            digest, data = item if isinstance(item, tuple) else (sha256_hex(item), item)
            digests.append(digest)
            target = self.path(digest)
            if target.exists():
                continue
            self._write(target, data, fsync=self.durable and _SYNCFS is None)
            written.append(target)
        if written and self.durable and _SYNCFS is not None:
            self._syncfs()
        return digests

    def _write(self, target: Path, data: bytes, fsync: bool) -> None:
        parent = target.parent
        if parent not in self._dirs:
            parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(parent)
        # a name unique to this process and thread: concurrent writers never share a temp file
        tmp = f"{target}.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _syncfs(self) -> None:
        fd = os.open(self.root, os.O_RDONLY)
        try:
            if _SYNCFS(fd) != 0:
                raise OSError(ctypes.get_errno(), "syncfs failed on the evidence store")
        finally:
            os.close(fd)

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

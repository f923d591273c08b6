"""The recorder's durable side: a directory of batch files on local disk.

One file per flush: a msgpack array of msgpack-encoded records, written to a temporary name,
fsync'd, renamed into place and the directory fsync'd, so a file either is whole or is not
there at all. Once Celery has accepted every record in it, the file moves to `sent/` (its
mtime then says when it was published); it is deleted only once every record in it is known
to have landed in the database. A crash anywhere in between sends it again later, which the
worker's idempotent insert absorbs.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import time
from pathlib import Path

import msgspec

log = logging.getLogger("tollgate.usage")
SUFFIX = ".usage"
SENT = "sent"  # the subdirectory of published files waiting for their records to land
_frames = msgspec.msgpack.Decoder(list[msgspec.Raw])


def pack(frames: list[bytes]) -> bytes:
    """Already-encoded msgpack values -> one msgpack array of them, without re-encoding."""
    n = len(frames)
    if n < 16:
        head = bytes([0x90 | n])
    elif n < 1 << 16:
        head = b"\xdc" + n.to_bytes(2, "big")
    else:
        head = b"\xdd" + n.to_bytes(4, "big")
    return head + b"".join(frames)


def frame_id(frame: bytes) -> str:
    """The id of a frame that is not a readable record (what the worker parks it under)."""
    return "frame_" + hashlib.sha256(frame).hexdigest()[:32]


def unpack(data: bytes) -> list[bytes]:
    """One batch -> its records, still encoded."""
    return [bytes(raw) for raw in _frames.decode(data)]


class Spool:
    """Batch files of one host; every process of the gateway may write and send them."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.sent_directory = self.directory / SENT
        self.pid = os.getpid()
        self._seq = itertools.count()

    def write(self, frames: list[bytes]) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{self.pid}-{next(self._seq)}"
        tmp = self.directory / (name + ".tmp")
        final = self.directory / (name + SUFFIX)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, pack(frames))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, final)
        self._sync_directory()
        return final

    def pending(self, *, orphaned_after: float) -> list[Path]:
        """Files to send, oldest first: this process's, and others' left for `orphaned_after` s."""
        if not self.directory.is_dir():
            return []
        mine = f"-{self.pid}-"
        cutoff = time.time() - orphaned_after
        found = []
        for path in sorted(self.directory.glob("*" + SUFFIX)):
            with contextlib.suppress(FileNotFoundError):  # another process sent it meanwhile
                if mine in path.name or path.stat().st_mtime < cutoff:
                    found.append(path)
        return found

    def mark_sent(self, path: Path) -> Path | None:
        """Celery took every record of `path`: keep it in `sent/`, published now. None if
        another process moved or deleted it first."""
        self.sent_directory.mkdir(exist_ok=True)
        target = self.sent_directory / path.name
        try:
            os.rename(path, target)
            os.utime(target)  # the mtime of a sent file is when it was (last) published
        except FileNotFoundError:
            return None
        return target

    def republished(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)

    def sent(self, *, orphaned_after: float) -> list[Path]:
        """Sent files to watch, oldest first: this process's, and others' not published again
        for `orphaned_after` s (their process is likely gone)."""
        try:
            names = sorted(os.listdir(self.sent_directory))
        except FileNotFoundError:
            return []
        mine = f"-{self.pid}-"
        cutoff = time.time() - orphaned_after
        found = []
        for name in names:
            if not name.endswith(SUFFIX):
                continue
            path = self.sent_directory / name
            if mine in name or (self.published_at(path) or cutoff) < cutoff:
                found.append(path)
        return found

    def published_at(self, path: Path) -> float | None:
        """When a sent file was last published (epoch seconds); None if it is gone."""
        try:
            return path.stat().st_mtime
        except FileNotFoundError:
            return None

    def read(self, path: Path) -> list[bytes] | None:
        """A file's records; None if it is gone (sent by another process) or unreadable."""
        try:
            return unpack(path.read_bytes())
        except FileNotFoundError:
            return None
        except msgspec.DecodeError:
            log.error("usage spool file %s is corrupt; kept as %s.bad", path, path.name)
            path.rename(path.with_suffix(".bad"))
            return None

    def remove(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

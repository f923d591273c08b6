"""The spool: whole files or none, records kept encoded, orphans taken over, corrupt set aside."""

import os
import time

import msgspec

from gateway.usage.spool import Spool, pack, unpack


def test_a_batch_is_one_msgpack_array_of_the_encoded_records():
    frames = [msgspec.msgpack.encode({"n": i}) for i in range(70_000)]

    data = pack(frames)

    assert msgspec.msgpack.decode(data) == [{"n": i} for i in range(70_000)]
    assert unpack(data) == frames
    assert unpack(pack(frames[:3])) == frames[:3]
    assert unpack(pack(frames[:20])) == frames[:20]


def test_written_files_are_read_back_and_listed_oldest_first(tmp_path):
    spool = Spool(tmp_path / "spool")
    first = spool.write([b"\x01"])
    second = spool.write([b"\x02", b"\x03"])

    assert spool.pending(orphaned_after=30) == [first, second]
    assert spool.read(second) == [b"\x02", b"\x03"]
    assert not list((tmp_path / "spool").glob("*.tmp"))
    spool.remove(first)
    spool.remove(first)  # twice is fine: another process may have sent it
    assert spool.pending(orphaned_after=30) == [second]


def test_another_process_files_are_taken_over_only_once_orphaned(tmp_path):
    mine, theirs = Spool(tmp_path), Spool(tmp_path)
    theirs.pid = os.getpid() + 1
    path = theirs.write([b"\x01"])

    assert mine.pending(orphaned_after=30) == []
    old = time.time() - 60
    os.utime(path, (old, old))
    assert mine.pending(orphaned_after=30) == [path]


def test_a_corrupt_file_is_set_aside(tmp_path):
    spool = Spool(tmp_path)
    path = spool.write([b"\x01"])
    path.write_bytes(b"\xdc\x00\x05")

    assert spool.read(path) is None
    assert spool.pending(orphaned_after=30) == []
    assert list(tmp_path.glob("*.bad"))

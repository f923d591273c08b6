"""The spool: whole files or none, records kept encoded, orphans taken over, corrupt set aside."""

import os
import time

import msgspec

from gateway.usage.spool import Spool, frame_id, pack, unpack


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


def test_a_sent_file_moves_aside_stamped_with_when_it_was_published(tmp_path):
    spool = Spool(tmp_path)
    path = spool.write([b"\x01"])
    old = time.time() - 60
    os.utime(path, (old, old))

    sent = spool.mark_sent(path)

    assert spool.pending(orphaned_after=30) == []
    assert spool.sent(orphaned_after=600) == [sent]
    assert spool.read(sent) == [b"\x01"]
    assert time.time() - spool.published_at(sent) < 5
    assert spool.mark_sent(path) is None  # already moved (by another process, say)


def test_another_process_sent_files_are_watched_only_once_orphaned(tmp_path):
    mine, theirs = Spool(tmp_path), Spool(tmp_path)
    theirs.pid = os.getpid() + 1
    path = theirs.mark_sent(theirs.write([b"\x01"]))

    assert mine.sent(orphaned_after=600) == []
    old = time.time() - 601
    os.utime(path, (old, old))
    assert mine.sent(orphaned_after=600) == [path]
    theirs.republished(path)
    assert mine.sent(orphaned_after=600) == []


def test_an_unreadable_frame_has_a_stable_id_of_its_own():
    assert frame_id(b"\x01\x02") == frame_id(b"\x01\x02") != frame_id(b"\x01")
    assert frame_id(b"\x01").startswith("frame_") and len(frame_id(b"\x01")) <= 40

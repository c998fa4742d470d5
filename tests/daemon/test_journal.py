"""The event journal: numbering, the bound, torn tails, kill -9, following."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carpctl.daemon import journal
from carpctl.daemon.journal import Journal, JournalError, follow, read
from carpctl.daemon.journal_reader import directory_of, segment_name, segments

# A writer in a process of its own: STATE_DIR MAX_BYTES KEEP COUNT PAUSE (COUNT 0: forever).
WRITER = """
import sys, time
from carpctl.daemon.journal import Journal
state_dir, max_bytes, keep, count, pause = sys.argv[1:]
j = Journal.open(state_dir, max_bytes=int(max_bytes), keep=int(keep))
print("open", j.seq, flush=True)
i = 0
while int(count) == 0 or i < int(count):
    j.record("check", name="web", old="up", new="down", detail="x" * (i % 300), n=i)
    i += 1
    time.sleep(float(pause))
j.close()
"""


def writer(state_dir: Path, max_bytes: int, keep: int, count: int, pause: float) -> Any:
    args = [str(state_dir), str(max_bytes), str(keep), str(count), str(pause)]
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, *args], stdout=subprocess.PIPE, text=True
    )


def seqs(state_dir: Path, **kwargs: Any) -> list[int]:
    return [r["seq"] for r in read(state_dir, **kwargs)]


def newest(state_dir: Path) -> Path:
    return segments(directory_of(state_dir))[-1][1]


def test_records_are_numbered_timed_and_read_back(tmp_path: Path) -> None:
    clock = iter([100.0, 101.5, 103.25])
    j = Journal.open(tmp_path, clock=lambda: next(clock))
    assert j.record("transition", vhid="1@lab0", old="BACKUP", new="MASTER", reason="x") == 1
    assert j.record("check", name="web", ok=False, amount=50, detail=None) == 2
    assert j.record("daemon", event="stop") == 3
    j.close()
    records = list(read(tmp_path))
    assert records[0] == {
        "seq": 1,
        "time": 100.0,
        "kind": "transition",
        "vhid": "1@lab0",
        "old": "BACKUP",
        "new": "MASTER",
        "reason": "x",
    }
    assert records[1] == {
        "seq": 2,
        "time": 101.5,
        "kind": "check",
        "name": "web",
        "ok": False,
        "amount": 50,
        "detail": None,
    }
    assert [r["kind"] for r in records] == ["transition", "check", "daemon"]
    assert seqs(tmp_path, since=101.5) == [2, 3]
    assert seqs(tmp_path, after_seq=1) == [2, 3]
    assert seqs(tmp_path, since=101.0, after_seq=2) == [3]


def test_fields_stay_flat_scalars_and_cannot_overwrite_the_header(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    fields: dict[str, Any] = {"seq": 99, "time": 0, "path": Path("/x"), "big": "y" * 5000}
    assert j.record("service", **fields) == 1
    j.record("service", nan=float("nan"), line="a\nb")
    j.close()
    first, second = read(tmp_path)
    assert (first["seq"], first["path"], len(first["big"])) == (1, "/x", journal.MAX_TEXT)
    assert first["time"] > 1e9
    assert (second["nan"], second["line"]) == ("nan", "a\nb")
    assert newest(tmp_path).read_bytes().count(b"\n") == 2


def test_seq_continues_across_reopen(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, max_bytes=200, keep=3)
    for _ in range(10):
        j.record("check", name="web")
    j.close()
    j = Journal.open(tmp_path, max_bytes=200, keep=3)
    assert j.seq == 10
    assert j.record("daemon", event="start") == 11
    j.close()
    assert seqs(tmp_path)[-2:] == [10, 11]


def test_an_empty_newest_segment_gives_the_seq_from_its_name(tmp_path: Path) -> None:
    """A crash just after a rotation created the next segment."""
    j = Journal.open(tmp_path)
    j.record("check")
    j.close()
    (directory_of(tmp_path) / segment_name(42)).touch()
    j = Journal.open(tmp_path)
    assert j.record("check") == 42
    j.close()
    assert seqs(tmp_path) == [1, 42]


def test_the_bound_holds_and_only_the_oldest_drop(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, max_bytes=1000, keep=4)
    for i in range(500):
        assert j.record("check", name="web", n=i, detail="z" * (i % 40)) == i + 1
        found = segments(directory_of(tmp_path))
        assert len(found) <= 4
        assert all(path.stat().st_size <= 1000 for _, path in found)
    j.close()
    kept = seqs(tmp_path)
    assert kept[-1] == 500
    assert kept[0] > 400  # four segments of 1000 bytes hold no more than ~60 records
    assert kept == list(range(kept[0], 501))  # nothing between the oldest kept and now lost
    assert segments(directory_of(tmp_path))[0][0] == kept[0]


@pytest.mark.parametrize(
    "tail",
    [b'{"seq":4,"time":1.0,"ki', b'{"seq":4,"time":1.0}\n', b"\0" * 300, b"\0\0\0\n\0\0"],
    ids=["half-line", "invalid-complete-line", "zeros", "zeros-with-newline"],
)
def test_a_torn_tail_is_skipped_and_repaired_on_open(tmp_path: Path, tail: bytes) -> None:
    j = Journal.open(tmp_path)
    for _ in range(3):
        j.record("check", name="web")
    j.close()
    path = newest(tmp_path)
    good = path.stat().st_size
    with path.open("ab") as handle:
        handle.write(tail)
    assert seqs(tmp_path) == [1, 2, 3]  # readers skip it
    j = Journal.open(tmp_path)
    assert path.stat().st_size == good  # repaired: cut back to the last good line
    assert j.record("check", name="db") == 4
    j.close()
    assert seqs(tmp_path) == [1, 2, 3, 4]
    assert all(json.loads(line) for line in path.read_bytes().splitlines())


def test_garbage_between_records_is_skipped(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    j.record("check")
    with newest(tmp_path).open("ab") as handle:
        handle.write(b"not json\n[1]\n")
    j._size += 14  # what the writer would know had it written the garbage itself
    j.record("check")
    j.close()
    assert seqs(tmp_path) == [1, 2]


def test_a_short_write_is_taken_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    j = Journal.open(tmp_path)
    j.record("check", name="first")
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, data[:10]))
    assert j.record("check", name="lost") == 0
    monkeypatch.undo()
    assert j.record("check", name="third") == 3
    j.close()
    assert [r["name"] for r in read(tmp_path)] == ["first", "third"]
    assert j.errors == 1


def test_record_never_raises_and_retries_opening(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state_dir should be")
    j = Journal.open(blocker)
    assert j.record("check", name="web") == 0
    assert j.errors == 2  # the open, then the record
    blocker.unlink()
    assert j.record("check") == 0  # not retried yet
    j._retry_at = 0.0  # RETRY seconds later
    assert j.record("check") == 1
    j.close()
    assert j.record("check") == 0  # closed: dropped quietly
    assert seqs(blocker) == [1]


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    first = Journal.open(tmp_path)
    second = Journal.open(tmp_path)
    assert first.record("check") == 1
    assert second.record("check") == 0
    assert second.errors >= 1
    first.close()
    second.close()


def test_kill_9_mid_write_leaves_a_readable_journal(tmp_path: Path) -> None:
    previous = 0
    for round_ in range(3):
        proc = writer(tmp_path, 65536, 50, 0, 0)
        assert proc.stdout is not None
        opened = next(line for line in proc.stdout if line.startswith("open"))
        assert opened.split() == ["open", str(previous)]
        time.sleep(0.1 + 0.05 * round_)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        for _, path in segments(directory_of(tmp_path)):
            for line in path.read_bytes().split(b"\n")[:-1]:  # every complete line parses
                assert journal.parse(line) is not None
        kept = seqs(tmp_path)
        assert kept == list(range(kept[0], kept[-1] + 1))
        assert kept[-1] > previous
        previous = kept[-1]
    j = Journal.open(tmp_path)
    assert j.record("daemon", event="start") == previous + 1
    j.close()


def test_reading_a_missing_or_unreadable_journal(tmp_path: Path) -> None:
    assert seqs(tmp_path) == []
    directory_of(tmp_path).write_text("not a directory")
    with pytest.raises(JournalError, match="cannot read the journal"):
        list(read(tmp_path))


def _next(records: Iterator[dict[str, Any]]) -> int:
    seq: int = next(records)["seq"]
    return seq


@pytest.mark.timeout(10)
def test_follow_yields_appends_across_rotations(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, max_bytes=300, keep=3)
    j.record("check")
    records = follow(tmp_path, interval=0.01)
    assert _next(records) == 1
    for n in range(2, 6):  # three or four records per segment: rotates
        j.record("check", n=n)
        assert _next(records) == n
    for _ in range(6):  # more than a segment between two looks
        j.record("check", detail="x" * 50)
    assert [_next(records) for _ in range(6)] == list(range(6, 12))
    j.close()
    records.close()


@pytest.mark.timeout(10)
def test_follow_from_another_process_with_since(tmp_path: Path) -> None:
    proc = writer(tmp_path, 400, 5, 30, 0.005)
    records = follow(tmp_path, since=time.time() - 60, interval=0.01)
    got = [_next(records) for _ in range(30)]
    assert proc.wait() == 0
    assert got == list(range(1, 31))
    assert len(segments(directory_of(tmp_path))) <= 5
    records.close()

"""The SQLite outbox: seq and boot counters, ordering, bounds and drop policy, durability."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.checks.model import Verdict
from agent.contract.payloads import (
    AttendancePayload,
    ChecksPayload,
    OutboxHealth,
    StatePayload,
    utc_now,
)
from agent.errors import TransportError
from agent.transport.outbox import FILENAME, Outbox

ROOT = Path(__file__).resolve().parent.parent


def open_box(tmp_path: Path, max_messages: int = 1000, max_bytes: int = 10_000_000) -> Outbox:
    return Outbox(
        tmp_path / FILENAME,
        prefix="vc",
        site_id="s1",
        max_messages=max_messages,
        max_bytes=max_bytes,
    )


def checks(pad: int = 0) -> ChecksPayload:
    now = utc_now()
    return ChecksPayload(
        site_id="s1",
        ts=now,
        trigger="interval",
        verdict=Verdict.READY,
        started_at=now,
        duration_s=0.1 + pad * 0.0,
        results=[],
    )


def state() -> StatePayload:
    return StatePayload(
        site_id="s1",
        ts=utc_now(),
        cause="check",
        verdict=Verdict.READY,
        components={},
        last_check=None,
        outbox=OutboxHealth(pending=0, pending_bytes=0, dropped_checks=0, refused=0),
    )


def attendance() -> AttendancePayload:
    return AttendancePayload(site_id="s1", ts=utc_now(), session_id="x", count=3, detector="t")


def names(box: Outbox) -> list[str]:
    return [r.name for r in box.pending(0, 10_000)]


def test_put_stamps_seq_and_boot_and_commits(tmp_path):
    box = open_box(tmp_path)
    boot = box.next_boot()
    a = box.put(checks())
    b = box.put(state())
    assert (a.seq, b.seq) == (1, 2)
    assert a.boot == b.boot == boot == 1
    rows = box.pending(0, 10)
    assert [r.seq for r in rows] == [1, 2]
    assert rows[1].topic == "vc/s1/state" and rows[1].retain
    assert rows[0].topic == "vc/s1/checks" and not rows[0].retain
    assert json.loads(rows[0].payload)["seq"] == 1


def test_seq_and_boot_continue_across_reopen(tmp_path):
    box = open_box(tmp_path)
    box.next_boot()
    box.put(checks())
    box.put(state())
    box.close()
    box = open_box(tmp_path)
    assert box.next_boot() == 2
    assert box.put(checks()).seq == 3
    assert [r.seq for r in box.pending(0, 10)] == [1, 2, 3]
    assert box.stats().pending == 3


def test_only_acked_rows_go_and_the_rest_stay_in_order(tmp_path):
    box = open_box(tmp_path)
    for _ in range(5):
        box.put(checks())
    first = box.pending(0, 3)
    assert [r.seq for r in first] == [1, 2, 3]
    assert [r.seq for r in box.pending(3, 10)] == [4, 5]
    box.ack([1, 3])
    box.release()  # connection lost: 2, 4, 5 are not delivered
    assert [r.seq for r in box.pending(0, 10)] == [2, 4, 5]
    assert box.stats().pending == 3


def test_refused_rows_are_kept_skipped_then_retried(tmp_path):
    box = open_box(tmp_path)
    for _ in range(3):
        box.put(checks())
    box.pending(0, 3)
    box.refuse(2, "Not authorized")
    assert [r.seq for r in box.pending(0, 10)] == [1, 3]
    assert box.stats().refused == 1
    assert box.refused_rows() == [(2, "vc/s1/checks", "Not authorized")]
    assert box.retry_refused() == 1
    assert [r.seq for r in box.pending(0, 10)] == [1, 2, 3]


def test_full_by_count_drops_oldest_checks_never_state_or_attendance(tmp_path):
    box = open_box(tmp_path, max_messages=10)
    made = []
    for i in range(16):
        payload = state() if i in (0, 9) else attendance() if i in (1, 10) else checks()
        made.append(box.put(payload))
    kept = box.pending(0, 100)
    assert len(kept) == 10
    kinds = [r.name for r in kept]
    assert kinds.count("state") == 2 and kinds.count("attendance") == 2
    # the six newest checks survive, in seq order; the six oldest were dropped and counted
    newest_checks = [p.seq for p in made if p.kind == "checks"][-6:]
    assert [r.seq for r in kept if r.name == "checks"] == newest_checks
    assert [r.seq for r in kept] == sorted(r.seq for r in kept)
    assert box.stats().dropped_checks == 6


def test_full_by_bytes_drops_oldest_checks(tmp_path):
    size = len(checks().model_copy(update={"seq": 1, "boot": 0}).to_bytes())
    box = open_box(tmp_path, max_bytes=size * 5 + size // 2)
    for _ in range(8):
        box.put(checks())
    assert [r.seq for r in box.pending(0, 100)] == [4, 5, 6, 7, 8]
    assert box.stats().dropped_checks == 3
    assert box.stats().pending_bytes <= size * 5 + size // 2


def test_full_of_state_drops_the_new_checks_and_still_takes_state(tmp_path, caplog):
    box = open_box(tmp_path, max_messages=10)
    for _ in range(10):
        box.put(state())
    dropped = box.put(checks())
    assert dropped.seq == 11  # the number is used up: the centre sees a counted gap
    assert names(box) == ["state"] * 10
    assert box.stats().dropped_checks == 1
    box.put(state())  # never dropped, even over the bound
    assert box.stats().pending == 11
    assert "nothing droppable" in caplog.text


def test_checks_in_flight_are_not_evicted(tmp_path):
    box = open_box(tmp_path, max_messages=4)
    for _ in range(4):
        box.put(checks())
    box.pending(0, 2)  # 1 and 2 are on the wire
    box.put(checks())
    assert [r.seq for r in box.pending(2, 10)] == [4, 5]
    box.ack([1, 2])
    assert box.stats().pending == 2


def test_drop_count_survives_reopen(tmp_path):
    box = open_box(tmp_path, max_messages=10)
    for _ in range(15):
        box.put(checks())
    box.close()
    assert open_box(tmp_path, max_messages=10).stats().dropped_checks == 5


def test_live_boot_is_recorded_for_the_historical_flag(tmp_path):
    box = open_box(tmp_path)
    box.put(checks())  # link down
    box.set_live_boot(7)
    box.put(checks())
    rows = box.pending(0, 10)
    assert [r.live_boot for r in rows] == [None, 7]


def test_unwritable_state_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TransportError, match="outbox"):
        Outbox(blocker / FILENAME, prefix="vc", site_id="s1", max_messages=10, max_bytes=10**6)


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from tests.test_outbox import open_box, checks
    box = open_box(Path({path!r}))
    while True:
        seq = box.put(checks()).seq
        sys.stdout.write(f"{{seq}}\\n")
        sys.stdout.flush()
    """
)


def test_kill_9_loses_nothing_that_put_returned(tmp_path):
    """A report counts as queued when put() returns; kill -9 at any moment keeps it."""
    code = WRITER.format(root=str(ROOT), path=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acknowledged = []
    for line in proc.stdout:
        acknowledged.append(int(line))
        if len(acknowledged) == 150:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(5)
    box = open_box(tmp_path)
    on_disk = set(box.all_seqs())
    assert set(acknowledged) <= on_disk
    assert box.last_seq >= acknowledged[-1]
    assert box.put(checks()).seq > max(on_disk)  # numbering never goes back

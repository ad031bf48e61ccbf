"""A report the broker acknowledged to a site (the agent then deletes it from its outbox) is
the centre's to keep. The centre (`edge-agent centre serve`, a real subprocess) is killed with
-9 again and again while 40 sites publish ~1,600 reports/s through a real mosquitto, each time
while another process's lock holds its writer up: at the end every acknowledged report is in
its database. Also: a held-up writer leaves the backlog at the broker (Receive Maximum), a
refused report is acknowledged once logged, and a full disk keeps reports unacknowledged until
they can be stored."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.centre import ingest as ingest_module
from agent.centre.ingest import Ingest
from agent.centre.settings import CentreSettings
from agent.sim.broker import Mosquitto
from agent.sim.fleet_site import SimSite
from agent.transport.listener import Listener, Received
from tests.bench_kit import load_bench
from tests.faults.test_disk_full_faults import _mount_tmpfs as mount_tmpfs
from tests.fixtures.broker import ROOT, dump_toml, wait_until

pytestmark = pytest.mark.broker

KILLS = 5
SITES = 40
PERIOD_S = 0.025  # a state from each site every 25 ms: ~1,600 reports/s in all
UP_S = 1.5  # how long each centre runs under load before it is killed
HELD_S = 0.7  # of which the last part with its writer held up


def start_centre(config: Path, log: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "centre", "serve", "--config", str(config),
         "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=log.open("a"), text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed once the live subscription is granted
    assert "storing" in line, log.read_text()
    return proc


def hold_write_lock(db: Path) -> sqlite3.Connection:
    con = sqlite3.connect(db, timeout=30, isolation_level=None, check_same_thread=False)
    con.execute("BEGIN IMMEDIATE")
    return con


def stored(db: Path) -> dict[str, set[int]]:
    have: dict[str, set[int]] = {}
    with sqlite3.connect(db, timeout=30) as con:
        for site_id, seq in con.execute("SELECT site_id, seq FROM reports"):
            have.setdefault(site_id, set()).add(seq)
    return have


def test_centre_killed_under_load_loses_no_acknowledged_report(broker: Mosquitto, tmp_path):
    fleet = load_bench("fleet")
    db = tmp_path / "centre.sqlite"
    config = tmp_path / "centre.toml"
    config.write_text(
        dump_toml(
            {
                "broker": broker.broker_settings("centre"),
                "db_path": str(db),
                "retained_wait_s": 0.0,
                "report_interval_s": 60.0,
            }
        )
    )
    log = tmp_path / "centre.log"
    clients = [fleet.SiteClient(SimSite(f"k{i:03d}")) for i in range(SITES)]

    def missing() -> dict[str, set[int]]:
        have = stored(db)
        gone = {
            c.site.site_id: set(c.acked_seqs) - have.get(c.site.site_id, set()) for c in clients
        }
        return {site: seqs for site, seqs in gone.items() if seqs}

    async def scenario() -> subprocess.Popen[str]:
        # The first start makes the centre's persistent session: from then on the broker keeps
        # what is addressed to it while it is down.
        centre = await asyncio.to_thread(start_centre, config, log)
        for c in clients:
            await c.connect(broker.port)
        loop = asyncio.get_running_loop()
        load = [
            asyncio.create_task(fleet.drive(c, {"state": PERIOD_S}, loop.time() + 3600))
            for c in clients
        ]
        for _ in range(KILLS):
            await asyncio.sleep(UP_S - HELD_S)
            # Another process holds the database's write lock (a second centre process, the
            # dashboard, a slow disk): the writer waits, reports pile up, then the kill.
            holder = await asyncio.to_thread(hold_write_lock, db)
            await asyncio.sleep(HELD_S)
            centre.kill()
            await asyncio.to_thread(centre.wait)
            holder.close()  # ROLLBACK: it wrote nothing
            centre = await asyncio.to_thread(start_centre, config, log)
        for task in load:
            task.cancel()
        await asyncio.gather(*load, return_exceptions=True)
        end = loop.time() + 10
        while any(c.unacked for c in clients) and loop.time() < end:
            await asyncio.sleep(0.1)
        for c in clients:
            await c.close()
        return centre

    centre = asyncio.run(scenario())
    try:
        acked = sum(len(c.acked_seqs) for c in clients)
        assert acked > 10_000, "the load did not run"
        assert not any(c.unacked for c in clients), "the broker did not acknowledge everything"
        deadline = time.monotonic() + 30
        gone = missing()
        while gone and time.monotonic() < deadline:
            time.sleep(0.5)
            gone = missing()
        lost = sum(len(s) for s in gone.values())
        some = {site: sorted(seqs)[:5] for site, seqs in list(gone.items())[:5]}
        assert lost == 0, f"{lost} of {acked} acknowledged reports lost, e.g. {some}"
    finally:
        centre.terminate()
        centre.wait(15)


def test_held_up_writer_leaves_the_backlog_at_the_broker_and_bad_reports_are_acked(
    broker: Mosquitto, tmp_path, monkeypatch
):
    """The live subscription's Receive Maximum bounds what the centre holds unacknowledged:
    with its writer held up, the broker keeps the rest, and delivers it once the writer goes
    on. A refused report is acknowledged once logged: the next centre does not get it again."""
    monkeypatch.setattr(ingest_module, "IN_FLIGHT", 50)
    settings = CentreSettings.model_validate(
        {
            "broker": broker.broker_settings("centre"),
            "db_path": str(tmp_path / "centre.sqlite"),
            "retained_wait_s": 0.0,
        }
    )
    site = SimSite("b1")
    reports = [site.checks() for _ in range(300)]  # not retained: nothing comes back on subscribe
    first = Ingest(settings).start()
    holder: sqlite3.Connection | None = None
    with Listener(broker.endpoint(), ["vc/nothing"]) as publisher:
        try:
            publisher.publish("vc/b1/state", b"not json", 1, False)
            assert wait_until(lambda: first.rejected == 1, 5)
            holder = hold_write_lock(settings.db_path)
            # Counted as the broker hands them over: the writer's stuck batch holds however
            # many it took at once (CI saw the queue alone stop at 39), the window is the sum.
            handed = [0]
            assert first._live is not None
            deliver = first._live._on_message
            assert deliver is not None

            def counted(m: Received) -> None:
                handed[0] += 1
                deliver(m)

            first._live._on_message = counted
            for topic, payload, retain in reports:
                publisher.publish(topic, payload, 1, retain)
            # the writer is stuck with one batch; the broker sends up to the window, no further
            assert wait_until(lambda: handed[0] >= 50, 15)
            time.sleep(0.5)
            assert handed[0] == 50
            holder.close()
            holder = None
            assert wait_until(lambda: len(stored(settings.db_path).get("b1", ())) == 300, 10)
        finally:
            if holder is not None:
                holder.close()
            first.stop()
    second = Ingest(settings).start()
    try:
        time.sleep(0.5)  # what the broker still held for the session would arrive now
        assert (second.rejected, second.stored) == (0, 0)
    finally:
        second.stop()


def test_full_disk_keeps_reports_unacknowledged_until_they_can_be_stored(
    broker: Mosquitto, tmp_path, caplog
):
    """The database's disk fills up (a real 2 MB tmpfs): the centre logs it, keeps the batch
    and does not acknowledge it; once space returns every report is stored, none refused."""
    where = tmp_path / "db"
    why_not = mount_tmpfs(where)
    if why_not is not None:
        pytest.skip(why_not)
    settings = CentreSettings.model_validate(
        {
            "broker": broker.broker_settings("centre"),
            "db_path": str(where / "centre.sqlite"),
            "retained_wait_s": 0.0,
        }
    )
    site = SimSite("f1")
    centre = Ingest(settings).start()
    filler = where / "filler"
    try:
        with Listener(broker.endpoint(), ["vc/nothing"]) as publisher:
            publisher.publish(*site.checks()[:2], 1, False)
            assert wait_until(lambda: centre.stored == 1, 5)
            with filler.open("wb") as out, contextlib.suppress(OSError):
                while out.write(b"\0" * 65536):
                    out.flush()
            for _ in range(100):
                publisher.publish(*site.checks()[:2], 1, False)
            assert wait_until(lambda: "cannot store" in caplog.text, 10), caplog.text
            filler.unlink()
            assert wait_until(lambda: len(stored(settings.db_path).get("f1", ())) == 101, 10)
        assert (centre.rejected, centre.stored) == (0, 101)
    finally:
        centre.stop()
        subprocess.run(["umount", "-l", str(where)], check=False)

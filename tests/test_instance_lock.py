"""`centre serve --instance X` on PostgreSQL keeps its serve lock across a lost database
connection (agent/centre/instance_lock.py): a real serve process on a real PostgreSQL of its
own, restarted under it; and, should another process take the lock meanwhile, the serve
stops with the catalogue's message rather than run beside it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from agent.centre.instance_lock import SERVE_LOCK, instance_key
from agent.sim.broker import Mosquitto
from agent.sim.postgres import Postgres
from tests.fixtures.broker import ROOT, dump_toml, wait_until

pytestmark = pytest.mark.broker

INSTANCE = "a"
ENGLISH = {**os.environ, "LC_ALL": "C.UTF-8"}  # the messages asserted below
_HOLDER = (
    "SELECT a.application_name, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s"
    " AND l.objsubid = 2"
)


def holder(url: str) -> tuple[str, int] | None:
    """Who holds instance a's serve lock, as pg_locks says: (application_name, backend pid)."""
    try:
        with psycopg.connect(url, connect_timeout=2) as con:
            row = con.execute(_HOLDER, (SERVE_LOCK, instance_key(INSTANCE) & 0xFFFFFFFF)).fetchone()
    except psycopg.OperationalError:
        return None  # the server is not up (yet)
    return (str(row[0]), int(row[1])) if row else None


@pytest.fixture
def setup(own_postgres: Postgres, tmp_path: Path) -> Iterator[tuple[Postgres, str, Path]]:
    url = own_postgres.url(own_postgres.create_database())
    broker = Mosquitto(tmp_path / "broker").start()
    config = tmp_path / "centre.toml"
    # Alerts off: the lock is the subject, and the notification queue's thread dies when the
    # database is away as it starts (not this test's matter).
    config.write_text(dump_toml({
        "broker": broker.broker_settings("centre"), "db_url": url, "retained_wait_s": 0.0,
        "alerts": {"enabled": False},
    }))  # fmt: skip
    try:
        yield own_postgres, url, config
    finally:
        broker.stop()


def serve(config: Path, log: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "centre", "serve", "--config",
         str(config), "--instance", INSTANCE, "--log-level", "info"],
        cwd=ROOT, env=ENGLISH, stdout=subprocess.PIPE, stderr=log.open("a"), text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    if "storing" not in proc.stdout.readline():  # said once the lock is held
        proc.kill()
        pytest.fail(log.read_text())
    return proc


def second_serve(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "centre", "serve", "--config",
         str(config), "--instance", INSTANCE, "--seconds", "5"],
        cwd=ROOT, env=ENGLISH, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_serve_takes_its_lock_back_after_postgresql_restarts(setup, tmp_path):
    server, url, config = setup
    log = tmp_path / "serve.log"
    proc = serve(config, log)
    me = f"edge-agent serve {proc.pid}@{socket.gethostname()}"
    try:
        before = holder(url)
        assert before is not None and before[0] == me
        server.stop("immediate")  # a crash: every session ends, the lock with it
        server.start()
        back = wait_until(lambda: (h := holder(url)) is not None and h[0] == me, 5)
        assert back, log.read_text()
        assert holder(url) != before  # a new session of the same process
        assert proc.poll() is None  # serving on
        refused = second_serve(config)
        assert refused.returncode != 0, refused
        assert "is already running" in refused.stderr and f"pid {proc.pid}@" in refused.stderr
        text = log.read_text()
        assert "lost the serve lock of instance a" in text
        assert "holds the serve lock of instance a again" in text
    finally:
        proc.terminate()
        assert proc.wait(20) == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def test_serve_stops_when_another_process_took_its_lock_meanwhile(setup, tmp_path):
    _server, url, config = setup
    log = tmp_path / "serve.log"
    proc = serve(config, log)
    try:
        held = holder(url)
        assert held is not None
        with psycopg.connect(
            url, autocommit=True, application_name="edge-agent serve 999@elsewhere"
        ) as other:
            # The serve's lock session ends (as in a restart); this one waits for the lock and
            # has it the moment that session is gone, before the serve's next try (1 s on).
            other.execute("SELECT pg_terminate_backend(%s, 5000)", (held[1],))
            other.execute("SELECT pg_advisory_lock(%s, %s)", (SERVE_LOCK, instance_key(INSTANCE)))
            assert proc.wait(15) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text()
    assert text.count("another process (999@elsewhere) took the serve lock of instance a") == 1
    assert "centre serve --instance 'a' stopped: another process (pid 999@elsewhere)" in text
    assert "Traceback" not in text
    # Not a clean stop: the instance's link row (and broker session) are the other's now.
    with psycopg.connect(url) as con:
        assert con.execute("SELECT count(*) FROM centre_link WHERE instance = 'a'").fetchone() == (
            1,
        )

"""A centre instance stopped cleanly (`systemctl stop` for maintenance) while another runs
(docs/scaling.md, "A cleanly stopped instance"): two real `edge-agent centre serve` processes
share the broker's shared subscription and one store; 40 simulated sites report under load;
one process gets SIGTERM and the load goes on. mosquitto keeps giving an offline member's
persistent session its share of the group's messages: unless the stopping instance leaves
the group first, that share waits in its session until it starts again. Every report the
broker acknowledged must be stored within a few seconds, by the instance still running."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from agent.sim.broker import Mosquitto
from agent.transport.listener import Listener
from tests.fixtures.broker import dump_toml, wait_until
from tests.test_centre_failover import Fleet, serve, stop_all, stored

pytestmark = pytest.mark.broker


def test_a_listener_leaves_a_filter_and_a_reconnect_does_not_take_it_again(
    broker: Mosquitto,
) -> None:
    """Listener.unsubscribe from another thread: answered by the UNSUBACK, the connection
    kept; after the broker restarts, the persistent session resumed without that filter."""
    listener = Listener(broker.endpoint(client_id="leaver"), ["t/kept", "t/left"]).start()
    sender = Listener(broker.endpoint(client_id="sender"), ["t/nothing"]).start()
    try:
        assert listener.unsubscribe(["t/left"], 5.0)
        connects = listener.connects
        broker.restart()
        assert wait_until(lambda: listener.connects > connects, 10)
        for topic in ("t/left", "t/kept", "t/left", "t/kept"):
            sender.publish(topic, b"{}")
        assert listener.wait_for(lambda seen: len(seen) >= 2, 5)
        time.sleep(0.3)
        assert [m.topic for m in listener.messages()] == ["t/kept", "t/kept"]
    finally:
        sender.stop()
        listener.stop()


AFTER_S = 2.0  # the load goes on this long after the stop, to the other instance alone
WITHIN_S = 5.0  # every acknowledged report stored this soon after the load ends
HANDOVER = "its share of the reports goes to the other instances"


def test_a_cleanly_stopped_instance_leaves_no_report_in_its_session(
    broker: Mosquitto, store_location: Path | str, tmp_path: Path
) -> None:
    config = tmp_path / "centre.toml"
    where = {"db_path": str(store_location)} if isinstance(store_location, Path) else {
        "db_url": store_location}  # fmt: skip
    config.write_text(dump_toml({
        "broker": broker.broker_settings("centre"), **where,
        "report_interval_s": 1.0, "silent_after": 3.0, "retained_wait_s": 0.0,
    }))  # fmt: skip
    logs = {i: tmp_path / f"centre-{i}.log" for i in "ab"}
    procs: dict[str, subprocess.Popen[str]] = {}
    fleet = Fleet(broker.port)
    try:
        procs["a"], _ = serve(config, "a", logs["a"])
        procs["b"], _ = serve(config, "b", logs["b"])
        fleet.start()
        time.sleep(1.5)  # the load under way, both storing
        began = time.monotonic()
        procs["a"].terminate()  # SIGTERM: a clean stop
        assert procs["a"].wait(30) == 0, logs["a"].read_text()
        stopping_s = time.monotonic() - began
        time.sleep(AFTER_S)
        fleet.stop()
        acked = {c.site.site_id: set(c.acked_seqs) for c in fleet.clients}
        total = sum(map(len, acked.values()))
        assert total > 500, "the load did not run"

        def missing() -> int:
            have = stored(store_location)
            return sum(len(s - have.get(site, set())) for site, s in acked.items())

        ended = time.monotonic()
        wait_until(lambda: missing() == 0, WITHIN_S)
        lost, took = missing(), time.monotonic() - ended
        print(f"\nclean stop took {stopping_s:.2f} s; reports acknowledged {total}, not stored "
              f"{lost} ({took:.1f} s after the load ended)")  # fmt: skip
        assert lost == 0, logs["a"].read_text()[-2000:]
        assert HANDOVER in logs["a"].read_text()
        # The last one running stops as a single centre does: its session stays subscribed,
        # to keep queueing for its restart.
        procs["b"].terminate()
        assert procs["b"].wait(30) == 0
        assert HANDOVER not in logs["b"].read_text()
    finally:
        stop_all(fleet, procs)

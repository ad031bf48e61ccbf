"""Network path: pure statistics and a real TCP probe on 127.0.0.1."""

import shutil
import socket

import pytest

from agent.checks.model import Status
from agent.checks.network_metrics import PathStats, judge_network
from agent.config import NetworkSettings, Settings
from agent.probes.network import check_network

CFG = NetworkSettings()


def test_stats():
    s = PathStats("broker_tcp", 5, (10.0, 12.0, 11.0, 15.0))
    assert s.loss_pct == 20.0
    assert s.rtt_ms == 11.5
    assert s.jitter_ms == pytest.approx((2 + 1 + 4) / 3)


@pytest.mark.parametrize(
    ("rtts", "sent", "status"),
    [
        ((5.0, 5.0, 5.0), 3, Status.OK),
        ((200.0, 200.0), 2, Status.WARN),
        ((500.0,), 1, Status.FAIL),
        ((5.0, 50.0, 5.0, 50.0), 4, Status.WARN),  # jitter 45 ms
        ((5.0,) * 9, 10, Status.WARN),  # 10 % loss
        ((5.0,) * 3, 4, Status.FAIL),  # 25 % loss
        ((), 5, Status.FAIL),
    ],
)
def test_judge(rtts, sent, status):
    assert judge_network([PathStats("mcu_tcp", sent, rtts)], CFG).status is status


def test_no_targets_is_skipped_with_hint():
    outcome = judge_network([], CFG)
    assert outcome.status is Status.SKIPPED
    assert "network.targets" in outcome.hint


def settings_with(targets):
    return Settings(
        site={"site_id": "t", "name": "t", "tier": "commune"},
        network={"targets": targets, "samples": 3, "interval_s": 0},
    )


def test_real_tcp_probe_against_a_listener():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        port = server.getsockname()[1]
        outcome = check_network(
            settings_with([{"name": "broker", "host": "127.0.0.1", "port": port}])
        )
    assert outcome.status is Status.OK
    assert outcome.metrics["broker_tcp_loss_pct"] == 0.0
    assert 0 < outcome.metrics["broker_tcp_rtt_ms"] < 50


def test_real_tcp_probe_refused_port_fails():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connection refused
        outcome = check_network(settings_with([{"name": "mcu", "host": "127.0.0.1", "port": port}]))
    assert outcome.status is Status.FAIL
    assert "mcu_tcp unreachable" in outcome.reason
    assert "refused" in outcome.reason.lower()
    assert outcome.metrics["mcu_tcp_loss_pct"] == 100.0


@pytest.mark.skipif(shutil.which("ping") is None, reason="iputils-ping is installed by ./run")
def test_icmp_through_the_system_ping():
    settings = Settings(
        site={"site_id": "t", "name": "t", "tier": "commune"},
        network={
            "targets": [{"name": "lo", "host": "127.0.0.1", "port": 9}],
            "samples": 2,
            "icmp": True,
        },
    )
    outcome = check_network(settings)
    # the TCP path to port 9 is refused, ICMP to loopback answers: both are reported
    assert outcome.metrics["lo_tcp_loss_pct"] == 100.0
    assert outcome.metrics["lo_icmp_loss_pct"] == 0.0
    assert outcome.metrics["lo_icmp_rtt_ms"] < 10

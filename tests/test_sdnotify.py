"""sd_notify over a real AF_UNIX datagram socket, as systemd listens for it."""

import socket

from agent.system.sdnotify import Notifier


def test_notifies_a_path_socket(tmp_path):
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(1)
        n = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "30000000"})
        assert n.enabled
        assert n.watchdog_interval_s == 15.0
        assert n.ready()
        assert server.recv(64) == b"READY=1"
        assert n.watchdog()
        assert server.recv(64) == b"WATCHDOG=1"
        assert n.stopping()
        assert server.recv(64) == b"STOPPING=1"


def test_abstract_socket():
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0edge-agent-test-notify")
        server.settimeout(1)
        assert Notifier({"NOTIFY_SOCKET": "@edge-agent-test-notify"}).ready()
        assert server.recv(64) == b"READY=1"


def test_outside_systemd_is_a_no_op():
    n = Notifier({})
    assert not n.enabled
    assert n.watchdog_interval_s is None
    assert not n.ready()


def test_gone_socket_is_reported_not_raised(tmp_path):
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "missing")}).watchdog()

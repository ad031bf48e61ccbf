"""Store-and-forward through real outages: the broker stopped and restarted while the agent
reports, and the agent killed -9 in the middle of draining its backlog."""

from __future__ import annotations

import time

import pytest

from agent.transport.listener import Received
from tests.fixtures.broker import AgentProcess, agent_config, seqs, wait_until

pytestmark = pytest.mark.broker

REPORTS = ("checks", "state")


def first_arrivals(messages: list[Received]) -> list[int]:
    """seq of each report the first time it arrived (later copies are at-least-once resends)."""
    seen: set[int] = set()
    order = []
    for seq in seqs(messages, *REPORTS):
        if seq not in seen:
            seen.add(seq)
            order.append(seq)
    return order


def by_seq(messages: list[Received]) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for m in messages:
        if m.topic.rsplit("/", 1)[-1] in REPORTS:
            out.setdefault(int(m.json()["seq"]), m.json())
    return out


def test_broker_outage_loses_nothing_and_keeps_seq_order(broker, centre, run_agent, tmp_path):
    live = centre(broker, ("vc/s1/checks", "vc/s1/state"))
    config = agent_config(broker, tmp_path / "state", check_interval_s=0.1, drain_rate_per_s=50)
    agent = run_agent(config)
    outbox = agent.agent.outbox
    assert live.wait_for(lambda ms: len(ms) >= 6, 5)

    broker.stop()
    went_down = outbox.last_seq
    # The agent keeps checking and everything goes to the outbox; count the backlog rather
    # than sleep a fixed time (each self-test runs in a child process, slower under load).
    assert wait_until(lambda: outbox.stats().pending >= 10, 30), outbox.stats()
    came_back = outbox.last_seq
    broker.start()

    assert wait_until(lambda: outbox.stats().pending <= 2, 10), outbox.stats()

    # The subscriber reconnects on its own backoff, possibly after the agent has drained:
    # what the broker queued for its session arrives then (seen in CI: the test stopped
    # first and counted 11 reports as lost). A real loss still fails below.
    def delivered() -> bool:
        got = set(first_arrivals(live.messages())) | set(outbox.all_seqs())
        return set(range(1, outbox.last_seq + 1)) <= got

    wait_until(delivered, 15)
    agent.stop()
    reopened = agent.agent.outbox.from_settings(agent.settings)
    try:
        undelivered = set(reopened.all_seqs())  # never acknowledged: not claimed as sent
        last = reopened.last_seq
    finally:
        reopened.close()

    order = first_arrivals(live.messages())
    assert order == sorted(order), "reports arrived out of seq order"
    missing = set(range(1, last + 1)) - set(order) - undelivered
    assert not missing, f"lost: {sorted(missing)}"
    assert len(undelivered) <= 2

    received = by_seq(live.messages())
    # made while the broker was away -> historical; made while connected -> live
    outage = [received[s] for s in range(went_down + 2, came_back + 1)]
    assert outage and all(r["historical"] for r in outage)
    assert not any(received[s]["historical"] for s in range(1, went_down - 1))


def pending(agent):
    box = agent.outbox()
    try:
        return box.stats().pending
    finally:
        box.close()


def test_kill_9_mid_drain_loses_nothing(broker, centre, tmp_path):
    live = centre(broker, ("vc/s1/checks", "vc/s1/state", "vc/s1/availability"))
    config = agent_config(
        broker, tmp_path / "state", check_interval_s=0.25, drain_rate_per_s=8, max_inflight=4
    )
    agent = AgentProcess(config, tmp_path).start()
    assert live.wait_for(lambda ms: len(seqs(ms, *REPORTS)) >= 4, 10), agent.log()

    broker.stop()
    # Each self-test runs in a child process (~0.5 s), so count the backlog, not the time.
    assert wait_until(lambda: pending(agent) >= 15, 30), agent.log()
    broker.start()
    # draining at 8/s while ~3/s more are made: kill it well before the backlog is gone
    assert live.wait_for(lambda ms: any(m.json().get("historical") for m in ms), 5), agent.log()
    time.sleep(0.3)
    agent.kill()
    box = agent.outbox()
    try:
        left_at_kill = box.stats().pending
    finally:
        box.close()
    assert left_at_kill >= 5, "not mid-drain: the backlog was already gone"
    boot_before = max(m.json()["boot"] for m in live.messages())

    agent.start()
    box = agent.outbox()
    try:
        queued_by_first = box.last_seq
    finally:
        box.close()

    def drained(ms: list[Received]) -> bool:
        return set(range(1, queued_by_first + 1)) <= set(seqs(ms, *REPORTS))

    assert live.wait_for(drained, 10), agent.log()
    assert agent.terminate() == 0
    order = first_arrivals(live.messages())
    assert order == sorted(order)
    # the restarted agent announced itself with a new boot, after the killed one's
    avail = [m.json() for m in live.messages() if m.topic.endswith("/availability")]
    assert any(a["status"] == "online" and a["boot"] > boot_before for a in avail)

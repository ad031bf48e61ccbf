"""The centre's broker killed (-9) or stopped, and restarted, 20 times while the agent reports.

What "availability flips correctly" means here: a will cannot fire when the broker itself
dies, so after each restart the agent must (a) reconnect with a new `boot`, (b) republish
`availability: online` (retained: a subscriber arriving later is told `online` with the new
boot, even when the broker lost its retained store in a kill -9), `meta` of that boot and a
`state` with cause `birth`, and (c) deliver every report it made, the ones made while the
broker was away included. At the end a clean stop leaves `offline` (clean shutdown) retained.

A kill -9 also loses the centre's own persistent session (mosquitto saves it only on a clean
stop), so for those cycles the agent is paused (SIGSTOP) while the broker comes back until
the centre has subscribed again: otherwise reports acknowledged by the broker before the
centre resubscribed would be lost by the broker, not by the agent. Reporting continues
through the whole outage; only the reconnect moment is held.
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest

from agent.transport.listener import Listener, Received
from tests.faults.faultkit import lost, outbox_view, queued_seqs, say, seeded
from tests.fixtures.broker import AgentProcess, agent_config, wait_until

pytestmark = pytest.mark.broker

RESTARTS = 20


def _payloads(messages: list[Received], suffix: str) -> list[dict]:
    return [m.json() for m in messages if m.topic.endswith("/" + suffix)]


def _resubscribed(live: Listener, n: int) -> bool:
    """The centre's subscription works again: a probe it publishes comes back to it."""
    topic = f"vc/s1/probe/{n}"
    for _ in range(50):
        live.publish(topic, b"probe")
        if live.wait_for(lambda ms: any(m.topic == topic for m in ms), 0.1):
            return True
    return False


def _retained_availability(broker) -> dict | None:
    """What a subscriber arriving now is told (the retained availability)."""
    fresh = Listener(broker.endpoint(), ["vc/s1/availability"]).start()
    try:
        if not fresh.wait_for(bool, 2):
            return None
        return fresh.messages()[0].json()
    finally:
        fresh.stop()


def test_broker_killed_and_restarted_20_times_loses_no_report(broker, centre, tmp_path):
    name = "broker-restarts"
    rng, _seed = seeded(name)
    live = centre(broker, ("vc/s1/#",))
    config = agent_config(broker, tmp_path / "state", check_interval_s=0.1, drain_rate_per_s=50)
    agent = AgentProcess(config, tmp_path).start()
    began = time.monotonic()
    how_counts: Counter[str] = Counter()
    outages: list[float] = []
    reconnects: list[float] = []
    problems: list[str] = []
    try:
        assert live.wait_for(lambda ms: len(_payloads(ms, "state")) >= 2, 10), agent.log()
        boot = max(a["boot"] for a in _payloads(live.messages(), "availability"))
        for cycle in range(RESTARTS):
            # Reporting is going on: at least two new reports since the last reconnect.
            n = len(queued_seqs(live.messages()))
            assert live.wait_for(lambda ms, n=n: len(queued_seqs(ms)) >= n + 2, 10), (
                cycle,
                agent.log()[-3000:],
            )
            how = rng.choice(["kill -9", "terminate"])
            how_counts[how] += 1
            (broker.kill if how == "kill -9" else broker.stop)()
            outage = rng.uniform(0.05, 0.6)
            outages.append(outage)
            time.sleep(outage)  # the injected outage: the agent keeps checking meanwhile
            assert agent.proc is not None
            if how == "kill -9":
                agent.proc.send_signal(signal.SIGSTOP)
                broker.start()
                resubscribed = _resubscribed(live, cycle)
                agent.proc.send_signal(signal.SIGCONT)
                assert resubscribed, f"cycle {cycle}: the centre did not resubscribe"
            else:
                broker.start()
            back = time.monotonic()

            def reborn(ms: list[Received], old: int = boot) -> bool:
                online = [
                    a
                    for a in _payloads(ms, "availability")
                    if a["status"] == "online" and a["boot"] > old
                ]
                if not online:
                    return False
                new = online[-1]["boot"]
                meta = any(m["boot"] == new for m in _payloads(ms, "meta"))
                state = any(
                    s["boot"] == new and s["cause"] == "birth" for s in _payloads(ms, "state")
                )
                return meta and state

            assert live.wait_for(reborn, 10), (cycle, agent.log()[-3000:])
            reconnects.append(time.monotonic() - back)
            boot = max(
                a["boot"]
                for a in _payloads(live.messages(), "availability")
                if a["status"] == "online"
            )
            retained = _retained_availability(broker)
            if retained is None or retained["status"] != "online" or retained["boot"] != boot:
                problems.append(f"cycle {cycle} ({how}): retained availability {retained}")
        assert agent.terminate() == 0
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill()

    view = outbox_view(tmp_path / "state")
    received = queued_seqs(live.messages())
    wait_until(lambda: not lost(view, queued_seqs(live.messages())), 5)
    received = queued_seqs(live.messages())
    missing = lost(view, received)
    copies = Counter(received)
    historical = {
        m.json()["seq"]
        for m in live.messages()
        if "/probe/" not in m.topic and m.json().get("historical")
    }
    final = _retained_availability(broker)
    figures = (
        f"injected: {RESTARTS} broker restarts ({dict(how_counts)}), outages "
        f"{min(outages):.2f}-{max(outages):.2f} s (total {sum(outages):.1f} s), checks every 0.1 s",
        f"observed: {view.last_seq} reports made, {len(set(received))} received, "
        f"{len(view.pending)} still queued, lost {len(missing)} {missing[:10]}, "
        f"{sum(n - 1 for n in copies.values())} duplicate copies (at-least-once), "
        f"{len(historical)} sent as historical, {len(view.refused)} marked refused",
        f"observed: {RESTARTS} rebirths (online + meta + birth state, new boot each), reconnect "
        f"after restart {min(reconnects):.2f}-{max(reconnects):.2f} s, last boot {boot}; "
        f"retained availability wrong after {len(problems)} restarts {problems[:3]}; "
        f"retained after the clean stop: {final and (final['status'], final['reason'])}",
        f"took {time.monotonic() - began:.1f} s",
    )
    say(name, *figures)
    assert not missing, figures
    assert not problems, figures
    assert final is not None and final["status"] == "offline", figures
    assert final["reason"] == "clean shutdown", figures
    assert view.dropped == 0, figures

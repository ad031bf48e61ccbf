"""What a subscriber at the centre receives, for the demo: the agent reporting to a local
mosquitto, each message printed as one readable line, then the retained picture a newly
connected centre would see.

`report_to_local_broker(settings, seconds, out)` is what `./run demo` calls after its checks;
it starts its own mosquitto unless it is given one.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from agent.config import Settings
from agent.sim.broker import Mosquitto
from agent.transport.listener import Listener, Received


def describe(message: Received) -> str:
    """One line for a person: topic, seq/boot, flags, and the gist of the payload."""
    try:
        data: dict[str, Any] = message.json()
    except ValueError:
        return f"{message.topic}: {message.payload[:60]!r}"
    kind = str(data.get("schema", "?")).split("/")[1] if "/" in str(data.get("schema")) else "?"
    flags = [f for f, on in (("retained", message.retain), ("historical", data.get("historical")))
             if on]  # fmt: skip
    head = f"{message.topic:<28} seq {data.get('seq', '?'):>4} boot {data.get('boot', '?'):>3}"
    if flags:
        head += f" [{', '.join(flags)}]"
    return f"{head}  {_gist(kind, data)}"


def _gist(kind: str, data: dict[str, Any]) -> str:
    if kind == "availability":
        return f"{data['status']} {data.get('reason', '')}".strip()
    if kind == "meta":
        enabled = [c["component"] for c in data["components"] if c["enabled"]]
        return (f"agent {data['agent_version']}, {data['site']['name']} ({data['site']['tier']}),"
                f" MQTT {data['protocol']}, components: {', '.join(enabled)}")  # fmt: skip
    if kind == "state":
        parts = [f"{name} {c['status']}" for name, c in data["components"].items()]
        verdict = data["verdict"] or "unknown"
        pending = data["outbox"]["pending"]
        return f"{verdict.upper()} ({data['cause']}): {', '.join(parts)}; outbox {pending}"
    if kind == "checks":
        bad = [f"{r['component']}: {r['reason']}" for r in data["results"] if r["status"] != "ok"]
        return f"{data['verdict'].upper()} in {data['duration_s']} s" + (
            f"; {'; '.join(bad)}" if bad else ""
        )
    return json.dumps(data)[:100]


def report_to_local_broker(
    settings: Settings,
    seconds: float,
    out: TextIO,
    broker: Mosquitto | None = None,
) -> list[Received]:
    """Run the agent for `seconds` against a local mosquitto; print what the centre sees."""
    from agent.runtime.daemon import Agent  # noqa: PLC0415 - keep `sim` imports light

    own = broker is None
    if broker is None:
        broker = Mosquitto(Path(tempfile.mkdtemp(prefix="edge-agent-broker-"))).start()
    site = settings.site.site_id
    prefix = settings.broker.prefix
    settings = settings.model_copy(
        update={"broker": settings.broker.model_copy(update={"host": broker.host,
                                                             "port": broker.port})}
    )  # fmt: skip
    out.write(f"centre: subscribed to {prefix}/{site}/# on mosquitto 127.0.0.1:{broker.port}\n")

    def show(message: Received) -> None:
        out.write(describe(message) + "\n")

    listener = Listener(broker.endpoint(), [f"{prefix}/{site}/#"], on_message=show).start()
    try:
        agent = Agent(settings)
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), name="agent")
        thread.start()
        time.sleep(seconds)
        stop.set()
        thread.join(15)
        time.sleep(0.3)
        received = listener.messages()
    finally:
        listener.stop()
    out.write("\nretained, as a centre connecting now sees the site:\n")
    with Listener(broker.endpoint(), [f"{prefix}/{site}/#"]) as late:
        late.wait_for(lambda ms: len(ms) >= 3, 2)
        for message in late.messages():
            out.write("  " + describe(message) + "\n")
    if own:
        broker.stop()
    return received

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
from agent.i18n import current_language, say, t
from agent.messages import Message, render_or
from agent.sim.broker import Mosquitto
from agent.transport.listener import Listener, Received

# Raw codes of the payloads, as words: the demo shows them to a person.
_WORDS = {
    "online": "sim.view.online",
    "offline": "sim.view.offline",
    "clean shutdown": "sim.view.clean_shutdown",
    "connection lost (will)": "sim.view.will",
    "check": "sim.view.cause.check",
    "birth": "sim.view.cause.birth",
    "heartbeat": "sim.view.cause.heartbeat",
    "rebirth": "sim.view.cause.rebirth",
    "province": "sim.view.tier.province",
    "district": "sim.view.tier.district",
    "commune": "sim.view.tier.commune",
    "retained": "sim.view.flag.retained",
    "historical": "sim.view.flag.historical",
    "ready": "status.verdict_word.ready",
    "degraded": "status.verdict_word.degraded",
    "fault": "status.verdict_word.fault",
    "ok": "status.result.ok",
    "warn": "status.result.warn",
    "fail": "status.result.fail",
    "skipped": "status.result.skipped",
    "error": "status.result.error",
}


def _word(code: object) -> str:
    """A payload's code in the process language; an unknown one (a newer site's) as it is."""
    msg_id = _WORDS.get(str(code))
    return say(msg_id, current_language()) if msg_id else str(code)


def _reason(result: dict[str, Any]) -> str:
    """A check result's reason, from its message when the site sent one."""
    try:
        msg = Message.model_validate(result["reason_msg"]) if result.get("reason_msg") else None
    except ValueError:
        msg = None
    return render_or(msg, str(result.get("reason", "")), current_language())


def describe(message: Received) -> str:
    """One line for a person: topic, seq/boot, flags, and the gist of the payload."""
    try:
        data: dict[str, Any] = message.json()
    except ValueError:
        return t("sim.view.unreadable", topic=message.topic, start=repr(message.payload[:60]))
    kind = str(data.get("schema", "?")).split("/")[1] if "/" in str(data.get("schema")) else "?"
    flags = [_word(f) for f, on in (("retained", message.retain),
                                    ("historical", data.get("historical"))) if on]  # fmt: skip
    head = t(
        "sim.view.head",
        topic=f"{message.topic:<28}",
        seq=f"{data.get('seq', '?'):>4}",
        boot=f"{data.get('boot', '?'):>3}",
    )
    if flags:
        head += f" [{', '.join(flags)}]"
    try:
        return f"{head}  {_gist(kind, data)}"
    except (KeyError, TypeError, AttributeError):  # a payload not of this release
        return f"{head}  {json.dumps(data, ensure_ascii=False)[:100]}"


def _gist(kind: str, data: dict[str, Any]) -> str:
    if kind == "availability":
        if not data.get("reason"):
            return _word(data["status"])
        return t(
            "sim.view.availability", status=_word(data["status"]), reason=_word(data["reason"])
        )
    if kind == "meta":
        enabled = [c["component"] for c in data["components"] if c["enabled"]]
        return t(
            "sim.view.meta",
            version=data["agent_version"],
            name=data["site"]["name"],
            tier=_word(data["site"]["tier"]),
            protocol=data["protocol"],
            components=", ".join(enabled),
        )
    if kind == "state":
        parts = [f"{name} {_word(c['status'])}" for name, c in data["components"].items()]
        verdict = _word(data["verdict"]) if data["verdict"] else t("sim.view.unknown")
        return t(
            "sim.view.state",
            verdict=verdict.upper(),
            cause=_word(data["cause"]),
            components=", ".join(parts),
            pending=data["outbox"]["pending"],
        )
    if kind == "checks":
        bad = [f"{r['component']}: {_reason(r)}" for r in data["results"] if r["status"] != "ok"]
        verdict = _word(data["verdict"]).upper()
        return t("sim.view.checks", verdict=verdict, seconds=data["duration_s"]) + (
            f"; {'; '.join(bad)}" if bad else ""
        )
    return json.dumps(data, ensure_ascii=False)[:100]


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
    out.write(t("sim.view.subscribed", topic=f"{prefix}/{site}/#", port=broker.port) + "\n")

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
    out.write("\n" + t("sim.view.retained_now") + "\n")
    with Listener(broker.endpoint(), [f"{prefix}/{site}/#"]) as late:
        late.wait_for(lambda ms: len(ms) >= 3, 2)
        for message in late.messages():
            out.write("  " + describe(message) + "\n")
    if own:
        broker.stop()
    return received

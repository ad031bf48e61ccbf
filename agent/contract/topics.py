"""The one table of MQTT topics: every topic the agent publishes or listens to.

The agent, the centre, the docs test and the schema generator all read this table, so a topic
cannot exist in one place and be missing in another. Pure: no paho, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Direction(StrEnum):
    OUT = "out"  # the agent publishes
    IN = "in"  # the agent subscribes (the centre publishes)


class Scope(StrEnum):
    SITE = "site"  # <prefix>/<site_id>/<suffix>
    FLEET = "fleet"  # <prefix>/<suffix>: one topic for every site


@dataclass(frozen=True)
class Topic:
    name: str
    suffix: str
    qos: int
    retained: bool
    direction: Direction
    scope: Scope
    payload: str  # name of the payload model in agent.contract.payloads (schema file stem)
    queued: bool  # goes through the outbox (seq, store-and-forward) or straight to the link
    doc: str


TOPICS: dict[str, Topic] = {
    t.name: t
    for t in (
        Topic(
            "availability",
            "availability",
            1,
            True,
            Direction.OUT,
            Scope.SITE,
            "availability",
            False,
            "`online` on every connect; `offline` as the will and on a clean shutdown.",
        ),
        Topic(
            "meta",
            "meta",
            1,
            True,
            Direction.OUT,
            Scope.SITE,
            "meta",
            False,
            "Birth record on every connect: version, site, devices, profiles, capabilities.",
        ),
        Topic(
            "state",
            "state",
            1,
            True,
            Direction.OUT,
            Scope.SITE,
            "state",
            True,
            "Site verdict, per-component status and reason, last check, outbox health.",
        ),
        Topic(
            "checks",
            "checks",
            1,
            False,
            Direction.OUT,
            Scope.SITE,
            "checks",
            True,
            "The full report of each self-test run.",
        ),
        Topic(
            "attendance",
            "attendance",
            1,
            False,
            Direction.OUT,
            Scope.SITE,
            "attendance",
            True,
            "People counted during a session (attendance issue).",
        ),
        Topic(
            "live",
            "live",
            1,
            True,
            Direction.OUT,
            Scope.SITE,
            "live",
            True,
            "During a session: in the call, poor, dropped or unknown, with media figures.",
        ),
        Topic(
            "live_event",
            "live/event",
            1,
            False,
            Direction.OUT,
            Scope.SITE,
            "live_event",
            True,
            "A transition of the live verdict: joined, dropped, poor, recovered.",
        ),
        Topic(
            "cmd_reply",
            "cmd/reply",
            1,
            False,
            Direction.OUT,
            Scope.SITE,
            "command_reply",
            True,
            "Replies to commands when there is no MQTT 5 response topic (always under 3.1.1).",
        ),
        Topic(
            "cmd",
            "cmd",
            1,
            False,
            Direction.IN,
            Scope.SITE,
            "command",
            False,
            "Signed commands from the centre for this site (docs/mqtt.md, Commands).",
        ),
        Topic(
            "fleet_cmd",
            "cmd",
            1,
            False,
            Direction.IN,
            Scope.FLEET,
            "command",
            False,
            "Signed commands for a tier or for every site (`commands.fleet`).",
        ),
        Topic(
            "schedule",
            "schedule",
            1,
            True,
            Direction.IN,
            Scope.SITE,
            "schedule",
            False,
            "This site's sessions (schedule issue). Reserved.",
        ),
        Topic(
            "fleet_schedule",
            "schedule",
            1,
            True,
            Direction.IN,
            Scope.FLEET,
            "schedule",
            False,
            "Sessions for every site (schedule issue). Reserved.",
        ),
    )
}

# payload kind -> the outgoing topic that carries it (`command_reply` goes on `cmd_reply`)
OUT_BY_PAYLOAD: dict[str, str] = {
    t.payload: t.name for t in TOPICS.values() if t.direction is Direction.OUT
}


def topic_for(prefix: str, site_id: str, name: str) -> str:
    """The full topic of `name` for one site: `vc/hn-01/state`."""
    topic = TOPICS[name]
    if topic.scope is Scope.FLEET:
        return f"{prefix}/{topic.suffix}"
    return f"{prefix}/{site_id}/{topic.suffix}"


def site_filter(prefix: str, site_id: str) -> str:
    """Everything one site publishes: what a per-site ACL must allow and a centre reads."""
    return f"{prefix}/{site_id}/#"


# Topics a site may also publish below: command replies go to an MQTT 5 response topic under
# `cmd/reply` (agent.commands.service.reply_route).
_REPLY_SPACE = frozenset({"cmd_reply"})


def site_acl(prefix: str) -> str:
    """The broker's ACL lines for the sites (user name = site_id), made from this table: each
    site writes only the topics it publishes and reads only those it listens to. Not
    `readwrite <prefix>/%u/#`: a site that may write its own `schedule` or `cmd` topic could
    set the sessions the centre alerts on, or hand itself a (still unsigned) command."""
    lines = []
    for topic in TOPICS.values():
        where = topic_for(prefix, "%u", topic.name)  # mosquitto puts the user name for %u
        if topic.name in _REPLY_SPACE:
            where += "/#"  # in MQTT, `a/#` also matches `a` itself
        access = "write" if topic.direction is Direction.OUT else "read"
        lines.append(f"pattern {access} {where}")
    return "\n".join(dict.fromkeys(lines)) + "\n"


def name_of(prefix: str, site_id: str, topic: str) -> str | None:
    """The table name of a full topic, or None when it is not one of this site's topics."""
    for name in TOPICS:
        if topic_for(prefix, site_id, name) == topic:
            return name
    return None


# MQTT strings carry a two-byte length (MQTT 5, 1.5.4).
MAX_TOPIC_BYTES = 65_535


def publish_topic_problem(topic: object) -> str | None:
    """Why `topic` cannot be published to, or None when it can.

    A topic that arrives from outside (a command's MQTT 5 response topic) is checked with this
    before it is stored: paho refuses wildcards by raising in the publishing thread, and a
    `$` topic is the broker's own (MQTT 5, 4.7.2)."""
    if not isinstance(topic, str) or not topic:
        return "empty"
    if "+" in topic or "#" in topic:
        return "contains a wildcard (+ or #)"
    if "\0" in topic:
        return "contains a NUL character"
    if topic.startswith("$"):
        return "starts with $ (reserved for the broker)"
    try:
        size = len(topic.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if size > MAX_TOPIC_BYTES:
        return f"is longer than {MAX_TOPIC_BYTES} bytes"
    return None


def is_within(topic: str, base: str) -> bool:
    """`topic` is `base` itself or a topic below it (`base/...`)."""
    return topic == base or topic.startswith(base + "/")

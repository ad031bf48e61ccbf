"""Regional mosquitto brokers bridged to a central one, pure: the configuration files for N
regions (`edge-agent centre brokers config`), and the bridge state topic the centre reads.

Sites connect to their region's broker with their topics unchanged; each regional broker
keeps one MQTT 5 bridge to the central broker, where the centre subscribes. The bridge
carries each site report topic out (QoS 1) and the centre's schedules and commands in; its
session is persistent (`cleansession false`, a fixed client id) so a cut bridge delivers its
backlog when it returns. It announces its state ("1" up, "0" down) retained on
`<prefix>/$bridge/<region>/state` at the central broker; "0" is also its will there, so a
regional broker that dies (kill -9, power) is known at once, not one site at a time.

Why one `topic` line per report topic rather than `<prefix>/# out`: the bridge also publishes
its state on the regional broker, and `<prefix>/#` would carry that copy to the central
broker too, where the "0" queued during an outage lands after the bridge's own "1" and says
down for a bridge that is up (seen with mosquitto 2.0.11). The exact topics come from the
contract, so a new report topic is bridged by regenerating.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.contract.topics import TOPICS, Direction, Scope, site_acl

BRIDGE_LEVEL = "$bridge"  # no site id can be this (a site id has no `$`), nor write it (ACL)
REGION = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_HOST_PORT = re.compile(r"(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(?P<port>[0-9]{1,5})")
MAX_REGIONS = 999


def bridge_state_topic(prefix: str, region: str) -> str:
    return f"{prefix}/{BRIDGE_LEVEL}/{region}/state"


def bridge_state_filter(prefix: str) -> str:
    return f"{prefix}/{BRIDGE_LEVEL}/+/state"


def region_of_topic(prefix: str, topic: str) -> str | None:
    """The region of a bridge state topic; None for any other topic."""
    head, tail = f"{prefix}/{BRIDGE_LEVEL}/", "/state"
    if not (topic.startswith(head) and topic.endswith(tail)):
        return None
    region = topic[len(head) : -len(tail)]
    return region if REGION.fullmatch(region) else None


def region_names(count: int) -> list[str]:
    if not 1 <= count <= MAX_REGIONS:
        raise ValueError(f"regions: 1 to {MAX_REGIONS}, not {count}")
    return [f"r{i:03d}" for i in range(1, count + 1)]


def parse_host_port(text: str) -> tuple[str, int]:
    """`host:port` ([v6]:port too); ValueError saying what is wrong."""
    match = _HOST_PORT.fullmatch(text.strip())
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return match["host"], int(match["port"])


def out_topics(prefix: str) -> list[str]:
    return [f"{prefix}/+/{t.suffix}" for t in TOPICS.values() if t.direction is Direction.OUT]


def in_topics(prefix: str) -> list[str]:
    found = [
        f"{prefix}/{t.suffix}" if t.scope is Scope.FLEET else f"{prefix}/+/{t.suffix}"
        for t in TOPICS.values()
        if t.direction is Direction.IN
    ]
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Bridge:
    """One regional broker's bridge to the central broker."""

    region: str
    central_host: str
    central_port: int
    prefix: str = "vc"
    tls: bool = True  # a real deployment: placeholders for the CA; tests run it plain
    username: str | None = None  # None: `bridge-<region>`; "" for an anonymous central broker
    password: str = "CHANGE-ME"  # noqa: S105 - a placeholder the operator replaces
    restart_timeout: str = "2 30"  # backoff: first retry after ~2 s, at most every 30 s
    keepalive_s: int = 15  # a dead link (not a refused one) is noticed in ~1.5 x this

    def lines(self) -> list[str]:
        user = f"bridge-{self.region}" if self.username is None else self.username
        out = [
            f"connection {self.region}",
            f"address {self.central_host}:{self.central_port}",
            "bridge_protocol_version mqttv50",
            # A fixed client id and a persistent session at both ends: what the central
            # broker sends in while the bridge is down, and what the sites send out, waits.
            f"remote_clientid bridge-{self.region}",
            f"local_clientid bridge-{self.region}-local",
            "cleansession false",
            "start_type automatic",
            f"restart_timeout {self.restart_timeout}",
            f"keepalive_interval {self.keepalive_s}",
            "notifications true",
            f"notification_topic {bridge_state_topic(self.prefix, self.region)}",
        ]
        if user:
            out += [f"remote_username {user}", f"remote_password {self.password}"]
        if self.tls:
            out += [
                "bridge_cafile /etc/mosquitto/certs/central-ca.pem",
                "# with client certificates at the central broker instead of a password:",
                f"# bridge_certfile /etc/mosquitto/certs/bridge-{self.region}.pem",
                f"# bridge_keyfile /etc/mosquitto/certs/bridge-{self.region}.key",
            ]
        out += [f"topic {t} out 1" for t in out_topics(self.prefix)]
        out += [f"topic {t} in 1" for t in in_topics(self.prefix)]
        return out


_HEAD = "# Generated by `edge-agent centre brokers config`; docs/brokers.md explains each line."


def _site_listener(prefix: str) -> list[str]:
    return [
        "# The sites' listener: TLS with client certificates, as for a single broker.",
        "listener 8883",
        "cafile /etc/mosquitto/certs/sites-ca.pem",
        "certfile /etc/mosquitto/certs/broker.pem",
        "keyfile /etc/mosquitto/certs/broker.key",
        "require_certificate true",
        "use_identity_as_username true",
        "allow_anonymous false",
        "acl_file /etc/mosquitto/edge-agent.acl",
        "persistence true",
        "persistence_location /var/lib/mosquitto/",
        "autosave_interval 60",
        # The bridge's backlog during a cut is a queue like any client's: the default (1000
        # messages) would drop reports from a region of a few hundred sites within minutes.
        "max_queued_messages 1000000",
    ]


def central_config(prefix: str, regions: list[str]) -> str:
    lines = [
        _HEAD,
        "# The central broker: the centre and the regional bridges connect here.",
        "listener 8883",
        "cafile /etc/mosquitto/certs/central-ca.pem",
        "certfile /etc/mosquitto/certs/central.pem",
        "keyfile /etc/mosquitto/certs/central.key",
        "allow_anonymous false",
        "password_file /etc/mosquitto/passwd",
        "acl_file /etc/mosquitto/central.acl",
        "persistence true",
        "persistence_location /var/lib/mosquitto/",
        "autosave_interval 60",
        "max_queued_messages 1000000",
        f"# Bridges: {', '.join(regions)}; a password each:",
        "# mosquitto_passwd -b /etc/mosquitto/passwd bridge-<region> <password>",
    ]
    return "\n".join(lines) + "\n"


def central_acl(prefix: str, regions: list[str]) -> str:
    """The centre reads and writes everything under the prefix. A bridge writes only what its
    sites publish and its own state, and reads only what goes to sites: a regional broker
    taken over must not set the province's schedule, send commands or speak for another
    region."""
    blocks = [f"user centre\ntopic readwrite {prefix}/#\n"]
    for region in regions:
        lines = [f"user bridge-{region}"]
        lines += [f"topic write {t}" for t in out_topics(prefix)]
        lines.append(f"topic write {bridge_state_topic(prefix, region)}")
        lines += [f"topic read {t}" for t in in_topics(prefix)]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def regional_config(bridge: Bridge) -> str:
    lines = [_HEAD, f"# Regional broker {bridge.region}."]
    lines += [*_site_listener(bridge.prefix), "", "# The bridge to the central broker."]
    lines += bridge.lines()
    return "\n".join(lines) + "\n"


def generate(regions: int, central: str, prefix: str = "vc") -> dict[str, str]:
    """File name -> contents, for `regions` regional brokers bridged to `central` (HOST:PORT).
    ValueError for a count or address out of range."""
    host, port = parse_host_port(central)
    names = region_names(regions)
    files = {
        "central/mosquitto.conf": central_config(prefix, names),
        "central/central.acl": central_acl(prefix, names),
    }
    for name in names:
        bridge = Bridge(name, host, port, prefix)
        files[f"{name}/mosquitto.conf"] = regional_config(bridge)
        files[f"{name}/edge-agent.acl"] = site_acl(prefix)
    return files

"""The site's report payloads built from settings and results: the birth record (`meta`),
the saved last check, session references. Pure but for the host name."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from datetime import datetime

from agent import __version__
from agent.checks.model import CheckResult, Verdict
from agent.components import COMPONENTS, TABLE
from agent.config import Settings
from agent.contract.payloads import ComponentInfo, MetaPayload, SessionRef, SiteInfo, utc_now
from agent.schedule.model import Session
from agent.transport.mqtt import Protocol

CAPABILITIES = ("checks", "state", "store-and-forward", "rebirth")


@dataclass(frozen=True)
class LastCheck:
    """The latest self-test, kept on disk so a restarted agent does not forget the site."""

    verdict: Verdict
    results: list[CheckResult]
    at: datetime

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "verdict": self.verdict.value,
                "results": [r.model_dump(mode="json") for r in self.results],
                "at": self.at.isoformat(),
            }
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> LastCheck:
        raw = json.loads(data)
        return cls(
            Verdict(raw["verdict"]),
            [CheckResult.model_validate(r) for r in raw["results"]],
            datetime.fromisoformat(raw["at"]),
        )


def meta_payload(settings: Settings, protocol: Protocol, started_at: datetime) -> MetaPayload:
    components = []
    for name in COMPONENTS:
        section = settings.component(name)
        device, profile = TABLE[name].device(settings)
        components.append(
            ComponentInfo(
                component=name,
                enabled=section.enabled,
                required=section.required,
                device=device,
                profile=profile,
            )
        )
    site = settings.site
    return MetaPayload(
        site_id=site.site_id,
        ts=utc_now(),
        agent_version=__version__,
        site=SiteInfo(
            name=site.name,
            tier=site.tier.value,
            parent=site.parent,
            timezone=site.timezone,
            expected_attendance=site.expected_attendance,
        ),
        components=components,
        profiles=sorted({c.profile for c in components if c.enabled and c.profile}),
        capabilities=[*CAPABILITIES, *(["commands"] if settings.commands.enabled else [])],
        protocol=protocol.value,
        check_interval_s=settings.report.check_interval_s,
        heartbeat_s=settings.report.state_heartbeat_s,
        hostname=socket.gethostname(),
        started_at=started_at,
    )


def session_ref(session: Session | None) -> SessionRef | None:
    if session is None:
        return None
    return SessionRef(
        session_id=session.session_id, title=session.title, start=session.start, end=session.end
    )

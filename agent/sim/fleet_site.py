"""A lightweight simulated site for the centre's tests and the fleet benchmark: it makes the
real payload models (availability, meta, state, checks, attendance) with its own `seq` and
`boot`, like an agent would, without probes, outbox or connection of its own. The caller
publishes `(topic, bytes, retain)` however it likes. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.checks.model import CheckResult, Status, Verdict
from agent.contract.payloads import (
    AttendancePayload,
    AvailabilityPayload,
    ChecksPayload,
    ComponentInfo,
    ComponentState,
    Envelope,
    MetaPayload,
    OutboxHealth,
    SiteInfo,
    StatePayload,
)
from agent.contract.topics import TOPICS, topic_for

Message = tuple[str, bytes, bool]  # topic, payload, retain

_COMPONENTS = ("camera", "microphone", "display", "network")
_VERDICT = {Status.OK: Verdict.READY, Status.WARN: Verdict.DEGRADED}


@dataclass
class SimSite:
    site_id: str
    tier: str = "commune"
    parent: str | None = None
    prefix: str = "vc"
    expected: int = 25
    check_interval_s: float = 60.0
    heartbeat_s: float | None = None  # None: like an agent from before meta carried it
    seq: int = 0
    boot: int = 1
    dropped_checks: int = 0
    statuses: dict[str, Status] = field(
        default_factory=lambda: dict.fromkeys(_COMPONENTS, Status.OK)
    )
    name: str = ""  # the meta's site name; empty: "Site <site_id>"

    def _msg(self, payload: Envelope) -> Message:
        return (
            topic_for(self.prefix, self.site_id, payload.kind),
            payload.to_bytes(),
            TOPICS[payload.kind].retained,
        )

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def verdict(self) -> Verdict:
        worst = Status.OK
        for status in self.statuses.values():
            if status in (Status.FAIL, Status.ERROR):
                return Verdict.FAULT
            if status is Status.WARN:
                worst = Status.WARN
        return _VERDICT[worst]

    def _reason(self, component: str, status: Status) -> str:
        return "" if status is Status.OK else f"{component}: simulated {status.value}"

    def availability(self, status: str = "online", reason: str = "") -> Message:
        return self._msg(
            AvailabilityPayload(
                site_id=self.site_id, seq=self.seq, boot=self.boot, ts=datetime.now(UTC),
                status=status, reason=reason, keepalive_s=30,
            )
        )  # fmt: skip

    def meta(self) -> Message:
        now = datetime.now(UTC)
        return self._msg(
            MetaPayload(
                site_id=self.site_id, seq=self.seq, boot=self.boot, ts=now,
                agent_version="sim", protocol="5", check_interval_s=self.check_interval_s,
                heartbeat_s=self.heartbeat_s,
                site=SiteInfo(name=self.name or f"Site {self.site_id}", tier=self.tier,
                              parent=self.parent, timezone="Asia/Ho_Chi_Minh",
                              expected_attendance=self.expected),
                components=[ComponentInfo(component=c, enabled=True, required=True)
                            for c in self.statuses],
                profiles=[], capabilities=["checks", "attendance"], hostname=self.site_id,
                started_at=now,
            )
        )  # fmt: skip

    def birth(self) -> list[Message]:
        return [self.availability(), self.meta(), self.state("birth")]

    def state(self, cause: str = "heartbeat", historical: bool = False) -> Message:
        now = datetime.now(UTC)
        return self._msg(
            StatePayload(
                site_id=self.site_id, seq=self._next(), boot=self.boot, ts=now,
                historical=historical, cause=cause, verdict=self.verdict(),
                components={c: ComponentState(status=s, reason=self._reason(c, s),
                                              hint="check it" if s is not Status.OK else "")
                            for c, s in self.statuses.items()},
                last_check=now,
                outbox=OutboxHealth(pending=0, pending_bytes=0,
                                    dropped_checks=self.dropped_checks, refused=0),
            )
        )  # fmt: skip

    def checks(self) -> Message:
        now = datetime.now(UTC)
        results = [
            CheckResult(component=c, status=s, reason=self._reason(c, s), hint="",
                        metrics={"fps": 25.0, "rms_db": -30.5}, started_at=now, duration_s=0.2)
            for c, s in self.statuses.items()
        ]  # fmt: skip
        return self._msg(
            ChecksPayload(
                site_id=self.site_id, seq=self._next(), boot=self.boot, ts=now,
                trigger="interval", verdict=self.verdict(), started_at=now, duration_s=0.8,
                results=results,
            )
        )  # fmt: skip

    def attendance(self, session_id: str | None, count: int | None) -> Message:
        return self._msg(
            AttendancePayload(
                site_id=self.site_id, seq=self._next(), boot=self.boot, ts=datetime.now(UTC),
                session_id=session_id, count=count, detector="sim", expected=self.expected,
            )
        )  # fmt: skip

    def skip(self, n: int = 1) -> None:
        """Lose the next `n` reports (taken numbers that will never be sent)."""
        self.seq += n

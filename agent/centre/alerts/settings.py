"""`[alerts]` in centre.toml: the rules, and how notifications are grouped and sent."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.centre.alerts.model import AlertKind, Rule, Severity


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def default_rules() -> list[Rule]:
    """The rules a province starts with (centre.example.toml lists the same)."""
    return [
        Rule(id="check-t15", kind=AlertKind.CHECK_FAILED, lead_minutes=15, for_s=0),
        Rule(id="down-t15", kind=AlertKind.SITE_DOWN, lead_minutes=15, for_s=120),
        Rule(
            id="dropped",
            kind=AlertKind.CALL_DROPPED,
            severity=Severity.CRITICAL,
            for_s=30,
            escalate_after_s=600,
        ),
        Rule(id="poor-media", kind=AlertKind.MEDIA_POOR, for_s=120),
        Rule(id="attendance", kind=AlertKind.LOW_ATTENDANCE, share=0.5, after_minutes=15, for_s=0),
        Rule(id="outbox", kind=AlertKind.OUTBOX_BACKLOG, pending_over=100, for_s=600),
        Rule(id="firmware", kind=AlertKind.OLD_FIRMWARE, for_s=0),
    ]


class AlertsSettings(_Section):
    enabled: bool = Field(True, description="Run the rules and send notifications.")
    evaluate_every_s: float = Field(
        2.0, gt=0, description="How often the rules are run over the fleet store."
    )
    group_window_s: float = Field(
        3.0,
        ge=0,
        le=600,
        description="The first alert of a kind in a district waits this long for others of "
        "its kind there; they go out as one message listing the sites.",
    )
    rules: list[Rule] = Field(default_factory=default_rules)

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"two rules are called {rule.id!r}: give each its own id")
            seen.add(rule.id)
        return rules

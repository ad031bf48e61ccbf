"""`[alerts]` in centre.toml: the rules, and how notifications are grouped and sent."""

from __future__ import annotations

from pathlib import Path

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
        Rule(
            id="region-down",
            kind=AlertKind.REGION_DOWN,
            severity=Severity.CRITICAL,
            for_s=60,
            escalate_after_s=600,
        ),
    ]


class WebhookSettings(_Section):
    secret: str = Field(
        "",
        description="Key of the X-Edge-Signature HMAC-SHA256 over each body (also the dead-man "
        "ping's); empty: unsigned. Better in EDGE_AGENT_CENTRE_ALERTS__WEBHOOK__SECRET.",
    )
    timeout_s: float = Field(10.0, gt=0, description="Connect and answer timeout of one POST.")


class EmailSettings(_Section):
    host: str = Field("", description="SMTP server; empty: no e-mail is sent.")
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS first.")
    ca_file: Path | None = Field(
        None, description="PEM file of the CA to trust for STARTTLS; none: the system's."
    )
    username: str = Field("", description="Log in with this user; empty: no login.")
    password: str = Field(
        "", description="Better in EDGE_AGENT_CENTRE_ALERTS__EMAIL__PASSWORD than in the file."
    )
    from_addr: str = Field("edge-agent@localhost", description="The From: address.")
    timeout_s: float = Field(20.0, gt=0)


class TelegramSettings(_Section):
    base_url: str = Field(
        "https://api.telegram.org", description="The Bot API's address (a test server's in tests)."
    )
    token: str = Field(
        "", description="The bot's token; better in EDGE_AGENT_CENTRE_ALERTS__TELEGRAM__TOKEN."
    )
    timeout_s: float = Field(10.0, gt=0)


class DeliverySettings(_Section):
    max_attempts: int = Field(
        10, ge=1, description="Tries of one notification before it is given up as failed."
    )
    backoff_min_s: float = Field(5.0, gt=0, description="Wait after the first failed try.")
    backoff_max_s: float = Field(
        900.0, gt=0, description="The wait doubles per try, with jitter, up to this."
    )
    poll_s: float = Field(1.0, gt=0, description="How often the queue is looked at.")


class DeadmanSettings(_Section):
    url: str = Field("", description="Ping this URL (POST, signed like a webhook); empty: off.")
    every_s: float = Field(60.0, gt=0, description="How often the centre says it is alive.")


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
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    deadman: DeadmanSettings = Field(default_factory=DeadmanSettings)

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"two rules are called {rule.id!r}: give each its own id")
            seen.add(rule.id)
        return rules

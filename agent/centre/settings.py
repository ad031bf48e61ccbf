"""The centre's settings: its own TOML file (centre.example.toml), EDGE_AGENT_CENTRE_*
environment overrides, loaded with the same machinery as the agent's settings."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from agent.centre.alerts.settings import AlertsSettings
from agent.config import BrokerSettings, FileSettings, load_file_settings
from agent.errors import ConfigError
from agent.messages import message
from agent.validation import Invalid

DEFAULT_CENTRE_CONFIG = Path("/etc/edge-agent/centre.toml")
ENV_CENTRE_CONFIG = "EDGE_AGENT_CENTRE_CONFIG"
# `centre send` and `centre keygen` read these by name (they are not settings fields).
ENV_KEY = "EDGE_AGENT_CENTRE_KEY"
ENV_KEY_ID = "EDGE_AGENT_CENTRE_KEY_ID"
ENV_PASSWORD = "EDGE_AGENT_CENTRE_PASSWORD"  # noqa: S105 (a variable name)


class CentreSettings(FileSettings):
    """Where the centre connects, where it keeps the fleet, and when a site counts as silent."""

    # Its own prefix: an agent's EDGE_AGENT_BROKER__HOST on the same host must not move the
    # centre's connection.
    model_config = SettingsConfigDict(
        env_prefix="EDGE_AGENT_CENTRE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )
    example_file: ClassVar[str] = "centre.example.toml"
    env_not_settings: ClassVar[tuple[str, ...]] = (
        ENV_CENTRE_CONFIG,
        ENV_KEY,
        ENV_KEY_ID,
        ENV_PASSWORD,
    )

    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    db_path: Path = Field(
        Path("/var/lib/edge-agent-centre/centre.sqlite"),
        description="The fleet database (SQLite, WAL).",
    )
    db_url: str = Field(
        "",
        pattern=r"^(postgresql://.*)?$",
        description="The store on PostgreSQL instead (postgresql://USER@HOST/DB, or "
        "postgresql:///DB?host=/run/postgresql): several centre processes or hosts share it; "
        "empty: the SQLite file db_path. One of the two.",
    )
    report_interval_s: float = Field(
        60.0,
        gt=0,
        description="For a site whose meta gives no heartbeat_s (older agents): how often it "
        "is expected to report at least (the agents' report.state_heartbeat_s); its shorter "
        "check_interval_s (from meta) wins.",
    )
    silent_after: float = Field(
        3.0, ge=1.0, description="A site online but unheard for this many intervals is silent."
    )
    share_group: str = Field(
        "centre",
        pattern=r"^[A-Za-z0-9_-]*$",
        description="MQTT shared-subscription group ($share/<group>/...); empty: no sharing.",
    )
    retained_wait_s: float = Field(
        2.0, ge=0, description="At start, collect the retained picture for at most this long."
    )
    history_days: int = Field(90, ge=1, description="Keep report history this many days.")
    gap_grace_s: float = Field(
        30.0,
        ge=0,
        description="A missing seq counts as lost only after this long (another centre "
        "process sharing the load may still be storing it).",
    )
    command_key: Path | None = Field(
        None,
        description="The centre's Ed25519 private key (PEM, from `centre keygen`) the web "
        "dashboard signs commands with; none or missing: the page sends no commands.",
    )
    key_id: str = Field(
        "", description="The key id the sites know command_key by (empty: the key file's stem)."
    )
    web_session_hours: float = Field(
        12.0, gt=0, le=24 * 30, description="A dashboard login lasts this long."
    )
    web_login_failures: int = Field(
        5,
        ge=1,
        description="Failed dashboard logins for one name from one address within "
        "web_login_window_s; then that name is refused from that address for a while.",
    )
    web_login_failures_per_address: int = Field(
        50,
        ge=1,
        description="Failed dashboard logins from one address (any names) within "
        "web_login_window_s; then that address is refused for a while.",
    )
    web_login_window_s: float = Field(
        300.0, gt=0, description="The window the dashboard's failed logins are counted in."
    )
    web_metrics_token: str = Field(
        "",
        description="A bearer token /metrics requires (Prometheus: `authorization` with "
        "`credentials`); empty: /metrics answers anyone who reaches the listener.",
    )
    web_trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies (addresses or networks) whose X-Forwarded-For and "
        "X-Forwarded-Proto the dashboard believes; empty: nobody's.",
    )

    @model_validator(mode="after")
    def _one_store(self) -> CentreSettings:
        if self.db_url and "db_path" in self.model_fields_set:
            raise Invalid(message("centre.settings.one_store"))
        return self

    @property
    def store_location(self) -> Path | str:
        """Where the store is: the PostgreSQL URL when given, else the SQLite file."""
        return self.db_url or self.db_path

    @field_validator("web_trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                # uvicorn would silently take it as a literal host name that never matches.
                raise ValueError(
                    f"web_trusted_proxies: {entry!r} is not an address or network "
                    "(e.g. 127.0.0.1, 10.0.0.0/8, ::1)"
                ) from None
        return value


def centre_config_path(cli_path: str | os.PathLike[str] | None = None) -> Path:
    """--config wins, then $EDGE_AGENT_CENTRE_CONFIG, then /etc/edge-agent/centre.toml."""
    if cli_path:
        return Path(cli_path)
    env = os.environ.get(ENV_CENTRE_CONFIG)
    return Path(env) if env else DEFAULT_CENTRE_CONFIG


def load_centre_settings(path: str | os.PathLike[str] | None = None) -> CentreSettings:
    where = centre_config_path(path)
    if not where.exists():
        # agent.config's own message names the agent's example file and variable.
        raise ConfigError(
            message("centre.settings.not_found", path=str(where)),
            message("centre.settings.hint.copy_example", variable=ENV_CENTRE_CONFIG),
        )
    return load_file_settings(CentreSettings, where)

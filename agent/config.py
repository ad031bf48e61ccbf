"""Settings: one TOML file, every field overridable by an EDGE_AGENT_* environment variable.

Precedence (highest first): environment (`EDGE_AGENT_BROKER__PORT=1884`), then the file.
Secrets may also come from systemd credentials (`LoadCredential=broker-password:...`), so
they need not sit in the file. Unknown fields are errors: a typo must not silently fall back
to a default on a site nobody visits for months.

Why one file past 400 lines: it is the settings tree, one small model per section of
agent.toml in the file's own order, so a field is found where the example file has it; the
sections that belong to one package live there (attendance, LED, schedule) and are only
gathered here.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agent.attendance.settings import AttendanceSettings
from agent.components import COMPONENTS
from agent.contract.topics import publish_topic_problem
from agent.errors import ConfigError
from agent.led.patterns import LedSettings
from agent.messages import Message, Param, message
from agent.schedule.model import ScheduleSettings
from agent.validation import Invalid, pydantic_problem, toml_problem

DEFAULT_CONFIG = Path("/etc/edge-agent/agent.toml")
ENV_PREFIX = "EDGE_AGENT_"
ENV_CONFIG = "EDGE_AGENT_CONFIG"
_SOURCE_TREE_PROFILES = Path(__file__).resolve().parent.parent / "firmware_profiles"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tier(StrEnum):
    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"


class SiteSettings(_Section):
    site_id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
        description="Unique id, used in MQTT topics: lower-case letters, digits, . _ -",
    )
    name: str = Field(min_length=1, description="Human name shown at the centre.")
    tier: Tier
    parent: str | None = Field(None, description="site_id of the site above this one.")
    expected_attendance: int = Field(0, ge=0, description="People summoned to a session.")
    timezone: str = "Asia/Ho_Chi_Minh"


class BrokerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    prefix: str = Field("vc", pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    keepalive_s: int = Field(30, ge=5, le=3600)
    username: str | None = None
    password: SecretStr | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_id: str | None = Field(
        None, description="MQTT client id; default edge-agent-<site_id> (must be stable)"
    )
    session_expiry_s: int = Field(
        3600,
        ge=0,
        description="MQTT 5 session kept by the broker this long after a disconnect, so "
        "subscriptions and QoS 1 commands survive short outages",
    )
    connect_timeout_s: float = Field(10.0, gt=0, description="give up waiting for CONNACK")
    reconnect_min_s: float = Field(1.0, gt=0, description="first reconnect delay")
    reconnect_max_s: float = Field(
        120.0, gt=0, description="reconnect delay cap (exponential backoff, jittered)"
    )

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> BrokerSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise Invalid(message("config.tls_pair"))
        if self.tls_cert is not None and self.tls_ca is None:
            raise Invalid(message("config.tls_needs_ca"))
        return self


# The daemon's control socket (`edge-agent status` talks to it) lives in the state directory.
CONTROL_SOCKET = "control.sock"
# A Unix socket's address holds at most 107 bytes of path (sun_path is 108, NUL-terminated).
_UNIX_PATH_MAX = 107


class PathSettings(_Section):
    state_dir: Path = Path("/var/lib/edge-agent")
    profiles_dir: Path = _SOURCE_TREE_PROFILES
    sysfs_root: Path = Field(Path("/sys"), description="Root of sysfs (DRM connectors, LEDs).")

    @field_validator("state_dir")
    @classmethod
    def _socket_fits(cls, state_dir: Path) -> Path:
        # Found here, with the fix, rather than as the daemon's crash when it binds.
        socket = os.fsencode(state_dir / CONTROL_SOCKET)
        if len(socket) > _UNIX_PATH_MAX:
            raise Invalid(
                message("config.state_dir_too_long", length=len(socket), limit=_UNIX_PATH_MAX)
            )
        return state_dir


class ComponentSettings(_Section):
    enabled: bool = True
    required: bool = True
    timeout_s: float = Field(10.0, gt=0, le=120)


class CameraSettings(ComponentSettings):
    source: str = Field(
        "/dev/video0",
        description="/dev/videoN, a /dev/v4l/by-id/ name, or an rtsp:// or http:// URL.",
    )
    width: int = Field(1920, gt=0)
    height: int = Field(1080, gt=0)
    fps: float = Field(30.0, gt=0)
    open_timeout_s: float = Field(5.0, gt=0)
    sample_s: float = Field(1.0, gt=0, le=10)
    min_fps_ratio: float = Field(0.8, gt=0, le=1, description="warn below this x expected fps")
    dark_luma: float = Field(16.0, ge=0, le=255, description="mean luma below: covered lens")
    bright_luma: float = Field(235.0, ge=0, le=255, description="mean luma above: overexposed")
    min_sharpness: float = Field(
        30.0, ge=0, description="variance of the Laplacian below: out of focus"
    )
    frozen_diff: float = Field(
        0.5, ge=0, description="mean abs difference between frames below: frozen picture"
    )


class MicrophoneSettings(ComponentSettings):
    device: str | int = Field("default", description="name substring or PortAudio index")
    samplerate: int | None = Field(None, gt=0, description="None: the device's default rate")
    sample_s: float = Field(1.0, gt=0, le=10)
    silent_dbfs: float = Field(-70.0, description="RMS below: no signal (fail)")
    quiet_dbfs: float = Field(-55.0, description="RMS below: very quiet (warn)")
    max_clip_ratio: float = Field(0.001, ge=0, le=1)
    max_dc_offset: float = Field(0.05, ge=0, le=1)
    max_hum_db: float = Field(
        -12.0, description="mains hum (50 Hz + harmonics) vs total, in dB: above it warns"
    )
    mains_hz: float = Field(50.0, gt=0)
    loop_test: bool = Field(False, description="play a tone and hear it back (never in session)")
    output_device: str | int | None = None
    loop_tone_hz: float = Field(1000.0, gt=20, lt=20000)


class DisplaySettings(ComponentSettings):
    connector: str = Field("auto", description="DRM connector (HDMI-A-1) or auto: first connected")
    min_width: int = Field(1280, gt=0)
    profile: str | None = Field(None, description="firmware profile for power/input control")
    port: str | None = Field(None, description="serial path or socket:// URL for the profile")
    device_id: int = Field(1, ge=0, le=255)
    password: SecretStr | None = None


class CodecSettings(ComponentSettings):
    profile: str = "cisco-roomos"
    port: str = "/dev/ttyUSB0"
    username: str | None = None
    password: SecretStr | None = None


class PtzSettings(ComponentSettings):
    enabled: bool = False
    required: bool = False
    profile: str = "sony-visca"
    port: str = "/dev/ttyUSB1"
    device_id: int = Field(1, ge=1, le=7)


class NetTarget(_Section):
    name: str
    host: str
    port: int = Field(ge=1, le=65535)
    role: Literal["mcu"] | None = Field(
        None, description="mcu: also sampled through every session (the live watch)"
    )


class NetworkSettings(ComponentSettings):
    targets: list[NetTarget] = Field(default_factory=list)
    samples: int = Field(5, ge=1, le=100)
    interval_s: float = Field(0.05, ge=0)
    connect_timeout_s: float = Field(1.0, gt=0)
    warn_rtt_ms: float = 150.0
    fail_rtt_ms: float = 400.0
    warn_jitter_ms: float = 30.0
    warn_loss_pct: float = 1.0
    fail_loss_pct: float = 20.0
    icmp: bool = Field(False, description="also ping with the system ping command")


class SessionSettings(_Section):
    """`[session]`: the live watch while a scheduled session runs (agent/checks/live.py says
    why each default is what it is)."""

    poll_s: float = Field(5.0, ge=0.2, le=300, description="seconds between two looks")
    poor_loss_pct: float = Field(8.0, gt=0, le=100, description="packet loss above: poor")
    poor_jitter_ms: float = Field(30.0, gt=0, description="jitter above: poor")
    poor_lost_packets: int = Field(
        20, ge=1, description="packets lost in an interval above (codecs giving no total): poor"
    )
    poor_rtt_ms: float = Field(300.0, gt=0, description="round trip to the MCU above: poor")
    hold_s: float = Field(
        15.0, ge=0, description="figures over a threshold this long before `poor`"
    )
    recover_s: float = Field(
        30.0, ge=0, description="figures good again this long before `poor` ends"
    )
    auto_rejoin: bool = Field(
        False, description="redial the conference once dropped for hold_s (agent/runtime/rejoin.py)"
    )
    rejoin_every_s: float = Field(
        60.0, ge=5, le=3600, description="while still dropped, redial at most this often"
    )
    republish_s: float = Field(
        60.0, ge=1, le=3600, description="`live` again with fresh figures at most this often"
    )


class ReportSettings(_Section):
    check_interval_s: float = Field(
        300.0, gt=0, description="seconds between self-tests reported to the centre"
    )
    state_heartbeat_s: float = Field(
        60.0,
        gt=0,
        description="republish state at least this often while connected (liveness)",
    )
    outbox_max_messages: int = Field(
        10_000, ge=10, description="reports kept while the broker is unreachable"
    )
    outbox_max_bytes: int = Field(
        50_000_000, ge=10_000, description="bytes of payload kept while unreachable"
    )
    drain_rate_per_s: float = Field(
        20.0, ge=0, description="reports/s sent from the outbox; 0 = no limit"
    )
    max_inflight: int = Field(
        20, ge=1, le=1000, description="reports sent and not yet acknowledged (PUBACK)"
    )
    shutdown_timeout_s: float = Field(
        3.0, gt=0, description="wait this long for the broker to take `offline` on exit"
    )


class CommandKey(_Section):
    """One centre public key; several may be listed while keys are rotated."""

    key_id: str = Field(
        pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Name the centre signs with."
    )
    public_key: str | None = Field(
        None, description="Ed25519 public key, base64 of the raw 32 bytes (or give `path`)."
    )
    path: Path | None = Field(None, description="File holding the base64 public key.")

    @model_validator(mode="after")
    def _one_source(self) -> CommandKey:
        if (self.public_key is None) == (self.path is None):
            raise Invalid(message("config.key_one_source", key_id=self.key_id))
        return self


class CommandSettings(_Section):
    """`[commands]`: remote commands from the centre (signed with Ed25519)."""

    enabled: bool = Field(True, description="Listen for commands on <prefix>/<site_id>/cmd.")
    keys: list[CommandKey] = Field(
        default_factory=list, description="Centre public keys; none: every command is refused."
    )
    max_skew_s: float = Field(
        60.0, ge=0, le=3600, description="Clock difference tolerated on issued/expires times."
    )
    max_validity_s: float = Field(
        3600.0, gt=0, le=7 * 86400, description="Longest expires_at - issued_at accepted."
    )
    allow_reboot_host: bool = Field(False, description="Accept `reboot-host` at all.")
    fleet: bool = Field(True, description="Also listen on <prefix>/cmd (tier/all broadcasts).")
    reply_topics: list[str] = Field(
        default_factory=list,
        description="More topics (each with the topics below it) a command's MQTT 5 response "
        "topic may name, besides <prefix>/<site_id>/cmd/reply.",
    )

    @field_validator("reply_topics")
    @classmethod
    def _publishable(cls, topics: list[str]) -> list[str]:
        for topic in topics:
            if (problem := publish_topic_problem(topic)) is not None:
                raise Invalid(message("config.reply_topic", topic=repr(topic), problem=problem))
        return topics


_config_file: ContextVar[dict[str, Any] | None] = ContextVar("_config_file", default=None)


class _FileSource(PydanticBaseSettingsSource):
    """The already-parsed TOML file (parsed by us, so syntax errors can name the line)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_config_file.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_config_file.get() or {})


class FileSettings(BaseSettings):
    """A settings file plus EDGE_AGENT_* environment overrides (environment wins)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )
    example_file: ClassVar[str] = "agent.example.toml"
    # Variables under the prefix that are not settings (read by name elsewhere); a name
    # ending in "_" stands for every variable it begins. Any other one is a typo.
    env_not_settings: ClassVar[tuple[str, ...]] = (
        ENV_CONFIG,
        "EDGE_AGENT_CENTRE_",  # the centre's own prefix: CentreSettings checks those
        "EDGE_AGENT_PROFILE_PASSWORD",  # edge-agent profiles test
        "EDGE_AGENT_SKIP_PACKAGES",  # install.sh
        "EDGE_AGENT_PYTHON",  # install.sh
        "EDGE_AGENT_FAULT_",  # the fault tests' replay knobs (tests/faults)
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))


_S = TypeVar("_S", bound=FileSettings)


class Settings(FileSettings):
    """The agent's settings (one site)."""

    site: SiteSettings
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    paths: PathSettings = Field(default_factory=PathSettings)
    camera: CameraSettings = Field(default_factory=CameraSettings)
    microphone: MicrophoneSettings = Field(default_factory=MicrophoneSettings)
    display: DisplaySettings = Field(default_factory=DisplaySettings)
    codec: CodecSettings = Field(default_factory=CodecSettings)
    ptz: PtzSettings = Field(default_factory=PtzSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    session: SessionSettings = Field(default_factory=SessionSettings)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    report: ReportSettings = Field(default_factory=ReportSettings)
    led: LedSettings = Field(default_factory=LedSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    attendance: AttendanceSettings = Field(default_factory=AttendanceSettings)
    commands: CommandSettings = Field(default_factory=CommandSettings)

    def component(self, name: str) -> ComponentSettings:
        section = getattr(self, name)
        assert isinstance(section, ComponentSettings)
        return section

    def enabled_components(self) -> list[str]:
        return [c for c in COMPONENTS if self.component(c).enabled]

    def required_components(self) -> list[str]:
        return [c for c in COMPONENTS if self.component(c).enabled and self.component(c).required]


def config_path(cli_path: str | os.PathLike[str] | None = None) -> Path:
    """--config wins, then $EDGE_AGENT_CONFIG, then /etc/edge-agent/agent.toml."""
    if cli_path:
        return Path(cli_path)
    env = os.environ.get(ENV_CONFIG)
    return Path(env) if env else DEFAULT_CONFIG


def _read_toml(path: Path, example: str = "agent.example.toml") -> dict[str, Any]:
    where: dict[str, Param] = {"path": str(path)}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            message("config.not_found", **where),
            message("config.not_found_hint", example=example, variable=ENV_CONFIG),
        ) from None
    except PermissionError:
        raise ConfigError(
            message("config.permission", **where), message("config.permission_hint")
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            message("config.is_directory", **where),
            message("config.is_directory_hint", example=example),
        ) from None
    except OSError as exc:
        raise ConfigError(
            message("config.cannot_read", **where, error=str(exc.strerror or exc)),
            message("config.cannot_read_hint"),
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            message("config.not_toml", **where, error=toml_problem(exc)),
            message("config.not_toml_hint"),
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            message("config.not_utf8", **where, byte=exc.start),
            message("config.not_utf8_hint"),
        ) from None
    except RecursionError:
        raise ConfigError(
            message("config.too_deep", **where), message("config.too_deep_hint")
        ) from None


def _describe(error: dict[str, Any], path: Path, env_prefix: str = ENV_PREFIX) -> Message:
    loc = ".".join(str(p) for p in error["loc"])
    env_name = env_prefix + "__".join(str(p) for p in error["loc"]).upper()
    if env_name in os.environ:
        origin = message("config.origin_env", variable=env_name)
    else:
        origin = message("config.origin_file", path=str(path))
    kind = error["type"]
    if kind == "missing":
        return message("config.field_missing", origin=origin, field=loc)
    if kind == "extra_forbidden":
        return message("config.field_unknown", origin=origin, field=loc)
    got = error.get("input")
    if isinstance(got, dict | list):
        return message(
            "config.field_bad", origin=origin, field=loc, problem=pydantic_problem(error)
        )
    return message(
        "config.field_bad_got",
        origin=origin,
        field=loc,
        problem=pydantic_problem(error),
        value=repr(got),
    )


def _unknown_variables(model: type[FileSettings], prefix: str) -> list[Message]:
    """pydantic-settings skips a variable naming no field (EDGE_AGENT_LOGLEVEL, or
    EDGE_AGENT_BROKR__HOST): the setting would silently keep its default. Name each one."""
    fields = model.model_fields
    sections = [
        name
        for name, field in fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    ]
    plain = [name for name in fields if name not in sections]
    skip = model.env_not_settings
    unknown: list[Message] = []
    for variable in sorted(os.environ):
        upper = variable.upper()  # pydantic-settings reads them case-insensitively
        if not upper.startswith(prefix) or any(
            upper == name or (name.endswith("_") and upper.startswith(name)) for name in skip
        ):
            continue
        if upper[len(prefix) :].split("__")[0].lower() not in fields:
            unknown.append(
                message(
                    "config.unknown_variable",
                    variable=variable,
                    sections=", ".join(sections) or "-",
                    fields=", ".join(plain) or "-",
                )
            )
    return unknown


def _read_credentials(settings: Settings) -> Settings:
    """Secrets from systemd's $CREDENTIALS_DIRECTORY, when the file did not give them."""
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if not cred_dir:
        return settings
    cred = Path(cred_dir) / "broker-password"
    secret = cred.read_text().strip() if cred.is_file() else ""
    # An empty credential means "no password": the unit ships a blank default so that a
    # site without one still starts (systemd refuses an empty SetCredential=).
    if settings.broker.password is None and secret:
        password = SecretStr(secret)
        broker = settings.broker.model_copy(update={"password": password})
        return settings.model_copy(update={"broker": broker})
    return settings


def load_file_settings(model: type[_S], path: Path) -> _S:
    """Validate `path` (and EDGE_AGENT_* variables) as `model`; raise ConfigError naming
    the file (or variable) and the field. Shared by the agent's and the centre's settings."""
    prefix = str(model.model_config.get("env_prefix", ENV_PREFIX))
    unknown = _unknown_variables(model, prefix)
    if unknown:
        raise ConfigError(
            message("config.problems", problems=unknown),
            message("config.unknown_variable_hint", prefix=prefix, example=model.example_file),
        )
    data = _read_toml(path, model.example_file)
    token = _config_file.set(data)
    try:
        return model()
    except ValidationError as exc:
        lines = [_describe(dict(e), path, prefix) for e in exc.errors()]
        raise ConfigError(
            message("config.problems", problems=lines),
            message("config.fix_fields_hint", example=model.example_file),
        ) from None
    finally:
        _config_file.reset(token)


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load and validate the agent's settings (see load_file_settings for errors)."""
    return _read_credentials(load_file_settings(Settings, config_path(path)))

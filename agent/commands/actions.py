"""The actions a command can ask for: their argument models (validated before anything runs)
and what each does through an `ActionContext`, which the daemon fills with its own hooks
(and tests with theirs: the command runner for `reboot-host` is one of them)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from agent.components import COMPONENTS, ComponentName
from agent.config import Settings
from agent.errors import AgentError
from agent.messages import Message, message

if TYPE_CHECKING:
    from agent.profiles.model import Profile
    from agent.profiles.session import Target
    from agent.schedule.model import Session

Runner = Callable[[Sequence[str], float], tuple[int, str]]  # argv, timeout -> rc, output
REBOOT_UNIT = "edge-agent-reboot.service"
SCHEDULE_CACHE = "schedule-centre.json"


class ActionFailed(AgentError):
    """The action ran and did not do what was asked; `output` goes into the reply."""

    def __init__(
        self, message: str | Message, hint: str | Message = "", output: JsonValue = None
    ) -> None:
        super().__init__(message, hint)
        self.output = output

    @classmethod
    def of(cls, exc: AgentError) -> ActionFailed:
        """Another error, as the action's failure (its messages kept for the reader)."""
        return cls(exc.msg or exc.message, exc.hint_msg or exc.hint)

    def reason_msg(self) -> Message | None:
        """The failure for a reader in another language; None when it is only English."""
        if self.msg is None:
            return None
        if not self.hint:
            return self.msg
        return message("command.with_hint", reason=self.msg, hint=self.hint_msg or self.hint)


def run_command(argv: Sequence[str], timeout_s: float) -> tuple[int, str]:
    """The real runner: a subprocess with a timeout, never a shell."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except FileNotFoundError:
        return 127, f"{argv[0]}: not found"
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]}: no answer within {timeout_s:g} s"
    return done.returncode, (done.stdout + done.stderr).strip()[-2000:]


# ---- arguments ----------------------------------------------------------------------------


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArgs(_Args):
    pass


class RunChecksArgs(_Args):
    components: list[ComponentName] = Field(
        default_factory=list, max_length=len(COMPONENTS), description="none: every component"
    )

    @field_validator("components", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class IdentifyArgs(_Args):
    seconds: float | None = Field(None, gt=0, le=600, description="none: led.identify_s")


class SetScheduleArgs(_Args):
    schedule: dict[str, Any]

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: dict[str, Any]) -> dict[str, Any]:
        from agent.schedule.model import ScheduleError, parse_payload  # noqa: PLC0415

        try:
            parse_payload(json.dumps(value), "set-schedule", strict=True)
        except ScheduleError as exc:
            raise ValueError(exc.message) from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a schedule: {exc}") from None
        return value


# ---- what each action does ------------------------------------------------------------------


@dataclass
class ActionContext:
    """The daemon's side of the actions (callables, so tests can supply real small ones)."""

    settings: Settings
    run_checks: Callable[[Sequence[str]], JsonValue]
    rebirth: Callable[[], None]
    exit_agent: Callable[[], None]
    runner: Runner = run_command
    counter: Callable[[], JsonValue] | None = None
    set_schedule: Callable[[Any], JsonValue] | None = None
    identify: Callable[[float], JsonValue] | None = None
    progress: Callable[[Message], None] = field(default=lambda _msg: None)
    # The sessions running now (rejoin dials theirs); None: this agent has no schedule.
    current_sessions: Callable[[], Sequence[Session]] | None = None


def _run_checks(ctx: ActionContext, args: BaseModel) -> JsonValue:
    assert isinstance(args, RunChecksArgs)
    enabled = ctx.settings.enabled_components()
    off = [c for c in args.components if c not in enabled]
    if off:
        raise ActionFailed(
            message("command.failed.not_enabled", components=", ".join(off)),
            message(
                "command.failed.enabled_here",
                components=", ".join(enabled) or message("command.failed.none"),
            ),
        )
    ctx.progress(
        message("command.progress.checks", components=", ".join(args.components or enabled))
    )
    return ctx.run_checks(list(args.components))


def _codec_profile(ctx: ActionContext) -> tuple[Profile, Target]:
    """The codec's profile and where it is, or the ActionFailed that says why not."""
    from agent.errors import ProfileError  # noqa: PLC0415
    from agent.profiles.loader import load_profile  # noqa: PLC0415
    from agent.profiles.session import Target  # noqa: PLC0415

    cfg = ctx.settings.codec
    if not cfg.enabled:
        raise ActionFailed(
            message("command.failed.codec_off"), message("command.failed.codec_off_hint")
        )
    try:
        profile = load_profile(ctx.settings.paths.profiles_dir, cfg.profile)
    except ProfileError as exc:
        raise ActionFailed.of(exc) from None
    target = Target(
        port=cfg.port,
        username=cfg.username,
        password=cfg.password.get_secret_value() if cfg.password else None,
    )
    return profile, target


def _ask_codec(ctx: ActionContext, profile: Profile, target: Target, query: str) -> JsonValue:
    """Run one of the profile's queries; its reply fields, or the ActionFailed."""
    from agent.errors import ProbeError  # noqa: PLC0415
    from agent.profiles.session import run_queries  # noqa: PLC0415

    cfg = ctx.settings.codec
    try:
        (result,) = run_queries(profile, target, [query], deadline_s=cfg.timeout_s)
    except ProbeError as exc:
        raise ActionFailed.of(exc) from None
    if result.error is not None:
        raise ActionFailed.of(result.error)
    reply: dict[str, JsonValue] = dict(result.fields)
    return {"profile": profile.name, "port": cfg.port, "reply": reply}


def _restart_codec(ctx: ActionContext, _args: BaseModel) -> JsonValue:
    profile, target = _codec_profile(ctx)
    if "reboot" not in profile.queries:
        raise ActionFailed(
            message("command.failed.no_reboot_query", profile=profile.name),
            message("command.failed.no_reboot_query_hint"),
        )
    port = ctx.settings.codec.port
    ctx.progress(message("command.progress.reboot_query", profile=profile.name, port=port))
    return _ask_codec(ctx, profile, target, "reboot")


def _rejoin(ctx: ActionContext, _args: BaseModel) -> JsonValue:
    running = list(ctx.current_sessions()) if ctx.current_sessions is not None else []
    if not running:
        raise ActionFailed(
            message("command.failed.no_session"), message("command.failed.no_session_hint")
        )
    session = next((s for s in running if s.conference_address), None)
    if session is None or session.conference_address is None:
        raise ActionFailed(
            message("command.failed.no_address", session=running[0].session_id),
            message("command.failed.no_address_hint"),
        )
    profile, target = _codec_profile(ctx)
    if profile.dial is None:
        raise ActionFailed(
            message("command.failed.cannot_dial", profile=profile.name),
            message("command.failed.cannot_dial_hint"),
        )
    address = session.conference_address
    ctx.progress(message("command.progress.dial", address=address, profile=profile.name))
    out = _ask_codec(ctx, profile.with_dial(address), target, "dial")
    assert isinstance(out, dict)
    return {**out, "session_id": session.session_id, "address": address}


def _restart_agent(ctx: ActionContext, _args: BaseModel) -> JsonValue:
    ctx.exit_agent()
    return {"exiting": True, "note": "systemd (Restart=always) starts the agent again"}


def _reboot_host(ctx: ActionContext, _args: BaseModel) -> JsonValue:
    # --no-block: systemctl returns once the job is queued, so the reply can still go out.
    argv = ["systemctl", "start", "--no-block", REBOOT_UNIT]
    rc, output = ctx.runner(argv, 30.0)
    if rc != 0:
        raise ActionFailed(
            message("command.failed.exit_code", command=" ".join(argv), rc=rc),
            message("command.failed.reboot_hint"),
            output,
        )
    return {"unit": REBOOT_UNIT, "output": output}


def _identify(ctx: ActionContext, args: BaseModel) -> JsonValue:
    assert isinstance(args, IdentifyArgs)
    seconds = args.seconds or ctx.settings.led.identify_s
    if ctx.identify is not None:
        return ctx.identify(seconds)
    return identify_with_led(ctx.settings, seconds)


def identify_with_led(
    settings: Settings, seconds: float, write: Callable[[Path, str], None] | None = None
) -> JsonValue:
    """Blink the identify pattern for `seconds`, then switch the LED(s) off (the LED loop,
    where one runs, puts the site's pattern back at its next tick)."""
    from agent.led.driver import LedDriver  # noqa: PLC0415
    from agent.led.patterns import Pattern  # noqa: PLC0415

    if not settings.led.enabled:
        raise ActionFailed(message("command.failed.no_led"), message("command.failed.no_led_hint"))
    try:
        root = settings.paths.sysfs_root
        driver = (
            LedDriver(root, settings.led) if write is None else LedDriver(root, settings.led, write)
        )
        driver.show(Pattern.IDENTIFY)
        time.sleep(seconds)
        driver.show(Pattern.OFF)
    except AgentError as exc:
        raise ActionFailed.of(exc) from None
    return {"seconds": seconds, "leds": [str(p.name) for p in driver.leds.values()]}


def _count_now(ctx: ActionContext, _args: BaseModel) -> JsonValue:
    if ctx.counter is None:
        raise ActionFailed(
            message("command.failed.no_counter"), message("command.failed.no_counter_hint")
        )
    return ctx.counter()


# Commands run on a pool: two set-schedule commands at once would share cache_payload's
# temporary file, and the second rename fails (FileNotFoundError). One at a time.
_schedule_lock = threading.Lock()


def _set_schedule(ctx: ActionContext, args: BaseModel) -> JsonValue:
    from agent.schedule.model import parse_payload  # noqa: PLC0415
    from agent.schedule.store import cache_payload  # noqa: PLC0415

    assert isinstance(args, SetScheduleArgs)
    payload = parse_payload(json.dumps(args.schedule), "set-schedule", strict=True)
    path = ctx.settings.paths.state_dir / SCHEDULE_CACHE
    with _schedule_lock:
        cache_payload(path, payload)
        out: dict[str, JsonValue] = {"sessions": len(payload.entries), "saved": str(path)}
        if ctx.set_schedule is not None:
            out["applied"] = ctx.set_schedule(payload)
    return out


def _rebirth(ctx: ActionContext, _args: BaseModel) -> JsonValue:
    ctx.rebirth()
    return {"republishing": ["availability", "meta", "state"]}


@dataclass(frozen=True)
class ActionSpec:
    args: type[BaseModel]
    run: Callable[[ActionContext, BaseModel], JsonValue]
    doc: str


ACTIONS: dict[str, ActionSpec] = {
    "run-checks": ActionSpec(
        RunChecksArgs, _run_checks, "run the self-test (all or `components`); reply: the report"
    ),
    "restart-codec": ActionSpec(NoArgs, _restart_codec, "the codec profile's `reboot` query"),
    "restart-agent": ActionSpec(NoArgs, _restart_agent, "clean exit; systemd restarts it"),
    "reboot-host": ActionSpec(
        NoArgs, _reboot_host, f"start {REBOOT_UNIT} (only with commands.allow_reboot_host)"
    ),
    "identify": ActionSpec(IdentifyArgs, _identify, "blink the LED `seconds` (led.identify_s)"),
    "count-now": ActionSpec(NoArgs, _count_now, "attendance snapshot (needs a counter)"),
    "set-schedule": ActionSpec(SetScheduleArgs, _set_schedule, "replace the site's sessions"),
    "rebirth": ActionSpec(NoArgs, _rebirth, "republish availability, meta and state"),
    "rejoin": ActionSpec(
        NoArgs, _rejoin, "dial the running session's conference_address (the codec profile)"
    ),
}


def disabled_actions(settings: Settings) -> dict[str, Message]:
    off: dict[str, Message] = {}
    if not settings.commands.allow_reboot_host:
        off["reboot-host"] = message("command.detail.reboot_not_allowed")
    return off

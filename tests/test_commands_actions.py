"""Actions run through the command service (no broker): identify on a sysfs-shaped LED tree,
set-schedule saved, run-checks on some components, count-now with a registered counter."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.commands.actions import SCHEDULE_CACHE, ActionContext, identify_with_led
from agent.commands.service import CommandService
from agent.config import Settings
from agent.contract.envelope import Command, public_key_b64
from agent.contract.payloads import CommandReplyPayload
from agent.schedule.model import parse_payload
from agent.sim.sysfs import LedView, led_view, led_write
from agent.transport.outbox import Outbox
from tests.commands_kit import KEY_ID, signed

KEY = Ed25519PrivateKey.generate()


def _service(state: Path, sysfs: Path | None = None, **context: object) -> CommandService:
    config: dict[str, object] = {
        "site": {"site_id": "s1", "name": "Site 1", "tier": "commune"},
        "paths": {"state_dir": str(state), **({"sysfs_root": str(sysfs)} if sysfs else {})},
        "led": {"enabled": sysfs is not None},
        "commands": {"keys": [{"key_id": KEY_ID, "public_key": public_key_b64(KEY.public_key())}]},
    }
    settings = Settings.model_validate(config)
    calls: list[object] = []
    ctx = ActionContext(
        settings=settings,
        run_checks=lambda only: calls.append(list(only)) or {"verdict": "ready", "results": []},
        rebirth=lambda: None,
        exit_agent=lambda: None,
    )
    for name, value in context.items():
        setattr(ctx, name, value)
    service = CommandService(settings, Outbox.from_settings(settings), ctx)
    service.calls = calls  # type: ignore[attr-defined]
    return service


def _replies(service: CommandService) -> list[CommandReplyPayload]:
    return [
        CommandReplyPayload.model_validate_json(r.payload) for r in service.outbox.pending(0, 50)
    ]


def test_identify_blinks_the_led_then_switches_it_off(tmp_path, sysfs):
    service = _service(tmp_path / "state", sysfs)
    seen: list[LedView] = []
    service.context.identify = lambda s: identify_with_led(service.settings, s, led_write)
    red = sysfs / "class" / "leds" / "status:red"
    # Watch from before the command: under load the 1 s blink may start and end quickly.
    watcher = threading.Thread(target=lambda: seen.append(_when_blinking(red)))
    watcher.start()
    verdict = service.on_message(signed(KEY, action="identify", args={"seconds": 1.0}))
    assert isinstance(verdict, Command)
    watcher.join(5)
    service.close(wait=True)
    replies = _replies(service)
    service.outbox.close()
    assert [r.status for r in replies] == ["accepted", "succeeded"], replies[-1].reason
    assert seen and seen[0].lit and seen[0].off_ms > 0  # blinking while identifying
    assert not led_view(red).lit  # and dark afterwards


def _when_blinking(led: Path) -> LedView:
    end = time.monotonic() + 4
    while time.monotonic() < end:
        view = led_view(led)
        if view.off_ms:
            return view
        time.sleep(0.02)
    return led_view(led)


def test_identify_without_an_led_fails_with_a_hint(tmp_path):
    service = _service(tmp_path / "state")
    service.on_message(signed(KEY, action="identify"))
    service.close(wait=True)
    last = _replies(service)[-1]
    service.outbox.close()
    assert last.status == "failed"
    assert last.reason.startswith("no status LED on this site")


def test_set_schedule_saves_the_sessions(tmp_path):
    state = tmp_path / "state"
    service = _service(state)
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    schedule = {
        "schema_version": "1",
        "entries": [
            {
                "session_id": "kh-2026-12",
                "title": "Monthly meeting",
                "start": start.isoformat(),
                "end": (start + timedelta(hours=2)).isoformat(),
            }
        ],
    }
    verdict = service.on_message(signed(KEY, action="set-schedule", args={"schedule": schedule}))
    service.close(wait=True)
    last = _replies(service)[-1]
    service.outbox.close()
    if not isinstance(verdict, Command):  # the fixture's session must itself be valid
        raise AssertionError(verdict)
    assert last.status == "succeeded", last.reason
    saved = parse_payload((state / SCHEDULE_CACHE).read_bytes())
    assert [e.session_id for e in saved.entries] == ["kh-2026-12"]


def test_run_checks_passes_the_chosen_components_and_refuses_disabled_ones(tmp_path):
    service = _service(tmp_path / "state")
    service.on_message(
        signed(
            KEY, action="run-checks", args={"components": "network,camera"}, command_id="c-0000001"
        )
    )
    service.on_message(
        signed(
            KEY,
            action="run-checks",
            args={"components": ["ptz"]},
            command_id="c-0000002",
            nonce="1" * 32,
        )
    )
    service.close(wait=True)
    replies = _replies(service)
    service.outbox.close()
    finals = {r.command_id: r for r in replies if r.status in ("succeeded", "failed")}
    assert len(finals) == 2, [(r.command_id, r.status, r.reason) for r in replies]
    assert finals["c-0000001"].status == "succeeded"
    assert finals["c-0000002"].status == "failed"
    assert "not enabled on this site: ptz" in finals["c-0000002"].reason
    assert service.calls == [["network", "camera"]]  # type: ignore[attr-defined]


def test_count_now_answers_with_the_registered_counter(tmp_path):
    service = _service(tmp_path / "state")
    service.register_counter(lambda: {"count": 42, "detector": "test"})
    service.on_message(signed(KEY, action="count-now"))
    service.close(wait=True)
    last = _replies(service)[-1]
    service.outbox.close()
    assert (last.status, last.output) == ("succeeded", {"count": 42, "detector": "test"})


def test_commands_dropped_by_shutdown_are_answered_failed(tmp_path):
    release = threading.Event()

    def slow_checks(_only):
        release.wait(5)
        return {"verdict": "ready", "results": []}

    service = _service(tmp_path / "state", run_checks=slow_checks)
    service._pool._max_workers = 1  # one worker: the second command waits in the queue
    service.on_message(signed(KEY, action="run-checks", command_id="c-0000001"))
    service.on_message(signed(KEY, action="run-checks", command_id="c-0000002", nonce="2" * 32))
    time.sleep(0.2)
    service.close(wait=False)  # shutdown: the queued one is dropped...
    release.set()
    time.sleep(0.2)
    replies = {(r.command_id, r.status): r.reason for r in _replies(service)}
    service.outbox.close()
    # ...and answered, so the centre is not left with a bare `accepted`
    assert "send it again" in replies[("c-0000002", "failed")]
    assert ("c-0000001", "failed") not in replies  # the one already running was not dropped

"""`[session] auto_rejoin`: when the live verdict has been `dropped` for `hold_s`, the agent
runs the `rejoin` command's own action (agent/commands/actions.py: the session's
conference_address dialled through the codec profile's [dial]) once, then at most once per
`rejoin_every_s` while the site stays dropped. Each try is logged and reported as a
`live/event` whose verdict stays `dropped` (before = after) and whose reason says what was
dialled or why it failed: old centres store and show it as any other event.

Off by default: the issue wants a redial to be an operator's decision unless settings say so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from pydantic import JsonValue

from agent.checks.live import LiveState, LiveVerdict
from agent.commands.actions import ACTIONS, ActionContext, ActionFailed, NoArgs
from agent.config import Settings
from agent.contract.payloads import Envelope, LiveEventPayload, utc_now
from agent.messages import Message, message
from agent.runtime.reports import session_ref
from agent.schedule.model import Session

log = logging.getLogger(__name__)

# Runs the dial off the loop (the daemon's watchdog.in_worker); None: stopped meanwhile.
InWorker = Callable[[Callable[[], Message], threading.Event | None], Message | None]


def _not_for_rejoin(*_args: object) -> None:
    raise RuntimeError("the automatic rejoin only dials")


def dial_session(settings: Settings, session: Session) -> JsonValue:
    """The `rejoin` action for this one session; ActionFailed says why it could not dial."""
    context = ActionContext(
        settings=settings,
        run_checks=_not_for_rejoin,
        rebirth=_not_for_rejoin,
        exit_agent=_not_for_rejoin,
        current_sessions=lambda: [session],
    )
    return ACTIONS["rejoin"].run(context, NoArgs())


class AutoRejoin:
    """Called after each live look with the verdict shown; dials when it is time."""

    def __init__(
        self,
        settings: Settings,
        publish: Callable[[Envelope], object],
        in_worker: InWorker = lambda work, _stop: work(),
        dial: Callable[[Settings, Session], JsonValue] = dial_session,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._publish = publish
        self._in_worker = in_worker
        self._dial = dial
        self._clock = clock
        self._dropped_since: datetime | None = None
        self._last_try: datetime | None = None
        self.tries = 0

    def after_look(
        self, state: LiveState, session: Session, stop: threading.Event | None = None
    ) -> None:
        if state.verdict is not LiveVerdict.DROPPED:
            self._dropped_since = self._last_try = None
            return
        if self._dropped_since != state.since:  # a new drop: its own first try
            self._dropped_since, self._last_try = state.since, None
        rules, now = self._settings.session, self._clock()
        if (now - state.since).total_seconds() < rules.hold_s:
            return
        if self._last_try is not None and (
            (now - self._last_try).total_seconds() < rules.rejoin_every_s
        ):
            return
        self._last_try = now
        self._try(session, stop)

    def _try(self, session: Session, stop: threading.Event | None) -> None:
        self.tries += 1
        log.warning(
            "auto_rejoin: session %s dropped, dialling %r (try %d)",
            session.session_id,
            session.conference_address,
            self.tries,
        )
        reason = self._in_worker(lambda: self._attempt(session), stop)
        if reason is None:  # the agent is stopping (or the worker died: logged there)
            return
        ref = session_ref(session)
        assert ref is not None
        self._publish(
            LiveEventPayload(
                site_id=self._settings.site.site_id,
                ts=utc_now(),
                session=ref,
                before=LiveVerdict.DROPPED,
                after=LiveVerdict.DROPPED,
                reason=reason.text,
                reason_msg=reason,
            )
        )

    def _attempt(self, session: Session) -> Message:
        """The dial, in the worker: what to report, never an exception."""
        try:
            self._dial(self._settings, session)
        except ActionFailed as exc:
            log.warning("auto_rejoin: could not dial: %s", exc)
            problem = exc.msg or message("live.rejoin.error", error=exc.message)
        except Exception as exc:  # a bug in the dial must not stop the live watch
            log.exception("auto_rejoin: the dial failed")
            problem = message("live.rejoin.error", error=type(exc).__name__)
        else:
            log.info("auto_rejoin: dialled %r", session.conference_address)
            return message(
                "live.rejoin.dialled", attempt=self.tries, address=session.conference_address or ""
            )
        return message("live.rejoin.failed", attempt=self.tries, problem=problem)


__all__ = ["AutoRejoin", "dial_session"]

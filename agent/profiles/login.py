"""Getting a device ready for queries: the PJLink greeting (and MD5 authentication), and the
text-line login quirks (login: / Password: prompts, then commands such as `Echo off`)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from agent.errors import BadReply, DeviceTimeout
from agent.messages import message
from agent.profiles.families import LoginRefused, pjlink, preview, text_lines
from agent.profiles.link import (
    MIN_WAIT_S,
    Clock,
    Link,
    Target,
    hint_bad,
    hint_silent,
    hint_slow,
    silent_error,
)
from agent.profiles.model import Login, Profile, TextLinesFamily


def pjlink_handshake(link: Link, profile: Profile, target: Target, clock: Clock) -> str:
    """Read the greeting; the prefix for the first command ("" without authentication)."""
    timeout = clock.timeout_for(profile.timeout_s)
    greeting = message("profile.what.greeting")
    text = link.wait_for([re.compile(pjlink.ENDING)], timeout, greeting)
    if not text:
        raise DeviceTimeout(
            message("profile.no_greeting", target=link.label, seconds=timeout),
            message("profile.hint.pjlink_enable"),
        )
    if pjlink.ENDING not in text:
        raise BadReply(
            message("profile.incomplete_greeting", target=link.label, preview=preview(text)),
            hint_bad(),
        )
    try:
        random = pjlink.parse_greeting(text.split(pjlink.ENDING, 1)[0])
    except BadReply as exc:
        raise BadReply(
            message("profile.at", target=link.label, text=exc.msg or exc.message), hint_bad()
        ) from None
    if random is None:
        return ""
    if not target.password:
        raise LoginRefused(
            message("profile.needs_pjlink_password", target=link.label),
            message("profile.hint.pjlink_password"),
        )
    return pjlink.auth_prefix(random, target.password)


def log_in(
    link: Link,
    profile: Profile,
    target: Target,
    clock: Clock,
    *,
    login: Login,
    fam: TextLinesFamily,
) -> None:
    """Answer the login prompts if the device shows them, then send the after-login commands.
    A device already logged in (a serial session outlives our port) shows no prompt."""
    ending = fam.send_ending.encode("latin-1")
    user_re = re.compile(login.user_prompt) if login.user_prompt else None
    pass_re = re.compile(login.password_prompt) if login.password_prompt else None
    prompts = [p for p in (user_re, pass_re) if p is not None]
    link.write(ending, message("profile.what.wake"))
    text = link.wait_for(
        prompts, clock.timeout_for(login.wait_s), message("profile.what.login_prompt")
    )
    if not link.heard and clock.remaining() < MIN_WAIT_S:
        raise silent_error(link.label, clock, hint_silent(profile, target.port or ""))
    wants_user = user_re is not None and user_re.search(text) is not None
    wants_pass = pass_re is not None and pass_re.search(text) is not None
    if wants_user:
        user = target.username or login.default_username
        if not user:
            raise LoginRefused(
                message("profile.login_no_user", target=link.label),
                message("profile.hint.username"),
            )
        link.write(user.encode("utf-8") + ending, message("profile.what.user"))
        assert pass_re is not None
        text = link.wait_for(
            [pass_re], clock.timeout_for(login.wait_s), message("profile.what.password_prompt")
        )
        wants_pass = pass_re.search(text) is not None
        if not wants_pass:
            raise LoginRefused(
                message(
                    "profile.login_no_password_prompt", target=link.label, preview=preview(text)
                ),
                message("profile.hint.check_username"),
            )
    if wants_pass:
        if target.password is None:
            raise LoginRefused(
                message("profile.login_no_password", target=link.label),
                message("profile.hint.password"),
            )
        link.write(target.password.encode("utf-8") + ending, message("profile.what.password"))
        refused = re.compile(login.refused)
        watch = [refused] + ([re.compile(login.success)] if login.success else [])
        wait = login.wait_s if login.success else login.settle_s
        text = link.wait_for(watch, clock.timeout_for(wait), message("profile.what.banner"))
        success = login.success is not None and re.search(login.success, text) is not None
        if not success and refused.search(text):
            raise LoginRefused(
                message("profile.login_refused", target=link.label, preview=preview(text.strip())),
                message("profile.hint.check_login"),
            )
    _after_login(link, profile, target, clock, login=login, fam=fam)


def _after_login(
    link: Link,
    profile: Profile,
    target: Target,
    clock: Clock,
    *,
    login: Login,
    fam: TextLinesFamily,
) -> None:
    """Send the after-login commands (`Echo off`); each must end with the family's `done`."""
    ending = fam.send_ending.encode("latin-1")
    done = re.compile(fam.done) if fam.done else None
    for command in login.after:
        link.drain()
        timeout = clock.timeout_for(profile.timeout_s)
        if timeout < MIN_WAIT_S:
            if not link.heard:
                raise silent_error(link.label, clock, hint_silent(profile, target.port or ""))
            raise DeviceTimeout(
                message("profile.login_slow", target=link.label, seconds=clock.elapsed()),
                hint_slow(),
            )
        started = time.monotonic()
        link.write(
            command.encode("latin-1") + ending, message("profile.what.command", command=command)
        )
        if done is None:
            time.sleep(min(login.settle_s, timeout))
            continue
        check = _ends_with(done, fam)
        answer = link.wait_until(check, timeout, message("profile.what.answer", command=command))
        waited = time.monotonic() - started
        if not text_lines.without_echo(answer, fam, command).strip():
            raise DeviceTimeout(
                message("profile.no_answer", target=link.label, name=command, seconds=waited),
                hint_silent(profile, target.port or ""),
            )
        if not check(answer):
            raise BadReply(
                message(
                    "profile.login_unexpected",
                    target=link.label,
                    command=command,
                    preview=preview(answer),
                ),
                hint_bad(),
            )
    link.drain()


def _ends_with(done: re.Pattern[str], fam: TextLinesFamily) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        return any(done.search(line) for line in text_lines.complete_lines(text, fam))

    return check

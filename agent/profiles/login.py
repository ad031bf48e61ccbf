"""Getting a device ready for queries: the PJLink greeting (and MD5 authentication), and the
text-line login quirks (login: / Password: prompts, then commands such as `Echo off`)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from agent.errors import BadReply, DeviceTimeout
from agent.profiles.families import LoginRefused, pjlink, preview, text_lines
from agent.profiles.link import (
    HINT_BAD,
    MIN_WAIT_S,
    Clock,
    Link,
    Target,
    hint_silent,
    silent_error,
)
from agent.profiles.model import Login, Profile, TextLinesFamily


def pjlink_handshake(link: Link, profile: Profile, target: Target, clock: Clock) -> str:
    """Read the greeting; the prefix for the first command ("" without authentication)."""
    timeout = clock.timeout_for(profile.timeout_s)
    text = link.wait_for([re.compile(pjlink.ENDING)], timeout, "the PJLink greeting")
    if not text:
        raise DeviceTimeout(
            f"{link.label}: no PJLink greeting within {timeout:.2g} s",
            "check that the projector is on the network and PJLink is enabled in its menu",
        )
    if pjlink.ENDING not in text:
        raise BadReply(f"{link.label}: incomplete PJLink greeting {preview(text)}", HINT_BAD)
    try:
        random = pjlink.parse_greeting(text.split(pjlink.ENDING, 1)[0])
    except BadReply as exc:
        raise BadReply(f"{link.label}: {exc.message}", HINT_BAD) from None
    if random is None:
        return ""
    if not target.password:
        raise LoginRefused(
            f"{link.label}: the projector asks for a PJLink password",
            "set display.password to the projector's PJLink password",
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
    link.write(ending, "a wake-up line")
    text = link.wait_for(prompts, clock.timeout_for(login.wait_s), "the login prompt")
    if not link.heard and clock.remaining() < MIN_WAIT_S:
        raise silent_error(link.label, clock, hint_silent(profile, target.port or ""))
    wants_user = user_re is not None and user_re.search(text) is not None
    wants_pass = pass_re is not None and pass_re.search(text) is not None
    if wants_user:
        user = target.username or login.default_username
        if not user:
            raise LoginRefused(
                f"{link.label}: the device asks for a login but no user name is set",
                "set the component's username and password in the settings",
            )
        link.write(user.encode("utf-8") + ending, "the user name")
        assert pass_re is not None
        text = link.wait_for([pass_re], clock.timeout_for(login.wait_s), "the password prompt")
        wants_pass = pass_re.search(text) is not None
        if not wants_pass:
            raise LoginRefused(
                f"{link.label}: no password prompt after the user name (got {preview(text)})",
                "check the user name in the settings",
            )
    if wants_pass:
        if target.password is None:
            raise LoginRefused(
                f"{link.label}: the device asks for a password but none is set",
                "set the component's password in the settings",
            )
        link.write(target.password.encode("utf-8") + ending, "the password")
        refused = re.compile(login.refused)
        watch = [refused] + ([re.compile(login.success)] if login.success else [])
        wait = login.wait_s if login.success else login.settle_s
        text = link.wait_for(watch, clock.timeout_for(wait), "the login banner")
        success = login.success is not None and re.search(login.success, text) is not None
        if not success and refused.search(text):
            raise LoginRefused(
                f"{link.label}: login refused ({preview(text.strip())})",
                "check the user name and password in the settings",
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
                f"{link.label}: logging in took the whole {clock.elapsed():.2g} s",
                "the device answers slowly; raise the component's timeout_s",
            )
        started = time.monotonic()
        link.write(command.encode("latin-1") + ending, f"'{command}'")
        if done is None:
            time.sleep(min(login.settle_s, timeout))
            continue
        check = _ends_with(done, fam)
        answer = link.wait_until(check, timeout, f"the answer to '{command}'")
        waited = time.monotonic() - started
        if not text_lines.without_echo(answer, fam, command).strip():
            raise DeviceTimeout(
                f"{link.label}: no answer to '{command}' within {waited:.2g} s",
                hint_silent(profile, target.port or ""),
            )
        if not check(answer):
            raise BadReply(
                f"{link.label}: unexpected answer to '{command}' after login: {preview(answer)}",
                HINT_BAD,
            )
    link.drain()


def _ends_with(done: re.Pattern[str], fam: TextLinesFamily) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        return any(done.search(line) for line in text_lines.complete_lines(text, fam))

    return check

"""The channels a notification goes out on: webhook.py, email.py, telegram.py.

Each `send(notification, rendered)` returns when the receiver took it, or raises
`RetryLater` (the receiver may take it later: a network fault, a 5xx, a 429, with the wait it
asked for) or `GiveUp` (it never will: a 4xx, a refused login, a bad address). The delivery
worker decides the wait and counts the attempts.
"""

from __future__ import annotations

import socket
import ssl
import urllib.error

from agent.errors import AgentError
from agent.messages import Message, message

# A receiver's error text can be long or hostile: keep what a log line and a CLI need.
DETAIL_CHARS = 200


class DeliveryError(AgentError):
    """A channel did not take a notification."""


class RetryLater(DeliveryError):
    """Worth trying again; `retry_after`: the wait the receiver asked for, if it did."""

    def __init__(
        self, msg: str | Message, hint: str | Message = "", retry_after: float | None = None
    ) -> None:
        super().__init__(msg, hint)
        self.retry_after = retry_after


class GiveUp(DeliveryError):
    """Trying again would fail the same way: the notification is failed for good."""


def not_configured(channel: str, setting: str) -> GiveUp:
    return GiveUp(
        message("notify.error.not_configured", channel=channel),
        message("notify.error.not_configured_hint", setting=setting),
    )


def bad_address(channel: str, address: str) -> GiveUp:
    return GiveUp(
        message("notify.error.bad_address", channel=channel, address=repr(address)),
        message("notify.error.bad_address_hint"),
    )


__all__ = ["DeliveryError", "GiveUp", "RetryLater", "bad_address", "not_configured"]


def network_fault(target: str, exc: BaseException) -> RetryLater:
    """A receiver not reached, said in the reader's language where the fault is a common one
    (the operating system's own words are English); the raw text otherwise."""
    cause: BaseException = exc
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        cause = exc.reason
    kinds: tuple[tuple[type[BaseException], Message], ...] = (
        (ConnectionRefusedError, message("notify.error.net.refused")),
        (ConnectionResetError, message("notify.error.net.reset")),
        (TimeoutError, message("notify.error.net.timeout")),
        (socket.gaierror, message("notify.error.net.name")),
        (ssl.SSLError, message("notify.error.net.tls")),
    )
    fault = next((said for kind, said in kinds if isinstance(cause, kind)), None)
    error: str | Message = fault if fault is not None else str(exc)[:DETAIL_CHARS]
    return RetryLater(
        message("notify.error.unreachable", target=target, error=error),
        message("notify.error.unreachable_hint"),
    )

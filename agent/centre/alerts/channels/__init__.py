"""The channels a notification goes out on: webhook.py, email.py, telegram.py.

Each `send(notification, rendered)` returns when the receiver took it, or raises
`RetryLater` (the receiver may take it later: a network fault, a 5xx, a 429, with the wait it
asked for) or `GiveUp` (it never will: a 4xx, a refused login, a bad address). The delivery
worker decides the wait and counts the attempts.
"""

from __future__ import annotations

from agent.errors import AgentError
from agent.messages import Message, message


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

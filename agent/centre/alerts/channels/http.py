"""One JSON POST with the standard library (urllib): enough for a webhook and the Bot API,
and no dependency for a site's or a centre's install to carry."""

from __future__ import annotations

import email.utils
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from agent.centre.alerts.channels import (
    DETAIL_CHARS,
    GiveUp,
    RetryLater,
    bad_address,
    network_fault,
)
from agent.messages import message

_READ_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: float | None


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def check_url(channel: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_address(channel, url)


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
    """POST `body`; any HTTP answer is returned, a network fault raises RetryLater."""
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by check_url
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    # Never the whole URL nor its netloc in a message: a Bot API URL holds the bot's token
    # and a webhook's may hold a user:password; what is logged and shown is host and port.
    parts = urlsplit(url)
    target = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            return Answer(resp.status, resp.read(_READ_LIMIT), None)
    except urllib.error.HTTPError as exc:
        with exc:
            data = exc.read(_READ_LIMIT)
        return Answer(exc.code, data, _retry_after(exc.headers.get("Retry-After")))
    except http.client.InvalidURL:  # a space or line break in the URL (the token, a path)
        raise bad_address("HTTP", target) from None
    except (OSError, ValueError, http.client.HTTPException) as exc:  # refused, reset, timeout
        raise network_fault(target, exc) from None


def body_text(answer: Answer) -> str:
    """The start of a receiver's answer, to store and log: decoded leniently, then cut (a cut
    first could end inside a letter, and a strict decode would fail the delivery on it)."""
    return answer.body[: DETAIL_CHARS * 4].decode("utf-8", "replace")[:DETAIL_CHARS]


def judge(channel: str, answer: Answer, detail: str = "") -> None:
    """2xx: taken. 408, 429 and 5xx: RetryLater. Anything else: GiveUp."""
    if 200 <= answer.status < 300:
        return
    detail = (detail or body_text(answer))[:DETAIL_CHARS]
    msg = message("notify.error.http_status", channel=channel, status=answer.status, detail=detail)
    hint = message("notify.error.http_status_hint")
    if answer.status in (408, 429) or answer.status >= 500:
        raise RetryLater(msg, message("notify.error.unreachable_hint"), answer.retry_after)
    raise GiveUp(msg, hint)

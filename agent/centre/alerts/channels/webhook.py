"""Webhook: the rendered notification as JSON, POSTed to the contact's URL.

`X-Edge-Signature: sha256=<hex HMAC-SHA256 of the body>` with the shared secret lets the
receiver check the sender; `Idempotency-Key: <key>` is the same on every attempt, so a
receiver that remembers keys takes a retried notification once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from agent.centre.alerts.channels.http import check_url, judge, post
from agent.centre.alerts.model import Notification
from agent.centre.alerts.render import Rendered
from agent.centre.alerts.settings import WebhookSettings


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_post(
    settings: WebhookSettings, url: str, payload: dict[str, Any], key: str, channel: str
) -> None:
    """POST `payload` signed; returns when a 2xx came back (RetryLater / GiveUp else)."""
    check_url(channel, url)
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
    headers = {"Idempotency-Key": key}
    if settings.secret:
        headers["X-Edge-Signature"] = signature(settings.secret, body)
    judge(channel, post(url, body, headers, settings.timeout_s))


class WebhookChannel:
    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings

    def send(self, n: Notification, rendered: Rendered) -> None:
        signed_post(self.settings, n.channel.address, rendered.body, n.key, "webhook")

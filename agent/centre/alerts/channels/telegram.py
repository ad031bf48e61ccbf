"""Telegram: the Bot API's sendMessage (plain text) at `[alerts.telegram] base_url`.

A 429 carries `parameters.retry_after`, the seconds the bot must wait: the retry waits that
long, not the usual backoff. The Bot API has no idempotency key: a duplicate is possible
when the centre dies after Telegram took a message and before it was recorded as sent.
"""

from __future__ import annotations

import json
from typing import Any

from agent.centre.alerts.channels import (
    GiveUp,
    RetryLater,
    bad_address,
    not_configured,
)
from agent.centre.alerts.channels.http import body_text, check_url, judge, post
from agent.centre.alerts.model import Notification
from agent.centre.alerts.render import Rendered
from agent.centre.alerts.settings import TelegramSettings
from agent.messages import message


def _reply(data: bytes) -> dict[str, Any]:
    try:
        reply = json.loads(data)
    except ValueError:
        return {}
    return reply if isinstance(reply, dict) else {}


class TelegramChannel:
    def __init__(self, settings: TelegramSettings) -> None:
        self.settings = settings

    def send(self, n: Notification, rendered: Rendered) -> None:
        if not self.settings.token:
            raise not_configured("telegram", "alerts.telegram.token")
        chat = n.channel.address.strip()
        if not chat or any(c.isspace() for c in chat):
            raise bad_address("telegram", chat)
        url = f"{self.settings.base_url.rstrip('/')}/bot{self.settings.token}/sendMessage"
        check_url("telegram", self.settings.base_url)
        payload = {"chat_id": chat, "text": rendered.text, "disable_web_page_preview": True}
        body = json.dumps(payload, ensure_ascii=False).encode()
        answer = post(url, body, {}, self.settings.timeout_s)
        reply = _reply(answer.body)
        detail = str(reply.get("description", ""))
        if answer.status == 429:
            params = reply.get("parameters")
            wait = params.get("retry_after") if isinstance(params, dict) else None
            retry_after = float(wait) if isinstance(wait, int | float) else answer.retry_after
            raise RetryLater(
                message("notify.error.telegram", detail=detail or "429"),
                message("notify.error.unreachable_hint"),
                retry_after,
            )
        if 400 <= answer.status < 500 and answer.status != 408:
            raise GiveUp(
                message("notify.error.telegram", detail=detail or str(answer.status)),
                message("notify.error.telegram_hint"),
            )
        judge("telegram", answer, detail)
        if reply.get("ok") is not True:
            raise RetryLater(
                message("notify.error.telegram", detail=detail or body_text(answer)),
                message("notify.error.unreachable_hint"),
            )

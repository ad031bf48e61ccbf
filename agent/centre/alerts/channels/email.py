"""E-mail over SMTP (smtplib): STARTTLS and login when configured, UTF-8 subject and text.

The Message-ID is made from the idempotency key, the same on every attempt, so a mail client
that threads by it shows a duplicate as one. SMTP itself cannot refuse a duplicate: one is
possible when the centre dies after the server took a message and before it was recorded.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from agent.centre.alerts.channels import (
    DETAIL_CHARS,
    GiveUp,
    RetryLater,
    bad_address,
    network_fault,
    not_configured,
)
from agent.centre.alerts.model import Notification
from agent.centre.alerts.render import Rendered
from agent.centre.alerts.settings import EmailSettings
from agent.messages import message


def message_id(key: str) -> str:
    return f"<{key}@edge-agent.notify>"


def _refused(code: int, detail: object) -> GiveUp | RetryLater:
    text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
    msg = message("notify.error.smtp", code=code, detail=text[:DETAIL_CHARS])
    if 400 <= code < 500:  # SMTP's "try again later"
        return RetryLater(msg, message("notify.error.unreachable_hint"))
    return GiveUp(msg, message("notify.error.smtp_hint"))


class EmailChannel:
    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    def _mail(self, n: Notification, rendered: Rendered) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.settings.from_addr
        mail["To"] = n.channel.address
        mail["Subject"] = rendered.subject
        mail["Message-ID"] = message_id(n.key)
        mail["Date"] = formatdate(n.created_at, localtime=True)
        mail["Content-Language"] = n.language
        mail.set_content(rendered.text)
        return mail

    def _login(self, smtp: smtplib.SMTP) -> None:
        # smtplib encodes the credentials as ASCII: an accented password would escape as a
        # UnicodeEncodeError on every attempt, when it is a setting to fix.
        if not (self.settings.username + self.settings.password).isascii():
            raise GiveUp(
                message("notify.error.smtp_not_ascii"), message("notify.error.smtp_not_ascii_hint")
            )
        smtp.login(self.settings.username, self.settings.password)

    def send(self, n: Notification, rendered: Rendered) -> None:
        s = self.settings
        if not s.host:
            raise not_configured("e-mail", "alerts.email.host")
        address = n.channel.address.strip()
        if "@" not in address or any(c.isspace() or c in "<>,\r\n" for c in address):
            raise bad_address("e-mail", address)
        try:
            mail = self._mail(n, rendered)
        except ValueError:  # a header the e-mail library refuses (a control character)
            raise bad_address("e-mail", address) from None
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as smtp:
                if s.starttls:
                    context = ssl.create_default_context(
                        cafile=str(s.ca_file) if s.ca_file else None
                    )
                    smtp.starttls(context=context)
                if s.username:
                    self._login(smtp)
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code, detail = next(iter(exc.recipients.values()))
            raise _refused(code, detail) from None
        except smtplib.SMTPResponseException as exc:  # auth refused, sender refused, ...
            raise _refused(exc.smtp_code, exc.smtp_error) from None
        except (OSError, smtplib.SMTPException) as exc:  # refused, timeout, TLS, dropped
            raise network_fault(f"{s.host}:{s.port}", exc) from None

"""One SMTP connection to a configured profile, and the classification of its answers."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass

from daemon.config import SmtpProfile

__all__ = ["SendResult", "SmtpConnection"]


@dataclass(frozen=True)
class SendResult:
    result: str  # sent | temporary | permanent
    code: int | None
    detail: str


def _decode(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class SmtpConnection:
    def __init__(self, profile: SmtpProfile, password: str | None = None) -> None:
        self.profile = profile
        self.password = password if password is not None else profile.password()
        self._smtp: smtplib.SMTP | None = None
        self.sent = 0  # messages the server accepted in this session

    def open(self) -> None:
        p = self.profile
        if p.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                p.host, p.port, timeout=p.timeout_seconds, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(p.host, p.port, timeout=p.timeout_seconds)
            if p.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
        if p.username:
            smtp.login(p.username, self.password or "")
        self._smtp = smtp
        self.sent = 0

    def send(self, sender: str, recipients: list[str], raw: bytes) -> SendResult:
        assert self._smtp is not None, "open() first"
        try:
            refused = self._smtp.sendmail(sender, recipients, raw)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [c for c, _ in exc.recipients.values()]
            code = max(codes) if codes else None
            kind = "permanent" if code and code >= 500 else "temporary"
            return SendResult(kind, code, "destinatari rifiutati: " + ", ".join(exc.recipients))
        except smtplib.SMTPResponseException as exc:
            kind = "permanent" if exc.smtp_code >= 500 else "temporary"
            return SendResult(kind, exc.smtp_code, _decode(exc.smtp_error))
        self.sent += 1
        if refused:
            # Some recipients accepted: the message is out; the refusals are recorded as detail.
            return SendResult("sent", 250, "rifiutati in parte: " + ", ".join(refused))
        return SendResult("sent", 250, "accettato")

    @property
    def exhausted(self) -> bool:
        """The session carried as many messages as the profile allows: the next one needs a new one."""
        return self.sent >= self.profile.max_messages_per_connection

    def close(self) -> None:
        if self._smtp is None:
            return
        try:
            self._smtp.quit()
        except (smtplib.SMTPException, OSError):
            self._smtp.close()
        self._smtp = None
